"""Counters a test or the chaos run asserts on: requests, injected faults, applied writes.

Why separate from the store: counting must not be undone by product/cart
writes, and it is cleared by /admin/reset along with the data. No lock: the
server's one event loop thread is the only one that counts.
"""
from __future__ import annotations

ROUTES = ("get_product", "put_product", "get_cart", "put_cart")
FAULTS = ("error", "put_apply_then_error", "hang", "garbage")


class Stats:
    """Counters, cleared by `clear()`."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._requests = dict.fromkeys(ROUTES, 0)
        self._faults = dict.fromkeys(FAULTS, 0)
        self._writes: dict[int, int] = {}
        self._cart_writes: dict[int, int] = {}

    def request(self, route: str) -> None:
        self._requests[route] += 1

    def fault(self, kind: str) -> None:
        self._faults[kind] += 1

    def write(self, product_id: int) -> None:
        """A product write that was applied (including those then answered with 503)."""
        self._writes[product_id] = self._writes.get(product_id, 0) + 1

    def cart_write(self, customer_id: int) -> None:
        self._cart_writes[customer_id] = self._cart_writes.get(customer_id, 0) + 1

    def snapshot(self) -> dict:
        return {
            "requests": dict(self._requests),
            "faults": dict(self._faults),
            "writes": {str(k): v for k, v in sorted(self._writes.items())},
            "cart_writes": {str(k): v for k, v in sorted(self._cart_writes.items())},
        }
