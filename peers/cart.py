"""Client of the Shopping Cart service: read a customer's cart, mark it Ordered (coroutines: see peers.http)."""
from __future__ import annotations

from peers.errors import BadPeerResponse
from peers.http import PeerHttp

CART_ORDERED = "Ordered"


class Carts:
    """The cart service's two calls."""

    def __init__(self, http: PeerHttp):
        self.http = http

    async def get_items(self, customer_id: int) -> list:
        """The cart's raw item list; NotFound when the customer has no cart."""
        body = self.http.json(await self.http.call("GET", f"/carts/{customer_id}"))
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise BadPeerResponse(
                f"cart of customer {customer_id} has no item list", peer=self.http.name, status=200
            )
        return items

    async def mark_ordered(self, customer_id: int) -> None:
        """Close the cart once its order is saved (idempotent on the cart's side)."""
        await self.http.call("PUT", f"/carts/{customer_id}", json={"status": CART_ORDERED})
