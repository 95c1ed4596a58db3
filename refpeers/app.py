"""The Flask app: the peer contract routes, the admin routes, and JSON errors.

Why it is shaped like this: peer routes go through `_peer_call`, which counts
the request, adds latency and rolls the fault dice only for the peer contract;
admin routes never see faults or latency so tests can always inspect and reset.
No per-request logging and no per-request hooks: the server sits under
benchmarks and a chaos test, so a peer call does only what it must.
"""
from __future__ import annotations

import json
import os
import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, InternalServerError

from refpeers.faults import Faults, from_env
from refpeers.state import Invalid, Store, demo_data, etag_of, parse_cart_put, parse_product_put, parse_reset
from refpeers.stats import Stats

SEEDS = ("demo", "empty")
GARBAGE = "<html>oops</html>"


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


def _json(body, status: int = 200, headers=None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def _message(status: int, message: str, headers=None, **extra) -> Response:
    return _json({"message": message, **extra}, status, headers)


def _body():
    """The request's JSON body, whatever its Content-Type; None when it is not JSON."""
    return request.get_json(force=True, silent=True)


def _product_response(product: dict, version: int) -> Response:
    return _json(product, 200, {"ETag": etag_of(version)})


def create_app(seed: str | None = None, *, latency_ms: float | None = None, error_rate: float | None = None) -> Flask:
    """The peers app. `seed` ("demo" or "empty") defaults to $REFPEERS_SEED, then "demo";
    initial faults come from $REFPEERS_LATENCY_MS / $REFPEERS_ERROR_RATE unless given here."""
    seed = seed or os.environ.get("REFPEERS_SEED", "").strip() or "demo"
    if seed not in SEEDS:
        raise ValueError(f"unknown refpeers seed {seed!r}; expected one of {SEEDS}")

    app = Flask("refpeers")
    peers = Peers()
    app.extensions["refpeers"] = peers
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

    def _peer_call(route: str, area: str, handler, key: int) -> Response:
        """Run a peer handler under the current fault settings."""
        stats.request(route)
        config = faults.config
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000.0)
        if not (config.active and config.hits(area)):
            return handler(key)
        if faults.roll(config.error_rate):
            stats.fault("error")
            status = config.error_status
            headers = {"Retry-After": "1"} if status == 429 else None
            return _message(status, f"injected fault: answering {status}", headers)
        if faults.roll(config.garbage_rate):
            stats.fault("garbage")
            return Response(GARBAGE, 200, mimetype="text/html")
        if faults.roll(config.hang_rate):
            stats.fault("hang")
            time.sleep(config.hang_seconds)
        response = handler(key)
        if route == "put_product" and response.status_code == 200 and faults.roll(config.put_apply_then_error_rate):
            stats.fault("put_apply_then_error")
            return _message(503, "injected fault: write applied, answering 503")
        return response

    # ------------------------------------------------------------ catalog

    def get_product(product_id: int) -> Response:
        found = store.get_product(product_id)
        if found is None:
            return _message(404, f"product {product_id} not found")
        return _product_response(*found)

    def put_product(product_id: int) -> Response:
        try:
            changes = parse_product_put(product_id, _body())
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

    @app.get("/products/<int:product_id>")
    def product_get(product_id: int):
        return _peer_call("get_product", "products", get_product, product_id)

    @app.put("/products/<int:product_id>")
    def product_put(product_id: int):
        return _peer_call("put_product", "products", put_product, product_id)

    # --------------------------------------------------------------- cart

    def get_cart(customer_id: int) -> Response:
        cart = store.get_cart(customer_id)
        if cart is None:
            return _message(404, f"no cart for customer {customer_id}")
        return _json(cart)

    def put_cart(customer_id: int) -> Response:
        try:
            changes = parse_cart_put(customer_id, _body())
        except Invalid as exc:
            return _message(400, str(exc))
        cart = store.put_cart(customer_id, changes)
        if cart is None:
            return _message(404, f"no cart for customer {customer_id}")
        stats.cart_write(customer_id)
        return _json(cart)

    @app.get("/carts/<int:customer_id>")
    def cart_get(customer_id: int):
        return _peer_call("get_cart", "carts", get_cart, customer_id)

    @app.put("/carts/<int:customer_id>")
    def cart_put(customer_id: int):
        return _peer_call("put_cart", "carts", put_cart, customer_id)

    # -------------------------------------------------------------- admin

    @app.post("/admin/reset")
    def admin_reset():
        body = _body() if request.get_data().strip() else {}  # an empty body resets to nothing
        try:
            products, carts = peers.reset(body)
        except Invalid as exc:
            return _message(400, str(exc))
        return _json({"products": products, "carts": carts})

    @app.get("/admin/state")
    def admin_state():
        return _json(store.dump())

    @app.get("/admin/faults")
    def admin_faults_get():
        return _json(faults.as_dict())

    @app.put("/admin/faults")
    def admin_faults_put():
        try:
            return _json(faults.update(_body()))
        except Invalid as exc:
            return _message(400, str(exc))

    @app.get("/admin/stats")
    def admin_stats():
        return _json(stats.snapshot())

    # ------------------------------------------------------------- errors

    def http_error(exc: HTTPException) -> Response:
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return _message(exc.code or 500, exc.description or exc.name, headers)

    def server_error(exc) -> Response:
        return _message(500, "internal error in the reference peers")

    for code in (400, 404, 405):
        app.register_error_handler(code, http_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(InternalServerError, server_error)
    app.register_error_handler(Exception, server_error)
    return app
