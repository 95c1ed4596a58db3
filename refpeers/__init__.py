"""Reference Product Catalog + Shopping Cart: the two peers the order service calls.

Why it exists: the run command, the tests, the benchmarks and the chaos test all
need peers that honour the original contract exactly, and that can be told to
misbehave (latency, errors, hangs, garbage, writes that succeed but report
failure) on demand through /admin endpoints.

ONE PROCESS ONLY. All state (products, carts, fault settings, stats) lives in
memory in the process that serves it, on one asyncio event loop (aiohttp):

    python -m refpeers --host 127.0.0.1 --port 8090

Several processes would each have their own catalog, and the peers would
contradict themselves from one request to the next.
"""
from refpeers.app import create_app
from refpeers.state import demo_data

__all__ = ["create_app", "demo_data"]
