"""The aiohttp app: the peer contract routes, the admin routes, and JSON errors.

Why aiohttp: the peers stand in for services on other machines, yet here they
share the cores with the service they serve. On one asyncio event loop a peer
call costs a tenth of the CPU the same routes cost under Flask and gunicorn's
threads (`python -m bench.peer_cost` measures it), so the benchmarks measure the
service and not its stand-ins. One loop also means one thread: a check-and-write
never interleaves with another request, since no handler awaits between them.

Why it is shaped like this: peer routes go through `peer_call`, which counts the
request, adds latency and rolls the fault dice only for the peer contract; admin
routes never see faults or latency so tests can always inspect and reset. No
per-request logging and no per-request hooks beyond the JSON error middleware:
a peer call does only what it must.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os

from aiohttp import web

from refpeers.faults import Faults, from_env
from refpeers.state import Invalid, Store, demo_data, etag_of, parse_cart_put, parse_product_put, parse_reset
from refpeers.stats import Stats

SEEDS = ("demo", "empty")
GARBAGE = "<html>oops</html>"
# /admin/reset carries whole data sets (the benchmarks send thousands of carts): more than aiohttp's 1 MiB default.
MAX_BODY_BYTES = 64 * 1024 * 1024
ID = r"{key:[0-9]+}"  # a non-negative integer id; anything else matches no route (a JSON 404)

log = logging.getLogger("refpeers")


class Peers:
    """Everything one server process holds: data, fault settings, counters."""

    def __init__(self, fault_seed: str | None = None):
        self.store = Store()
        self.faults = Faults(fault_seed)
        self.stats = Stats()

    def reset(self, body) -> tuple[int, int]:
        """Replace all data (validated first, so a bad body changes nothing) and clear stats."""
        products, carts = parse_reset(body)
        self.store.reset(products, carts)
        self.stats.clear()
        return len(products), len(carts)


PEERS = web.AppKey("refpeers", Peers)


def _json(body, status: int = 200, headers=None) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, headers=headers,
                        content_type="application/json")


def _message(status: int, message: str, headers=None, **extra) -> web.Response:
    return _json({"message": message, **extra}, status, headers)


async def _body(request: web.Request):
    """The request's JSON body, whatever its Content-Type; None when it is not JSON."""
    try:
        return json.loads(await request.read())
    except ValueError:  # not JSON, or not UTF-8
        return None


def _product_response(product: dict, version: int) -> web.Response:
    return _json(product, 200, {"ETag": etag_of(version)})


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every error is JSON with a message: no route (404), wrong method (405, with Allow), a crash (500)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return _message(exc.status, exc.reason, headers)
    except Exception:
        log.exception("error in %s %s", request.method, request.path)
        return _message(500, "internal error in the reference peers")


