"""Which URLs the service will POST to.

A callback URL comes from a client, so it must not become a way into our own
network (SSRF): only http(s), no credentials, and no host that resolves to a
loopback, private, link-local, multicast or otherwise non-public address unless an
operator allowed it (WEBHOOK_ALLOW_PRIVATE, for receivers inside the same
network). The address is checked when the URL is given and again before each
send, since DNS answers change; a send then connects to an address that passed
that check (`Destination`), so a name that resolves elsewhere a moment later
(DNS rebinding) cannot move the request into our network.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeUrl(ValueError):
    """The URL is malformed or points somewhere the service must not send to."""


class Unresolvable(UnsafeUrl):
    """The host has no address right now (which may change: a send is retried)."""


def check_form(url: str) -> None:
    """An absolute http(s) URL with a host and no user:password part."""
    if len(url) > MAX_LENGTH:
        raise UnsafeUrl(f"longer than {MAX_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not allowed")
    if port == 0:
        raise UnsafeUrl("port 0 is not allowed")


@dataclass(frozen=True)
class Destination:
    """Where a send goes: the addresses the host resolved to, all of them checked, and what the
    request still owes the name (the Host header, the TLS server name and certificate check)."""

    scheme: str
    host: str  # the URL's host in ASCII (IDNA), an IP literal without brackets
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def resolve(url: str, allow_private: bool) -> Destination:
    """Resolve the URL's host once and check every address (unless private ones are allowed)."""
    check_form(url)
    parts = urlsplit(url)
    try:
        host = parts.hostname if parts.hostname.isascii() else parts.hostname.encode("idna").decode("ascii")
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"the host {parts.hostname} cannot be resolved ({exc})") from None
    addresses = []
    for info in infos:
        literal = info[4][0]
        address = ipaddress.ip_address(literal.split("%", 1)[0])
        address = getattr(address, "ipv4_mapped", None) or address
        if not allow_private and (not address.is_global or address.is_multicast):
            raise UnsafeUrl(f"the host {parts.hostname} resolves to {address}, which is not a public address")
        if literal not in addresses:
            addresses.append(literal)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, host, port, target, tuple(addresses))


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse a host that resolves (in any of its addresses) to a non-public address."""
    check_form(url)
    if not allow_private:
        resolve(url, allow_private)
