"""The peers' data: products (with a version per product) and carts, in memory.

Why no lock: the server runs on one asyncio event loop, and no method here
awaits, so a check-and-apply (the If-Match check of a conditional product
write and the write itself) can never interleave with another request. Reads
return copies, so what a caller holds never changes under it.

Also here: validation of request bodies (raises `Invalid`, which the routes
turn into 400) and `demo_data()`, the reset body used by `--seed demo`.
"""
from __future__ import annotations

import math

DEFAULT_CART_STATUS = "Open"


class Invalid(ValueError):
    """A request body that breaks the contract; answered with 400."""


def demo_data() -> dict:
    """Reset body of the demo seed: products 1..100 and carts of customers 1..50."""
    products = [
        {"id": n, "name": f"Product {n}", "price": n * 1.5, "quantity": 1000} for n in range(1, 101)
    ]
    carts = [
        {
            "customer_id": c,
            "items": [
                {"product_id": (c % 100) + 1, "quantity": 1},
                {"product_id": ((c + 1) % 100) + 1, "quantity": 2},
            ],
            "status": DEFAULT_CART_STATUS,
        }
        for c in range(1, 51)
    ]
    return {"products": products, "carts": carts}


def etag_of(version: int) -> str:
    """The ETag header value of a product version."""
    return f'"{version}"'


def etag_matches(if_match: str, version: int) -> bool:
    """Strong If-Match comparison: `*` or one of the listed tags equals the current one."""
    current = etag_of(version)
    return any(tag.strip() in ("*", current) for tag in if_match.split(","))


# ---------------------------------------------------------------- validation

def _is_int(value) -> bool:
    return type(value) is int


def _is_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _require_object(body, what: str) -> dict:
    if not isinstance(body, dict):
        raise Invalid(f"{what} must be a JSON object")
    return body


def _quantity(value, what: str) -> int:
    if not _is_int(value) or value < 0:
        raise Invalid(f"{what} must be an integer >= 0, got {value!r}")
    return value


def _name(value, what: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string")
    return value


def _price(value, what: str) -> float:
    if not _is_number(value) or value < 0:
        raise Invalid(f"{what} must be a number >= 0, got {value!r}")
    return float(value)


def _items(value, what: str) -> list:
    if not isinstance(value, list):
        raise Invalid(f"{what} must be a list")
    items = []
    for i, item in enumerate(value):
        item = _require_object(item, f"{what}[{i}]")
        product_id = item.get("product_id")
        if not _is_int(product_id):
            raise Invalid(f"{what}[{i}].product_id must be an integer")
        items.append({"product_id": product_id, "quantity": _quantity(item.get("quantity"), f"{what}[{i}].quantity")})
    return items


def parse_product_put(product_id: int, body) -> dict:
    """The changes a product PUT asks for: quantity (required), name and price (optional)."""
    body = _require_object(body, "product")
    if "id" in body and body["id"] != product_id:
        raise Invalid(f"body id {body['id']!r} does not match path id {product_id}")
    changes = {"quantity": _quantity(body.get("quantity"), "quantity")}
    if "name" in body:
        changes["name"] = _name(body["name"], "name")
    if "price" in body:
        changes["price"] = _price(body["price"], "price")
    return changes


def parse_cart_put(customer_id: int, body) -> dict:
    """The fields a cart PUT merges in; `items` and `status` are checked, others kept as given."""
    changes = dict(_require_object(body, "cart"))
    if "customer_id" in changes and changes.pop("customer_id") != customer_id:
        raise Invalid(f"body customer_id does not match path customer_id {customer_id}")
    if "status" in changes:
        _name(changes["status"], "status")
    if "items" in changes:
        changes["items"] = _items(changes["items"], "items")
    return changes


def parse_reset(body) -> tuple[dict, dict]:
    """Products by id and carts by customer id from an /admin/reset body."""
    body = _require_object(body, "reset body")
    unknown = set(body) - {"products", "carts"}
    if unknown:
        raise Invalid(f"unknown reset keys: {sorted(unknown)}")
    products_in, carts_in = body.get("products", []), body.get("carts", [])
    if not isinstance(products_in, list) or not isinstance(carts_in, list):
        raise Invalid("products and carts must be lists")
    products = {}
    for i, product in enumerate(products_in):
        product = _require_object(product, f"products[{i}]")
        product_id = product.get("id")
        if not _is_int(product_id):
            raise Invalid(f"products[{i}].id must be an integer")
        if product_id in products:
            raise Invalid(f"duplicate product id {product_id}")
        products[product_id] = {
            "id": product_id,
            "name": _name(product.get("name", f"Product {product_id}"), f"products[{i}].name"),
            "price": _price(product.get("price", 0.0), f"products[{i}].price"),
            "quantity": _quantity(product.get("quantity"), f"products[{i}].quantity"),
        }
    carts = {}
    for i, cart in enumerate(carts_in):
        cart = _require_object(cart, f"carts[{i}]")
        customer_id = cart.get("customer_id")
        if not _is_int(customer_id):
            raise Invalid(f"carts[{i}].customer_id must be an integer")
        if customer_id in carts:
            raise Invalid(f"duplicate cart for customer {customer_id}")
        carts[customer_id] = {
            "customer_id": customer_id,
            "items": _items(cart.get("items", []), f"carts[{i}].items"),
            "status": _name(cart.get("status", DEFAULT_CART_STATUS), f"carts[{i}].status"),
        }
    return products, carts


def _copy_cart(cart: dict) -> dict:
    copied = dict(cart)
    copied["items"] = [dict(item) for item in cart["items"]]
    return copied


# --------------------------------------------------------------------- store

class Store:
    """Products, their versions and carts."""

    def __init__(self):
        self._products: dict[int, dict] = {}
        self._versions: dict[int, int] = {}
        self._carts: dict[int, dict] = {}

    def reset(self, products: dict, carts: dict) -> None:
        """Replace everything (input as returned by `parse_reset`); versions restart at 1."""
        self._products = products
        self._versions = dict.fromkeys(products, 1)
        self._carts = carts

    def get_product(self, product_id: int) -> tuple[dict, int] | None:
        """(product, version), or None when unknown."""
        product = self._products.get(product_id)
        if product is None:
            return None
        return dict(product), self._versions[product_id]

    def put_product(self, product_id: int, changes: dict, if_match: str | None):
        """Apply a write. Returns (product, version) when applied, None when the product
        is unknown, or the current version (an int) when If-Match does not match."""
        product = self._products.get(product_id)
        if product is None:
            return None
        version = self._versions[product_id]
        if if_match is not None and not etag_matches(if_match, version):
            return version
        product.update(changes)
        version += 1
        self._versions[product_id] = version
        return dict(product), version

    def get_cart(self, customer_id: int) -> dict | None:
        cart = self._carts.get(customer_id)
        return None if cart is None else _copy_cart(cart)

    def put_cart(self, customer_id: int, changes: dict) -> dict | None:
        """Merge fields into a cart; None when the customer has no cart."""
        cart = self._carts.get(customer_id)
        if cart is None:
            return None
        cart.update(changes)
        return _copy_cart(cart)

    def dump(self) -> dict:
        """Everything, keyed by id, each product with its current version."""
        return {
            "products": {
                str(pid): {**product, "version": self._versions[pid]} for pid, product in self._products.items()
            },
            "carts": {str(cid): _copy_cart(cart) for cid, cart in self._carts.items()},
        }
