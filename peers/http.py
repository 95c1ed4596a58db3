"""Peer calls: one urllib3 pool per peer and process, a thread pool per process for calls made at
once, and the mapping of HTTP outcomes to peer errors.

Every call has a timeout; statuses are sorted into transient (retry) and
permanent (give up) here, once, for both peers.

A call is a function of no arguments (`Catalog.get_product(1)` returns one,
unsent); `wait` makes it in the caller's thread, `gather` hands several to this
process's thread pool at once and waits for them all. The caller's context
variables (log ids, the trace's current span) go with each call.
"""
from __future__ import annotations

import contextvars
import json as jsonlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ReadTimeoutError

from peers.errors import BadPeerResponse, NotFound, PreconditionFailed, TransientPeerError
from process_local import ProcessLocal

_TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
# Threads of a process's calls made at once: enough for both peers' pools (PEER_POOL_SIZE each) to be
# busy together; a call past its peer's pool waits there for a connection.
GATHER_THREADS = 64
R = TypeVar("R")
Call = Callable[[], R]

_threads: ProcessLocal[ThreadPoolExecutor] = ProcessLocal(
    lambda: ThreadPoolExecutor(max_workers=GATHER_THREADS, thread_name_prefix="peer-calls"))


def wait(call: Call[R]) -> R:
    """Make one peer call; its result, or the exception it raised."""
    return call()


def gather(calls: Sequence[Call[R]]) -> list[R | Exception]:
    """Make peer calls at once; each result, or the exception it raised, in order."""
    if not calls:  # e.g. a batch with no cart to read: nothing to hand over
        return []
    pool = _threads.get()
    futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    results: list[R | Exception] = []
    for future in futures:
        try:
            results.append(future.result())
        except Exception as exc:  # a value here: each call answers for itself
            results.append(exc)
    return results


@dataclass(frozen=True)
class Answer:
    """A peer's 2xx answer, read whole."""

    status: int
    headers: Mapping[str, str]  # urllib3's: names match whatever their case
    data: bytes


class PeerHttp:
    """A peer's base URL, with a connection pool per process."""

    def __init__(self, name: str, base_url: str, timeout: float, pool_size: int):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.pool_size = pool_size
        self._pool = ProcessLocal(self._new_pool)

    def _new_pool(self) -> urllib3.PoolManager:
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")  # used for https only
        # At most pool_size calls to this peer at once per process; a call past that waits for a connection.
        return urllib3.PoolManager(maxsize=self.pool_size, block=True, ca_certs=ca_bundle, retries=False,
                                   timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))

    def call(self, method: str, path: str, *, json=None, headers=None) -> Answer:
        """Send one request; return a 2xx answer or raise the matching PeerError."""
        try:
            response = self._pool.get().request(method, f"{self.base_url}{path}", json=json, headers=headers,
                                                redirect=False)
        except ConnectTimeoutError as exc:  # refused, unresolvable or no connection in time: it never reached the peer
            raise TransientPeerError(f"{self.name} unreachable: {exc.__class__.__name__}", peer=self.name) from exc
        except ReadTimeoutError as exc:
            raise TransientPeerError(f"{self.name} timed out after {self.timeout}s", peer=self.name) from exc
        except HTTPError as exc:  # the connection broke: a write may have reached the peer
            raise TransientPeerError(f"{self.name} unreachable: {exc.__class__.__name__}", peer=self.name) from exc
        answer = Answer(response.status, response.headers, response.data)
        status = answer.status
        if status < 300:
            return answer
        if status == 404:
            raise NotFound(f"{self.name}: {path} not found", peer=self.name, status=status)
        if status == 412:
            raise PreconditionFailed(f"{self.name}: {path} changed since it was read", peer=self.name, status=status)
        if status in _TRANSIENT_STATUSES:
            raise TransientPeerError(
                f"{self.name} answered {status}",
                peer=self.name,
                status=status,
                retry_after=_retry_after(answer),
            )
        raise BadPeerResponse(f"{self.name} answered {status} to {method} {path}", peer=self.name, status=status)

    def json(self, answer: Answer):
        """The body as JSON, or BadPeerResponse when it is not JSON."""
        try:
            return jsonlib.loads(answer.data)
        except ValueError:
            kind = answer.headers.get("Content-Type", "unknown content type")
            raise BadPeerResponse(f"{self.name} answered {kind}, not JSON", peer=self.name,
                                  status=answer.status) from None

    def close(self) -> None:
        """Close this process's connections, if it made any (at shutdown)."""
        pool = self._pool.peek()
        if pool is not None:
            pool.clear()
            self._pool.forget()


def _retry_after(answer: Answer) -> float | None:
    value = answer.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
