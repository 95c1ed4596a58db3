"""Client of the Product Catalog: read a product, write its new quantity (coroutines: see peers.http).

The contract is the seed's GET-then-PUT of the whole product. When the catalog
sends an ETag the write carries it as If-Match, so a write based on a stale
read is refused instead of silently undoing someone else's.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.inventory import QUANTITY_MAX
from peers.errors import BadPeerResponse
from peers.http import Answer, PeerHttp


@dataclass(frozen=True)
class Product:
    """A product as the catalog last showed it."""

    id: int
    quantity: int
    etag: str | None
    body: dict


class Catalog:
    """The catalog's two calls, with its answers checked against the contract."""

    def __init__(self, http: PeerHttp):
        self.http = http

    async def get_product(self, product_id: int) -> Product:
        """Read a product; NotFound when the catalog has no such product."""
        response = await self.http.call("GET", f"/products/{product_id}")
        return self._product(product_id, response)

    async def set_quantity(self, product: Product, quantity: int) -> Product:
        """Write a new quantity, conditional on the version read when the catalog has one."""
        headers = {"If-Match": product.etag} if product.etag else None
        body = {**product.body, "quantity": quantity}
        response = await self.http.call("PUT", f"/products/{product.id}", json=body, headers=headers)
        return self._product(product.id, response)

    def _product(self, product_id: int, response: Answer) -> Product:
        body = self.http.json(response)
        quantity = body.get("quantity") if isinstance(body, dict) else None
        if type(quantity) is not int or not 0 <= quantity <= QUANTITY_MAX:
            # Beyond QUANTITY_MAX, the ledger could not record the product's writes: found here,
            # before any write, it ends only the jobs that need the product.
            raise BadPeerResponse(
                f"catalog product {product_id} has no valid quantity ({repr(quantity)[:100]}; expected an integer "
                f"from 0 to {QUANTITY_MAX})",
                peer=self.http.name,
                status=response.status,
                about={"product_id": product_id, "quantity": quantity if type(quantity) is int else repr(quantity)[:100]},
            )
        return Product(id=product_id, quantity=quantity, etag=response.headers.get("ETag"), body=body)
