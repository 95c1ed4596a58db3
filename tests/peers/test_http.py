"""HTTP outcomes are sorted into retry / reconcile / give up, against a real local HTTP server."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from peers import Catalog, PeerHttp
from peers.errors import AmbiguousWrite, BadPeerResponse, NotFound, PreconditionFailed, TransientPeerError

ANSWERS = {}


class Handler(BaseHTTPRequestHandler):
    def _answer(self):
        status, headers, body = ANSWERS[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def answer(path, status, body="{}", headers=None):
    ANSWERS[path] = (status, {"Content-Type": "application/json", **(headers or {})}, body)


@pytest.fixture()
def http(base_url):
    return PeerHttp("catalog", base_url, timeout=2, pool_size=2)


@pytest.mark.parametrize("status,error", [
    (404, NotFound), (412, PreconditionFailed), (503, TransientPeerError), (500, TransientPeerError),
    (400, BadPeerResponse), (418, BadPeerResponse),
])
def test_read_statuses_map_to_errors(http, status, error):
    answer("/x", status)
    with pytest.raises(error) as caught:
        http.call("GET", "/x")
    assert not isinstance(caught.value, AmbiguousWrite)


def test_a_5xx_to_a_write_is_ambiguous_and_429_carries_retry_after(http):
    answer("/w", 503)
    with pytest.raises(AmbiguousWrite):
        http.call("PUT", "/w", json={})
    answer("/w", 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientPeerError) as caught:
        http.call("PUT", "/w", json={})
    assert not isinstance(caught.value, AmbiguousWrite) and caught.value.retry_after == 7.0


def test_a_refused_connection_is_transient_even_for_a_write():
    closed = PeerHttp("catalog", "http://127.0.0.1:9", timeout=1, pool_size=1)
    with pytest.raises(TransientPeerError) as caught:
        closed.call("PUT", "/products/1", json={})
    assert not isinstance(caught.value, AmbiguousWrite)


def test_catalog_checks_the_product_it_is_given(http):
    catalog = Catalog(http)
    answer("/products/1", 200, json.dumps({"id": 1, "quantity": 4}), {"ETag": '"3"'})
    product = catalog.get_product(1)
    assert (product.quantity, product.etag) == (4, '"3"')
    for body in ('{"id": 1}', '{"quantity": -1}', '{"quantity": "4"}', "[1]"):
        answer("/products/1", 200, body)
        with pytest.raises(BadPeerResponse):
            catalog.get_product(1)
    ANSWERS["/products/1"] = (200, {"Content-Type": "text/html"}, "<html>oops</html>")
    with pytest.raises(BadPeerResponse, match="text/html"):
        catalog.get_product(1)
