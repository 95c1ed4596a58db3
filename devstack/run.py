"""`make run`: the whole service in the foreground, one readable log stream.

The reference peers (seeded with demo products and carts), the API under
gunicorn, one worker and Flower, started with the command lines every local
stack uses (`devstack.stack`), on the configured database and broker, their
output interleaved by honcho's process manager. Ctrl-C stops them all.
"""
from __future__ import annotations

import os
import secrets
import shlex
import sys
from pathlib import Path

from honcho.manager import Manager

from devstack import stack
from settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    port = int(os.environ.get("PORT", "8000"))
    peers_port = int(os.environ.get("PEERS_PORT", "8090"))
    flower_port = int(os.environ.get("FLOWER_PORT", "5555"))
    os.environ.setdefault("REFPEERS_SEED", "demo")
    # Flower is never open: without credentials in the environment, make some up for this run.
    os.environ.setdefault("FLOWER_BASIC_AUTH", f"admin:{secrets.token_urlsafe(12)}")
    # Local development runs without tokens unless a key is configured; the banner says so.
    if not (os.environ.get("JWT_SECRET") or os.environ.get("JWT_PUBLIC_KEY")):
        os.environ.setdefault("AUTH_DISABLED", "true")
    # Webhooks work out of the box locally: a secret for this run, receivers on this machine allowed.
    os.environ.setdefault("WEBHOOK_SECRET", secrets.token_urlsafe(32))
    os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")
    auth = ("OFF (AUTH_DISABLED=true: every caller is an admin; set JWT_SECRET to turn it on)"
            if os.environ.get("AUTH_DISABLED", "").lower() == "true" else "on (bearer JWT)")
    settings = get_settings()
    stack.migrate(settings.database_url)
    print(
        f"\n  Order service\n"
        f"    API      http://127.0.0.1:{port}   (docs: http://127.0.0.1:{port}/docs)\n"
        f"    Flower   http://127.0.0.1:{flower_port}   (basic auth {os.environ['FLOWER_BASIC_AUTH']})\n"
        f"    Peers    {settings.catalog_url} (reference Catalog + Cart, demo data)\n"
        f"    Database {settings.database_url}\n    Broker   {settings.broker_url}\n"
        f"    Auth     {auth}\n"
        f"    Webhooks signed with WEBHOOK_SECRET={os.environ['WEBHOOK_SECRET']}\n"
        f"  Ctrl-C stops everything.\n",
        flush=True,
    )
    manager = Manager()
    for name, argv in (("peers", stack.peers_argv(peers_port)), ("api", stack.api_argv(port)),
                       ("worker", stack.worker_argv("worker1")), ("flower", stack.flower_argv(flower_port))):
        manager.add_process(name, shlex.join(argv), env=dict(os.environ), cwd=str(ROOT))
    manager.loop()
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
