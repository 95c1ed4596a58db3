"""The floor for the peers' cost: a catalog that answers without keeping anything, on the same server.

    python -m bench.bare_peer --port 8091

`GET /products/{id}` answers one product with an ETag and `PUT /products/{id}`
parses the body and echoes it, both on aiohttp as `refpeers` is served, with no
state, faults or counters. What `refpeers` costs per call above this is its own
work (`python -m bench.peer_cost` measures both).
"""
from __future__ import annotations

import argparse
import json

from aiohttp import web


async def get_product(request: web.Request) -> web.Response:
    product_id = int(request.match_info["key"])
    body = {"id": product_id, "name": f"Product {product_id}", "price": 1.5, "quantity": 1000}
    return web.Response(body=json.dumps(body).encode(), content_type="application/json", headers={"ETag": '"1"'})


async def put_product(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    return web.Response(body=json.dumps(body).encode(), content_type="application/json", headers={"ETag": '"2"'})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_peer", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/products/{key:[0-9]+}", get_product)
    app.router.add_put("/products/{key:[0-9]+}", put_product)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
