"""Client of the Shopping Cart service: read a customer's cart, mark it Ordered (calls: see peers.http)."""
from __future__ import annotations

from functools import partial

from peers.errors import BadPeerResponse
from peers.http import Call, PeerHttp

CART_ORDERED = "Ordered"


class Carts:
    """The cart service's two calls, each returned unsent."""

    def __init__(self, http: PeerHttp):
        self.http = http

    def get_items(self, customer_id: int) -> Call[list]:
        """The cart's raw item list; NotFound when the customer has no cart."""
        return partial(self._get_items, customer_id)

    def mark_ordered(self, customer_id: int) -> Call[None]:
        """Close the cart once its order is saved (idempotent on the cart's side)."""
        return partial(self._mark_ordered, customer_id)

    def _get_items(self, customer_id: int) -> list:
        body = self.http.json(self.http.call("GET", f"/carts/{customer_id}"))
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise BadPeerResponse(
                f"cart of customer {customer_id} has no item list", peer=self.http.name, status=200
            )
        return items

    def _mark_ordered(self, customer_id: int) -> None:
        self.http.call("PUT", f"/carts/{customer_id}", json={"status": CART_ORDERED})
