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
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}

# The URL form the API accepts, as a regular expression for its OpenAPI document (ECMA-262 syntax, which
# Python shares here): http(s), a host name, IPv4 or bracketed IPv6 address (RFC 3986 grammar), a port
# 1-65535, then path, query and fragment of RFC 3986 characters. Every match passes `check_form`, so a
# client (or a fuzzer) that follows the document is never refused for the URL's form.
_HEX4 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LS32 = rf"(?:{_HEX4}:{_HEX4}|{_IPV4})"
_IPV6 = "(?:" + "|".join([
    rf"(?:{_HEX4}:){{6}}{_LS32}",
    rf"::(?:{_HEX4}:){{5}}{_LS32}",
    rf"(?:{_HEX4})?::(?:{_HEX4}:){{4}}{_LS32}",
    rf"(?:(?:{_HEX4}:){{0,1}}{_HEX4})?::(?:{_HEX4}:){{3}}{_LS32}",
    rf"(?:(?:{_HEX4}:){{0,2}}{_HEX4})?::(?:{_HEX4}:){{2}}{_LS32}",
    rf"(?:(?:{_HEX4}:){{0,3}}{_HEX4})?::{_HEX4}:{_LS32}",
    rf"(?:(?:{_HEX4}:){{0,4}}{_HEX4})?::{_LS32}",
    rf"(?:(?:{_HEX4}:){{0,5}}{_HEX4})?::{_HEX4}",
    rf"(?:(?:{_HEX4}:){{0,6}}{_HEX4})?::",
]) + ")"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[{_IPV6}\])"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_PCHAR = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
URL_PATTERN = (rf"^https?://{_HOST}(?::{_PORT})?(?:/{_PCHAR}*)*"
               rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$")
_URL = re.compile(URL_PATTERN)


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


def check_pattern(url: str) -> None:
    """The URL has the documented form (`URL_PATTERN`, matched whole), which `check_form` then accepts."""
    if _URL.fullmatch(url) is None:
        raise UnsafeUrl("not an http(s) URL with a host name or IP address, an optional port and RFC 3986 "
                        "characters (see the pattern in the OpenAPI document)")


def check_destination(url: str, allow_private: bool) -> None:
    """Refuse a host that resolves (in any of its addresses) to a non-public address."""
    check_form(url)
    if not allow_private:
        resolve(url, allow_private)
