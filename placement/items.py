"""The one definition of a valid item list, for submitted bodies and carts alike."""
from __future__ import annotations

INT32_MAX = 2**31 - 1


class InvalidItems(ValueError):
    """The list is not a list of {product_id, quantity} with positive integers."""


def normalize(raw) -> list[dict]:
    """Check the items and merge lines of the same product, sorted by product id.

    Sorting fixes the order products are locked and written in, so two jobs
    sharing products always meet them in the same order.
    """
    if not isinstance(raw, list):
        raise InvalidItems("items must be a list")
    merged: dict[int, int] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidItems(f"item {index} is not an object")
        product_id, quantity = item.get("product_id"), item.get("quantity")
        for name, value in (("product_id", product_id), ("quantity", quantity)):
            if type(value) is not int or not 1 <= value <= INT32_MAX:
                raise InvalidItems(f"item {index}: {name} must be a positive integer, got {value!r}")
        merged[product_id] = merged.get(product_id, 0) + quantity
        if merged[product_id] > INT32_MAX:
            raise InvalidItems(f"item {index}: total quantity of product {product_id} is too large")
    return [{"product_id": pid, "quantity": qty} for pid, qty in sorted(merged.items())]
