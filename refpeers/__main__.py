"""`python -m refpeers`: serve the reference peers on aiohttp's server, one process, one event loop.

It takes the seed and initial faults as flags, and keeps request logging off
(it would dominate benchmarks). One process only: the state is in memory (see
the package docstring).
"""
from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from refpeers.app import SEEDS, create_app

# SIGTERM ends the server after at most this long for requests in flight (a hung one may sleep for
# many seconds): the state is in memory, nothing is lost by not waiting.
SHUTDOWN_SECONDS = 1.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m refpeers", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", choices=SEEDS, default=None, help="initial data (default: $REFPEERS_SEED or demo)")
    parser.add_argument("--latency-ms", type=float, default=None, help="latency added to every peer call")
    parser.add_argument("--error-rate", type=float, default=None, help="share of peer calls answered 503")
    parser.add_argument("--log-requests", action="store_true", help="log every request (off by default)")
    args = parser.parse_args(argv)

    try:
        app = create_app(args.seed, latency_ms=args.latency_ms, error_rate=args.error_rate)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    access_log = logging.getLogger("aiohttp.access") if args.log_requests else None
    print(f"refpeers: serving on http://{args.host}:{args.port} (one process, state in memory)",
          file=sys.stderr, flush=True)
    web.run_app(app, host=args.host, port=args.port, access_log=access_log, print=None,
                shutdown_timeout=SHUTDOWN_SECONDS, backlog=1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
