"""HTTP clients of the two peer services, Product Catalog and Shopping Cart."""
from peers.cart import Carts
from peers.catalog import Catalog, Product
from peers.http import PeerHttp

__all__ = ["Carts", "Catalog", "PeerHttp", "Product"]
