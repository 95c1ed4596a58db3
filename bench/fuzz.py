"""schemathesis' default run against the live API, many times in a row, another seed each time (issue 24).

    python -m bench.fuzz --runs 10                    # seeds 1..10, one after another, on one stack (Redis)
    python -m bench.fuzz --runs 10 --random-seeds     # ten random seeds, printed so a failed run can be replayed
    python -m bench.fuzz --seeds 4,9 --broker rabbitmq

One stack through `devstack.stack.Stack`, as the live tests start it (a fresh database, a broker of
its own, the reference peers with their demo data, the API under gunicorn, one worker, the fast
clocks), serves every run; nothing is reset between runs, as nothing resets a deployed service. Each
run is `devstack.fuzz`'s command, the one tests/live/test_fuzz.py runs (every default check, the
stateful phase with link inference on as it ships), with an admin's token, from a fresh temporary
directory outside the project. A run passes when schemathesis exits 0 and its stateful phase
followed at least one link, as the test asks. Printed per run: the verdict, the seed, "API Links: N
covered", the seconds it took and schemathesis' summary line. Each run's output and the stack's logs
go to test-artifacts/fuzz/<time>/; the JSON to --out. Exit status 1 when a run failed.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import tempfile
import time
import uuid
from pathlib import Path

from devstack.brokers import BROKERS
from devstack.fuzz import links_covered, run_schemathesis, schemathesis_command
from devstack.stack import Stack
from devstack.tokens import token

ROOT = Path(__file__).resolve().parent.parent
_SUMMARY = re.compile(r"^=+ (.+?) =+$", re.MULTILINE)


def summary(output: str) -> str:
    """schemathesis' last `=== … ===` line (e.g. "No issues found in 52.31s"), or ''."""
    lines = _SUMMARY.findall(output)
    return lines[-1] if lines else ""


def seeds_of(args) -> list[int]:
    if args.seeds:
        return args.seeds
    if args.random_seeds:
        rng = random.SystemRandom()
        return [rng.randrange(2**32) for _ in range(args.runs)]
    return list(range(args.first_seed, args.first_seed + args.runs))


def fuzz_once(api_url: str, seed: int, log_path: Path) -> dict:
    """One run from a temporary directory outside the project; its output kept at `log_path`."""
    headers = ["-H", f"Authorization: Bearer {token()}"]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as workdir:
        result = run_schemathesis(api_url, Path(workdir), *headers, seed=seed)
    seconds = round(time.monotonic() - started, 1)
    output = result.stdout + result.stderr
    log_path.write_text(output)
    links = links_covered(result.stdout)
    return {"seed": seed, "passed": result.returncode == 0 and (links or 0) > 0, "exit_status": result.returncode,
            "links_covered": links, "seconds": seconds, "summary": summary(result.stdout), "log": str(log_path)}


def run(args) -> dict:
    log_dir = ROOT / "test-artifacts" / "fuzz" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    seeds = seeds_of(args)
    runs = []
    with Stack(log_dir / "stack", broker=args.broker) as stack:
        stack.start(workers=1)
        # The command as run, the token elided (it is minted per run and expires).
        command = schemathesis_command(stack.api_url, "-H", "Authorization: Bearer <admin token>", seed=seeds[0])
        print(shlex.join(command), flush=True)
        for number, seed in enumerate(seeds, 1):
            outcome = fuzz_once(stack.api_url, seed, log_dir / f"run-{number:02d}-seed-{seed}.log")
            runs.append(outcome)
            print(f"run {number:2d}/{len(seeds)}  {'passed' if outcome['passed'] else 'FAILED'}  seed {seed}"
                  f"  API Links: {outcome['links_covered']} covered  {outcome['seconds']} s  {outcome['summary']}",
                  flush=True)
    passed = sum(outcome["passed"] for outcome in runs)
    return {"broker": args.broker, "runs": runs, "passed": passed, "failed": len(runs) - passed,
            "seconds_per_run": [outcome["seconds"] for outcome in runs], "logs": str(log_dir),
            "schemathesis_command": shlex.join(command)}


def _csv_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="runs, one after another")
    p.add_argument("--first-seed", type=int, default=1, help="seeds first-seed, first-seed+1, ...")
    p.add_argument("--random-seeds", action="store_true", help="a random seed per run instead")
    p.add_argument("--seeds", type=_csv_ints, help="these seeds, comma-separated (overrides --runs)")
    p.add_argument("--broker", choices=BROKERS, default="redis")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    return p


def main() -> None:
    args = parser().parse_args()
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\n{report['passed']} of {len(report['runs'])} passed; logs in {report['logs']}")
    raise SystemExit(0 if report["failed"] == 0 else 1)


if __name__ == "__main__":
    main()
