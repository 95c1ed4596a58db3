"""Which URLs the service will POST to.

A callback URL comes from a client, so it must not become a way into our own
network (SSRF): only http(s), no credentials, and no host that resolves to a
loopback, private, link-local, multicast or otherwise non-public address unless an
operator allowed it (WEBHOOK_ALLOW_PRIVATE, for receivers inside the same
network). The address is checked when the URL is given and again before each
send, since DNS answers change.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_LENGTH = 2048


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


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse a host that resolves (in any of its addresses) to a non-public address."""
    check_form(url)
    if allow_private:
        return
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"the host {parts.hostname} cannot be resolved ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        address = getattr(address, "ipv4_mapped", None) or address
        if not address.is_global or address.is_multicast:
            raise UnsafeUrl(f"the host {parts.hostname} resolves to {address}, which is not a public address")
