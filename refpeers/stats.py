"""Counters a test or the chaos run asserts on: requests, injected faults, applied writes.

Why separate from the store: counting must not contend with (or be undone by)
product/cart writes, and it is cleared by /admin/reset along with the data.
"""
from __future__ import annotations

import threading

ROUTES = ("get_product", "put_product", "get_cart", "put_cart")
FAULTS = ("error", "put_apply_then_error", "hang", "garbage")


class Stats:
    """Thread-safe counters, cleared by `clear()`."""

    def __init__(self):
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._requests = dict.fromkeys(ROUTES, 0)
            self._faults = dict.fromkeys(FAULTS, 0)
            self._writes: dict[int, int] = {}
            self._cart_writes: dict[int, int] = {}

    def request(self, route: str) -> None:
        with self._lock:
            self._requests[route] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def write(self, product_id: int) -> None:
        """A product write that was applied (including those then answered with 503)."""
        with self._lock:
            self._writes[product_id] = self._writes.get(product_id, 0) + 1

    def cart_write(self, customer_id: int) -> None:
        with self._lock:
            self._cart_writes[customer_id] = self._cart_writes.get(customer_id, 0) + 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "faults": dict(self._faults),
                "writes": {str(k): v for k, v in sorted(self._writes.items())},
                "cart_writes": {str(k): v for k, v in sorted(self._cart_writes.items())},
            }
