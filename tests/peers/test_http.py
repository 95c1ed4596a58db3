"""HTTP outcomes are sorted into retry / reconcile / give up, against a real local HTTP server."""
import contextvars
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from peers import Catalog, PeerHttp
from peers.http import gather, wait
from peers.errors import BadPeerResponse, NotFound, PreconditionFailed, TransientPeerError

ANSWERS = {}
SLOW = {"in_flight": 0, "most": 0, "lock": threading.Lock()}


class Handler(BaseHTTPRequestHandler):
    def _answer(self):
        if self.path.startswith("/slow/"):  # /slow/<seconds>: answers 200 that much later
            with SLOW["lock"]:
                SLOW["in_flight"] += 1
                SLOW["most"] = max(SLOW["most"], SLOW["in_flight"])
            time.sleep(float(self.path.rsplit("/", 1)[1]))
            with SLOW["lock"]:
                SLOW["in_flight"] -= 1
            ANSWERS[self.path] = (200, {"Content-Type": "application/json"}, "{}")
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
    client = PeerHttp("catalog", base_url, timeout=2, pool_size=2)
    yield client
    client.close()


@pytest.mark.parametrize("status,error", [
    (404, NotFound), (412, PreconditionFailed), (503, TransientPeerError), (500, TransientPeerError),
    (400, BadPeerResponse), (418, BadPeerResponse),
])
def test_read_statuses_map_to_errors(http, status, error):
    answer("/x", status)
    with pytest.raises(error):
        wait(http.call("GET", "/x"))


def test_a_5xx_to_a_write_is_transient_and_429_carries_retry_after(http):
    answer("/w", 503)
    with pytest.raises(TransientPeerError):
        wait(http.call("PUT", "/w", json={}))
    answer("/w", 429, headers={"Retry-After": "7"})
    with pytest.raises(TransientPeerError) as caught:
        wait(http.call("PUT", "/w", json={}))
    assert caught.value.retry_after == 7.0


def test_a_refused_connection_is_transient_even_for_a_write():
    closed = PeerHttp("catalog", "http://127.0.0.1:9", timeout=1, pool_size=1)
    with pytest.raises(TransientPeerError):
        wait(closed.call("PUT", "/products/1", json={}))
    closed.close()


def test_catalog_checks_the_product_it_is_given(http):
    catalog = Catalog(http)
    answer("/products/1", 200, json.dumps({"id": 1, "quantity": 4}), {"ETag": '"3"'})
    product = wait(catalog.get_product(1))
    assert (product.quantity, product.etag) == (4, '"3"')
    for body in ('{"id": 1}', '{"quantity": -1}', '{"quantity": "4"}', "[1]"):
        answer("/products/1", 200, body)
        with pytest.raises(BadPeerResponse):
            wait(catalog.get_product(1))
    ANSWERS["/products/1"] = (200, {"Content-Type": "text/html"}, "<html>oops</html>")
    with pytest.raises(BadPeerResponse, match="text/html"):
        wait(catalog.get_product(1))


def test_gathered_calls_run_at_once_and_each_answers_for_itself(http):
    answer("/missing", 404)
    SLOW["most"] = 0
    answers = gather([http.call("GET", "/slow/0.3") for _ in range(4)] + [http.call("GET", "/missing")])
    assert [a.status for a in answers[:4]] == [200] * 4
    assert isinstance(answers[4], NotFound)
    assert SLOW["most"] > 1  # the four slow calls overlapped at the server


def test_an_answer_slower_than_the_timeout_is_transient_to_a_read_and_to_a_write(base_url):
    impatient = PeerHttp("catalog", base_url, timeout=0.2, pool_size=2)
    try:
        with pytest.raises(TransientPeerError, match="timed out"):
            wait(impatient.call("GET", "/slow/1"))
        with pytest.raises(TransientPeerError, match="timed out"):
            wait(impatient.call("PUT", "/slow/1", json={}))
    finally:
        impatient.close()


def test_a_call_sees_the_context_of_the_thread_that_made_it():
    request_id = contextvars.ContextVar("request_id", default=None)

    async def seen():
        return request_id.get()

    request_id.set("req-7")
    assert gather([seen(), seen()]) == ["req-7", "req-7"]
    assert wait(seen()) == "req-7"
