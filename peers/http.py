"""Peer calls: one aiohttp client per peer and process, on one event loop per process, and the mapping
of HTTP outcomes to peer errors.

Every call has a timeout; statuses are sorted into transient (retry) and
permanent (give up) here, once, for both peers.

Why an event loop, and not urllib3 from a thread pool as the webhook sender
does: a worker makes several peer calls per order, and they are most of its
CPU. In alternating end-to-end runs (bench/README.md, "Peer calls on an event
loop") the workers spent 27-33 % less CPU per order with the calls as coroutines
on one loop (aiohttp parses answers in C; no thread hand-off per call). The loop runs in a daemon thread of its own; callers in any
thread hand it a batch of calls (`gather`) or one (`wait`) and block until the
answers are in. The caller's context variables (log ids, the trace's current
span) go with each call.
"""
from __future__ import annotations

import asyncio
import json as jsonlib
import os
import ssl
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from peers.errors import BadPeerResponse, NotFound, PreconditionFailed, TransientPeerError
from process_local import ProcessLocal

_TRANSIENT_STATUSES = {408, 425, 429, 500, 502, 503, 504}
R = TypeVar("R")


def _start_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="peer-calls", daemon=True).start()
    return loop


_loop: ProcessLocal[asyncio.AbstractEventLoop] = ProcessLocal(_start_loop)


def wait(call: Coroutine[Any, Any, R]) -> R:
    """Run one peer call on this process's loop; its result, or the exception it raised."""
    return asyncio.run_coroutine_threadsafe(call, _loop.get()).result()


def gather(calls: Sequence[Coroutine[Any, Any, R]]) -> list[R | Exception]:
    """Run peer calls at once on this process's loop; each result, or the exception it raised, in order."""
    if not calls:  # e.g. a batch with no cart to read: no hand-over to the loop
        return []

    async def together():
        return await asyncio.gather(*calls, return_exceptions=True)

    return wait(together())


@dataclass(frozen=True)
class Answer:
    """A peer's 2xx answer, read whole."""

    status: int
    headers: Mapping[str, str]  # aiohttp's: names match whatever their case
    data: bytes


class PeerHttp:
    """A peer's base URL, with a client session (its connection pool) per process."""

    def __init__(self, name: str, base_url: str, timeout: float, pool_size: int):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.pool_size = pool_size
        self._session = ProcessLocal(self._new_session)

    def _new_session(self) -> aiohttp.ClientSession:
        """Made on the loop's thread, the first time a call of this process needs it."""
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        verify = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True  # used for https only
        # At most pool_size calls to this peer at once per process; a call past that waits for a connection.
        connector = aiohttp.TCPConnector(limit=self.pool_size, ssl=verify)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False)

    async def call(self, method: str, path: str, *, json=None, headers=None) -> Answer:
        """Send one request; return a 2xx answer or raise the matching PeerError."""
        try:
            async with self._session.get().request(method, f"{self.base_url}{path}", json=json,
                                                   headers=headers) as response:
                answer = Answer(response.status, response.headers, await response.read())
        except aiohttp.ClientConnectorError as exc:  # refused or unresolvable: it never reached the peer
            raise TransientPeerError(f"{self.name} unreachable: {exc.__class__.__name__}", peer=self.name) from exc
        except TimeoutError as exc:
            raise TransientPeerError(f"{self.name} timed out after {self.timeout}s", peer=self.name) from exc
        except aiohttp.ClientError as exc:  # the connection broke: a write may have reached the peer
            raise TransientPeerError(f"{self.name} unreachable: {exc.__class__.__name__}", peer=self.name) from exc
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
        """Close this process's session, if it made one (at shutdown)."""
        session = self._session.peek()
        if session is not None:
            wait(session.close())
            self._session.forget()


def _retry_after(answer: Answer) -> float | None:
    value = answer.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
