"""The reference peers as tests drive them: an app served on loopback by an event loop in a thread of
the test process (`Served`), and a handle on a served peers' admin API (`PeersAdmin`)."""
from __future__ import annotations

import asyncio
import socket
import threading

import requests
from aiohttp import web

from refpeers import demo_data


class Served:
    """An app served by aiohttp on a free loopback port, on an event loop in a thread of its own."""

    def __init__(self, app: web.Application):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        # A handler still sleeping in an injected hang or latency is cancelled 0.1 s into close (the
        # state is in memory: nothing is lost by not waiting), not waited for up to a minute (aiohttp's
        # default; 0 would mean no limit).
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        self._call(self.runner.setup())
        self._call(web.SockSite(self.runner, sock).start())
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def _stop(self) -> None:
        """Stop serving, then end what is left on the loop (a handler aiohttp cancelled at close
        finishes its cancellation here), as `asyncio.run` does before it closes its loop."""
        await self.runner.cleanup()
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class PeersAdmin:
    """Admin handle on a reference peers server: its data, faults and counters."""

    def __init__(self, url: str):
        self.url = url

    def reset(self, products=None, carts=None) -> None:
        """The demo data (or these products and carts), counters from zero, no faults."""
        body = demo_data()
        if products is not None:
            body["products"] = products
        if carts is not None:
            body["carts"] = carts
        requests.post(f"{self.url}/admin/reset", json=body, timeout=5).raise_for_status()
        self.faults(latency_ms=0, error_rate=0, put_apply_then_error_rate=0, hang_rate=0, garbage_rate=0,
                    scope="all", error_status=503)

    def faults(self, **settings) -> dict:
        response = requests.put(f"{self.url}/admin/faults", json=settings, timeout=5)
        response.raise_for_status()
        return response.json()

    def product(self, product_id: int) -> dict:
        return requests.get(f"{self.url}/admin/state", timeout=5).json()["products"][str(product_id)]

    def cart(self, customer_id: int) -> dict:
        return requests.get(f"{self.url}/admin/state", timeout=5).json()["carts"][str(customer_id)]

    def stats(self) -> dict:
        return requests.get(f"{self.url}/admin/stats", timeout=5).json()
