"""One pooled HTTP session per process, and the mapping of HTTP outcomes to peer errors.

Every call has a timeout; statuses are sorted into transient (retry) and
permanent (give up) here, once, for both peers.
"""
from __future__ import annotations

import os

import requests
from requests.adapters import HTTPAdapter

from peers.errors import AmbiguousWrite, BadPeerResponse, NotFound, PreconditionFailed, TransientPeerError

_TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class PeerHttp:
    """A peer's base URL with a connection pool that belongs to the current process."""

    def __init__(self, name: str, base_url: str, timeout: float, pool_size: int):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.pool_size = pool_size
        self._pid: int | None = None
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        """The pooled session of this process (rebuilt after a fork)."""
        if self._pid != os.getpid():
            session = requests.Session()
            # Peers are addressed directly: not reading proxy settings from the environment on
            # every call saves a tenth of a worker's CPU. A custom CA bundle is still honoured.
            session.trust_env = False
            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session, self._pid = session, os.getpid()
        return self._session

    def call(self, method: str, path: str, *, json=None, headers=None) -> requests.Response:
        """Send one request; return a 2xx response or raise the matching PeerError."""
        write = method != "GET"
        try:
            response = self.session.request(
                method, f"{self.base_url}{path}", json=json, headers=headers, timeout=self.timeout
            )
        except requests.ConnectionError as exc:
            # A refused connection never reached the peer; a broken one may have.
            error = AmbiguousWrite if write and not _never_sent(exc) else TransientPeerError
            raise error(f"{self.name} unreachable: {exc.__class__.__name__}", peer=self.name) from exc
        except requests.Timeout as exc:
            error = AmbiguousWrite if write else TransientPeerError
            raise error(f"{self.name} timed out after {self.timeout}s", peer=self.name) from exc
        status = response.status_code
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

    def json(self, response: requests.Response):
        """The body as JSON, or BadPeerResponse when it is not JSON."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "unknown content type")
            raise BadPeerResponse(f"{self.name} answered {kind}, not JSON", peer=self.name, status=response.status_code) from None


def _never_sent(exc: requests.ConnectionError) -> bool:
    text = str(exc)
    return "Connection refused" in text or "NewConnectionError" in text or "Name or service not known" in text


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