def create_app(seed: str | None = None, *, latency_ms: float | None = None,
               error_rate: float | None = None) -> web.Application:
    """The peers app. `seed` ("demo" or "empty") defaults to $REFPEERS_SEED, then "demo";
    initial faults come from $REFPEERS_LATENCY_MS / $REFPEERS_ERROR_RATE unless given here."""
    seed = seed or os.environ.get("REFPEERS_SEED", "").strip() or "demo"
    if seed not in SEEDS:
        raise ValueError(f"unknown refpeers seed {seed!r}; expected one of {SEEDS}")

    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    peers = Peers()
    app[PEERS] = peers
    peers.reset(demo_data() if seed == "demo" else {})
    initial = from_env()
    if latency_ms is not None:
        initial["latency_ms"] = latency_ms
    if error_rate is not None:
        initial["error_rate"] = error_rate
    try:
        peers.faults.update(initial)
    except Invalid as exc:
        raise ValueError(f"invalid initial faults: {exc}") from None

    store, faults, stats = peers.store, peers.faults, peers.stats

    async def peer_call(route: str, area: str, handler, request: web.Request) -> web.Response:
        """Run a peer handler under the current fault settings."""
        stats.request(route)
        key = int(request.match_info["key"])
        config = faults.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000.0)
        if not (config.active and config.hits(area)):
            return await handler(request, key)
        if faults.roll(config.error_rate):
            stats.fault("error")
            status = config.error_status
            headers = {"Retry-After": "1"} if status == 429 else None
            return _message(status, f"injected fault: answering {status}", headers)
        if faults.roll(config.garbage_rate):
            stats.fault("garbage")
            return web.Response(text=GARBAGE, content_type="text/html")
        if faults.roll(config.hang_rate):
            stats.fault("hang")
            # The handler goes on after a client that timed out has left (aiohttp's default, no handler
            # cancellation): a hung write still lands late, as a slow real catalog's would.
            await asyncio.sleep(config.hang_seconds)
        response = await handler(request, key)
        if route == "put_product" and response.status == 200 and faults.roll(config.put_apply_then_error_rate):
            stats.fault("put_apply_then_error")
            return _message(503, "injected fault: write applied, answering 503")
        return response

    # ------------------------------------------------------------ catalog

    async def get_product(request: web.Request, product_id: int) -> web.Response:
        found = store.get_product(product_id)
        if found is None:
            return _message(404, f"product {product_id} not found")
        return _product_response(*found)

    async def put_product(request: web.Request, product_id: int) -> web.Response:
        try:
            changes = parse_product_put(product_id, await _body(request))
        except Invalid as exc:
            return _message(400, str(exc))
        outcome = store.put_product(product_id, changes, request.headers.get("If-Match"))
        if outcome is None:
            return _message(404, f"product {product_id} not found")
        if isinstance(outcome, int):
            current = etag_of(outcome)
            return _message(412, f"product {product_id} changed: If-Match does not match {current}",
                            {"ETag": current}, etag=current)
        stats.write(product_id)
        return _product_response(*outcome)

    async def product_get(request: web.Request) -> web.Response:
        return await peer_call("get_product", "products", get_product, request)

    async def product_put(request: web.Request) -> web.Response:
        return await peer_call("put_product", "products", put_product, request)

    # --------------------------------------------------------------- cart

    async def get_cart(request: web.Request, customer_id: int) -> web.Response:
        cart = store.get_cart(customer_id)
        if cart is None:
            return _message(404, f"no cart for customer {customer_id}")
        return _json(cart)

    async def put_cart(request: web.Request, customer_id: int) -> web.Response:
        try:
            changes = parse_cart_put(customer_id, await _body(request))
        except Invalid as exc:
            return _message(400, str(exc))
        cart = store.put_cart(customer_id, changes)
        if cart is None:
            return _message(404, f"no cart for customer {customer_id}")
        stats.cart_write(customer_id)
        return _json(cart)

    async def cart_get(request: web.Request) -> web.Response:
        return await peer_call("get_cart", "carts", get_cart, request)

    async def cart_put(request: web.Request) -> web.Response:
        return await peer_call("put_cart", "carts", put_cart, request)

    # -------------------------------------------------------------- admin

    async def admin_reset(request: web.Request) -> web.Response:
        raw = await request.read()
        body = await _body(request) if raw.strip() else {}  # an empty body resets to nothing
        try:
            products, carts = peers.reset(body)
        except Invalid as exc:
            return _message(400, str(exc))
        return _json({"products": products, "carts": carts})

    async def admin_state(request: web.Request) -> web.Response:
        return _json(store.dump())

    async def admin_faults_get(request: web.Request) -> web.Response:
        return _json(faults.as_dict())

    async def admin_faults_put(request: web.Request) -> web.Response:
        try:
            return _json(faults.update(await _body(request)))
        except Invalid as exc:
            return _message(400, str(exc))

    async def admin_stats(request: web.Request) -> web.Response:
        return _json(stats.snapshot())

    app.router.add_get(f"/products/{ID}", product_get)
    app.router.add_put(f"/products/{ID}", product_put)
    app.router.add_get(f"/carts/{ID}", cart_get)
    app.router.add_put(f"/carts/{ID}", cart_put)
    app.router.add_post("/admin/reset", admin_reset)
    app.router.add_get("/admin/state", admin_state)
    app.router.add_get("/admin/faults", admin_faults_get)
    app.router.add_put("/admin/faults", admin_faults_put)
    app.router.add_get("/admin/stats", admin_stats)
    return app
