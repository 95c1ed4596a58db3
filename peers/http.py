"""One pooled HTTP client per process, and the mapping of HTTP outcomes to peer errors.

Every call has a timeout; statuses are sorted into transient (retry) and
permanent (give up) here, once, for both peers. urllib3 is used directly (it is
what requests runs on): a worker makes several peer calls per order, and
requests' per-call preparation cost more CPU than the calls themselves.
"""
from __future__ import annotations

import json as jsonlib
import os

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from peers.errors import AmbiguousWrite, BadPeerResponse, NotFound, PreconditionFailed, TransientPeerError
from process_local import ProcessLocal

_TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class PeerHttp:
    """A peer's base URL with a connection pool that belongs to the current process."""

    def __init__(self, name: str, base_url: str, timeout: float, pool_size: int):
        self.name = name
        self.base_url = base_url.rstrip("/")
        # The pool is the peer's host; each request names only the path (a PoolManager would work
        # out which host's pool a URL belongs to on every call).
        self.base_path = urllib3.util.parse_url(self.base_url).path or ""
        self.timeout = timeout
        self.pool_size = pool_size
        self._pool = ProcessLocal(self._new_pool)

    def _new_pool(self) -> urllib3.HTTPConnectionPool:
        options = {}
        if self.base_url.startswith("https:"):
            options["ca_certs"] = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        return urllib3.connection_from_url(self.base_url, maxsize=self.pool_size, block=False, retries=False,
                                           timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
                                           **options)

    @property
    def pool(self) -> urllib3.HTTPConnectionPool:
        """The connection pool of this process (rebuilt after a fork)."""
        return self._pool.get()

    def call(self, method: str, path: str, *, json=None, headers=None) -> urllib3.BaseHTTPResponse:
        """Send one request; return a 2xx response or raise the matching PeerError."""
        write = method != "GET"
        try:
            response = self.pool.request(method, f"{self.base_path}{path}", json=json, headers=headers)
        except NewConnectionError as exc:  # refused or unresolvable: it never reached the peer
            raise TransientPeerError(f"{self.name} unreachable: {exc.__class__.__name__}", peer=self.name) from exc
        except TimeoutError as exc:
            error = AmbiguousWrite if write else TransientPeerError
            raise error(f"{self.name} timed out after {self.timeout}s", peer=self.name) from exc
        except HTTPError as exc:  # the connection broke: a write may have reached the peer
            error = AmbiguousWrite if write else TransientPeerError
            raise error(f"{self.name} unreachable: {exc.__class__.__name__}", peer=self.name) from exc
        status = response.status
        if status < 300:
            return response
        if status == 404:
            raise NotFound(f"{self.name}: {path} not found", peer=self.name, status=status)
        if status == 412:
            raise PreconditionFailed(f"{self.name}: {path} changed since it was read", peer=self.name, status=status)
        if status in _TRANSIENT_STATUSES:
            error = AmbiguousWrite if write and status != 429 else TransientPeerError
            raise error(
                f"{self.name} answered {status}",
                peer=self.name,
                status=status,
                retry_after=_retry_after(response),
            )
        raise BadPeerResponse(f"{self.name} answered {status} to {method} {path}", peer=self.name, status=status)

    def json(self, response: urllib3.BaseHTTPResponse):
        """The body as JSON, or BadPeerResponse when it is not JSON."""
        try:
            return jsonlib.loads(response.data)
        except ValueError:
            kind = response.headers.get("Content-Type", "unknown content type")
            raise BadPeerResponse(f"{self.name} answered {kind}, not JSON", peer=self.name,
                                  status=response.status) from None


def _retry_after(response: urllib3.BaseHTTPResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
