"""A send connects to an address that passed the SSRF check, never to what the name resolves to later
(DNS rebinding), and still names the host: Host header, TLS server name and certificate check."""
import socket

import pytest
from urllib3.exceptions import NewConnectionError

from webhooks.sending import post
from webhooks.urls import resolve

PUBLIC, LOOPBACK = "93.184.216.34", "127.0.0.1"


def _answer(address: str, port: int) -> list:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


@pytest.fixture()
def rebinding_dns(monkeypatch):
    """A name whose first answer is a public address and whose next answer is loopback."""
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        return _answer(PUBLIC if len(asked) == 1 else LOOPBACK, port)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


class Pools:
    """The HTTP client's pools, recorded (the neighbour of `post`); `refusing` addresses refuse connections."""

    def __init__(self, refusing=()):
        self.opened, self.requests, self.refusing = [], [], set(refusing)

    def connection_from_host(self, host, port, scheme, pool_kwargs=None):
        self.opened.append((host, port, scheme, pool_kwargs))
        pools = self

        class Pool:
            def urlopen(self, method, target, headers, **kwargs):
                if host in pools.refusing:
                    raise NewConnectionError(None, f"refused by {host}")
                pools.requests.append((host, method, target, headers["Host"]))
                return type("Response", (), {"status": 204})()

        return Pool()


def test_the_request_goes_to_the_address_that_passed_the_check(rebinding_dns):
    destination = resolve("https://hooks.example:8443/in?x=1", allow_private=False)
    pools = Pools()

    response = post(pools, destination, b"{}", {"Content-Type": "application/json"}, timeout=1)

    assert response.status == 204
    assert rebinding_dns == ["hooks.example"]  # resolved once: the loopback answer is never asked for
    assert pools.opened == [(PUBLIC, 8443, "https", {"server_hostname": "hooks.example",
                                                     "assert_hostname": "hooks.example"})]
    assert pools.requests == [(PUBLIC, "POST", "/in?x=1", "hooks.example:8443")]


def test_a_name_resolving_to_loopback_at_send_time_is_refused(rebinding_dns):
    resolve("http://hooks.example/in", allow_private=False)  # the check at submission: public

    with pytest.raises(ValueError, match="resolves to 127.0.0.1, which is not a public address"):
        resolve("http://hooks.example/in", allow_private=False)  # the send: checked again, refused


def test_each_checked_address_is_tried_in_turn_and_nothing_else(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [*_answer("198.51.100.7", port),
                                                                           *_answer(PUBLIC, port)])
    destination = resolve("http://hooks.example/in", allow_private=True)
    pools = Pools(refusing={"198.51.100.7"})

    post(pools, destination, b"{}", {}, timeout=1)

    assert [opened[0] for opened in pools.opened] == ["198.51.100.7", PUBLIC]
    assert pools.requests == [(PUBLIC, "POST", "/in", "hooks.example")]
    assert pools.opened[0][3] is None  # plain http: no TLS settings
