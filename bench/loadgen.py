"""A light HTTP/1.1 load generator for the benchmarks: asyncio protocols, keep-alive, no dependencies.

Why not wrk: the benchmarks need things wrk does not give without Lua glue —
a fixed number of requests (N orders, then wait for them), per-request
latencies for exact percentiles, the bodies of failed answers, and the
submitted count while memory is sampled — and it must run where wrk is not
installed. Why not requests/threads: 64 Python threads would take more CPU than
the server on a 2-core machine. Each connection here is an `asyncio.Protocol`
driven by callbacks: a response is parsed in `data_received` and the next
request is written straight from there, with no task or future per request,
so the client costs a few tens of microseconds of CPU per request (its own CPU
time is measured and reported with every run).

It only speaks what the benchmarked servers answer: HTTP/1.1 with
Content-Length bodies (gunicorn's gthread worker with Flask).
"""
from __future__ import annotations

import asyncio
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

# A request as it goes on the wire, built by the caller's factory for index i.
RequestFactory = Callable[[int], bytes]


def http_request(method: str, path: str, host: str, body: bytes | None = None,
                 content_type: str = "application/json", headers: dict | None = None) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    elif method in ("POST", "PUT"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class LoadResult:
    """What one load run observed; latencies in seconds, times from time.time()."""

    requests: int = 0
    statuses: dict = field(default_factory=dict)
    latencies: array = field(default_factory=lambda: array("d"))
    ok_latencies: array = field(default_factory=lambda: array("d"))
    started_at: float = 0.0  # wall clock when the first request was sent
    finished_at: float = 0.0  # wall clock when the last answer arrived
    first_ok_at: float | None = None  # wall clock of the first answer with the expected status
    last_ok_at: float | None = None
    elapsed: float = 0.0  # seconds the run lasted (perf counter)
    client_cpu_seconds: float = 0.0  # CPU time this process spent during the run
    connection_errors: int = 0  # connections the server dropped with a request in flight (status 0)
    connect_failures: int = 0  # attempts to open a connection that failed
    error_samples: list = field(default_factory=list)  # (status, first bytes of body) of unexpected answers
    bodies: list | None = None  # (index, status, body) when keep_bodies
    ok_due: array = field(default_factory=lambda: array("d"))  # open loop: when each ok request was due (s)
    waited_for_connection: int = 0  # open loop: requests due while every connection was busy

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def add(self, status: int, latency: float, body: bytes, expect: int) -> None:
        """One answer: `status` after `latency` seconds; `expect` is the status that counts as success."""
        now = time.time()
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(latency)
        self.finished_at = now
        if status == expect:
            self.ok_latencies.append(latency)
            if self.first_ok_at is None:
                self.first_ok_at = now
            self.last_ok_at = now
        elif len(self.error_samples) < 10:
            self.error_samples.append((status, body[:300].decode(errors="replace")))


class _Run:
    """Shared state of one run: which request is next, when to stop, where results go."""

    def __init__(self, factory: RequestFactory, count: int | None, deadline: float | None, expect: int,
                 result: LoadResult, keep_bodies: bool):
        self.factory, self.count, self.deadline, self.expect = factory, count, deadline, expect
        self.result, self.keep_bodies = result, keep_bodies
        self.next_index = 0
        self.active = 0
        self.done = asyncio.get_running_loop().create_future()

    def take(self) -> int | None:
        """The index of the next request to send, or None when the run is over."""
        if self.count is not None and self.next_index >= self.count:
            return None
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return None
        index = self.next_index
        self.next_index += 1
        return index

    def record(self, index: int, status: int, latency: float, body: bytes) -> None:
        self.result.add(status, latency, body, self.expect)
        if self.keep_bodies:
            self.result.bodies.append((index, status, body))

    def finished_one(self) -> None:
        self.active -= 1
        if self.active == 0 and not self.done.done():
            self.done.set_result(None)


def _take_answer(buffer: bytes) -> tuple[int, bytes, bytes, bytes] | None:
    """The first whole answer in `buffer`: (status, its head lower-cased, its body, what follows it);
    None until it has all arrived."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffer[:end].lower()
    length = 0
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17: stop if stop >= 0 else len(head)])
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return int(head[9:12]), head, buffer[end + 4: total], buffer[total:]


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends its next request as soon as the answer is in."""

    def __init__(self, run: _Run, reconnect: Callable[["_Connection"], None]):
        self.run, self.reconnect = run, reconnect
        self.transport = None
        self.buffer = b""
        self.index: int | None = None
        self.sent_at = 0.0
        self.closing = False

    # -- sending --------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send_next()

    def send_next(self) -> None:
        index = self.run.take()
        if index is None:
            self.index = None
            self.closing = True
            self.transport.close()
            self.run.finished_one()
            return
        self.index = index
        self.sent_at = time.perf_counter()
        self.transport.write(self.run.factory(index))

    # -- receiving ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.index is not None:
            answer = _take_answer(self.buffer)
            if answer is None:
                return
            status, head, body, self.buffer = answer
            self.run.record(self.index, status, time.perf_counter() - self.sent_at, body)
            if b"\r\nconnection: close" in head:
                self.index = None
                self.closing = True
                self.transport.close()
                self.reconnect(self)
                return
            self.send_next()

    def connection_lost(self, exc) -> None:
        if self.closing:
            return
        self.closing = True
        if self.index is not None:  # the server dropped us mid-request: an error, then a new connection
            self.run.result.connection_errors += 1
            self.run.record(self.index, 0, time.perf_counter() - self.sent_at, b"connection lost")
            self.index = None
        self.reconnect(self)


async def _drive(host: str, port: int, factory: RequestFactory, connections: int, count: int | None,
                 duration: float | None, expect: int, keep_bodies: bool, timeout: float,
                 progress: Callable[[int], None] | None) -> LoadResult:
    loop = asyncio.get_running_loop()
    result = LoadResult(bodies=[] if keep_bodies else None)
    started = time.perf_counter()
    run = _Run(factory, count, started + duration if duration is not None else None, expect, result, keep_bodies)

    def connect(_old=None) -> None:
        async def open_one():
            for attempt in range(50):
                try:
                    await loop.create_connection(lambda: _Connection(run, connect), host, port)
                    return
                except OSError:
                    result.connect_failures += 1
                    await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
            run.finished_one()  # give up on this connection slot

        loop.create_task(open_one())

    cpu_before = time.process_time()
    result.started_at = time.time()
    run.active = connections
    for _ in range(connections):
        connect()
    reporter = None
    if progress is not None:
        async def report():
            while True:
                progress(result.requests)
                await asyncio.sleep(0.2)
        reporter = loop.create_task(report())
    try:
        await asyncio.wait_for(asyncio.shield(run.done), timeout)
    finally:
        if reporter is not None:
            reporter.cancel()
    result.elapsed = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu_before
    return result


def run_load(host: str, port: int, factory: RequestFactory, *, connections: int, count: int | None = None,
             duration: float | None = None, expect: int = 200, keep_bodies: bool = False,
             timeout: float = 3600.0, progress: Callable[[int], None] | None = None) -> LoadResult:
    """Send requests from `factory(0..)` over `connections` keep-alive connections.

    Stops after `count` requests or `duration` seconds (whichever is given;
    answers in flight at the deadline are still counted). `expect` is the
    status that counts as success; anything else is an error with a sample kept.
    """
    if count is None and duration is None:
        raise ValueError("give count or duration")
    if count is not None:
        connections = max(1, min(connections, count))
    return asyncio.run(_drive(host, port, factory, connections, count, duration, expect, keep_bodies, timeout,
                              progress))


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values) -> dict:
    """p50/p90/p99/p99.9/max (and mean) of latencies in seconds, as milliseconds."""
    values = list(values)
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None, "mean_ms": None}
    ordered = sorted(values)

    def ms(x):
        return round(x * 1000.0, 2)

    return {
        "p50_ms": ms(percentile(ordered, 50)),
        "p90_ms": ms(percentile(ordered, 90)),
        "p99_ms": ms(percentile(ordered, 99)),
        "p999_ms": ms(percentile(ordered, 99.9)),
        "max_ms": ms(ordered[-1]),
        "mean_ms": ms(sum(ordered) / len(ordered)),
    }


# gunicorn closes a keep-alive connection idle for `keepalive` seconds (5 in gunicorn.conf.py): an
# open-loop connection idle for longer than this is closed by the client instead of reused, so that a
# request is never written into a connection the server is closing.
IDLE_CLOSE_S = 3.0


class _OpenRun:
    """Shared state of an open-loop run: request i is due at `start + i / rate`, whether or not earlier
    ones were answered. A due request goes out on an idle connection, else on a new one (up to
    `connections`), else waits in `due` for the first connection that frees up; either way its
    latency counts from when it was due, so a stall of the server shows in the tail instead of
    slowing the client down (no coordinated omission). Connections are opened only to send: one
    opened and left silent would hold one of gunicorn's gthread threads in a blocking read."""

    def __init__(self, loop, host: str, port: int, factory: RequestFactory, rate: float, count: int,
                 connections: int, expect: int, result: LoadResult):
        self.loop, self.host, self.port = loop, host, port
        self.factory, self.rate, self.count, self.expect = factory, rate, count, expect
        self.connections, self.result = connections, result
        self.start = 0.0
        self.scheduled = 0  # requests whose time has come
        self.due: deque[int] = deque()  # due, not yet sent: every connection was busy
        self.idle: deque[_OpenConnection] = deque()  # oldest idle first
        self.open = 0
        self.answered = 0
        self.done = loop.create_future()

    def due_at(self, index: int) -> float:
        return self.start + index / self.rate

    def dispatch(self, index: int) -> None:
        """Send request `index` now: on the most recently idle connection, else a new one, else later."""
        now = time.perf_counter()
        while self.idle and now - self.idle[0].idle_since > IDLE_CLOSE_S:
            self.idle.popleft().close()
        if self.idle:
            self.idle.pop().send(index)
        elif self.open < self.connections:
            self.connect(index)
        else:
            self.due.append(index)
            self.result.waited_for_connection += 1

    def connect(self, index: int | None) -> None:
        """A new connection that sends `index` (or the oldest due request) once it is open."""
        self.open += 1

        async def open_one():
            for attempt in range(50):
                try:
                    await self.loop.create_connection(lambda: _OpenConnection(self, index), self.host, self.port)
                    return
                except OSError:
                    self.result.connect_failures += 1
                    await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
            self.open -= 1
            if index is not None:
                self.record(index, 0, b"could not connect")

        self.loop.create_task(open_one())

    def closed(self, connection: "_OpenConnection") -> None:
        self.open -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if self.due and self.open < self.connections:
            self.connect(None)

    def record(self, index: int, status: int, body: bytes) -> None:
        self.result.add(status, time.perf_counter() - self.due_at(index), body, self.expect)
        if status == self.expect:
            self.result.ok_due.append(index / self.rate)
        self.answered += 1
        if self.answered == self.count and not self.done.done():
            self.done.set_result(None)


class _OpenConnection(asyncio.Protocol):
    """One keep-alive connection of an open-loop run: sends what is due when it is free."""

    def __init__(self, run: _OpenRun, first: int | None):
        self.run, self.first = run, first
        self.transport = None
        self.buffer = b""
        self.index: int | None = None
        self.idle_since = 0.0
        self.closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.first is not None:
            self.send(self.first)
        else:
            self.next()

    def send(self, index: int) -> None:
        self.index = index
        self.transport.write(self.run.factory(index))

    def next(self) -> None:
        """Send the oldest request still due, or wait idle for the next one."""
        if self.run.due:
            self.send(self.run.due.popleft())
        else:
            self.index, self.idle_since = None, time.perf_counter()
            self.run.idle.append(self)

    def close(self) -> None:
        self.closing = True
        self.transport.close()
        self.run.closed(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.index is not None:
            answer = _take_answer(self.buffer)
            if answer is None:
                return
            status, head, body, self.buffer = answer
            index, self.index = self.index, None
            self.run.record(index, status, body)
            if b"\r\nconnection: close" in head:
                self.close()
                return
            self.next()

    def connection_lost(self, exc) -> None:
        if self.closing:
            return
        self.closing = True
        if self.index is not None:  # dropped mid-request: an error
            self.run.result.connection_errors += 1
            self.run.record(self.index, 0, b"connection lost")
            self.index = None
        self.run.closed(self)


async def _drive_open(host: str, port: int, factory: RequestFactory, rate: float, count: int, connections: int,
                      start_at: float | None, expect: int, timeout: float) -> LoadResult:
    loop = asyncio.get_running_loop()
    result = LoadResult()
    run = _OpenRun(loop, host, port, factory, rate, count, connections, expect, result)
    # start_at (wall clock) lets a caller line its own sampling up with the schedule.
    wall_offset = time.time() - time.perf_counter()
    run.start = max(time.perf_counter(), (start_at - wall_offset) if start_at is not None else 0.0)

    def tick() -> None:
        """Send every request whose time has come, then sleep until the next one is due."""
        now = time.perf_counter()
        while run.scheduled < run.count and run.due_at(run.scheduled) <= now:
            run.scheduled += 1
            run.dispatch(run.scheduled - 1)
        if run.scheduled < run.count:
            loop.call_at(loop.time() + max(0.0, run.due_at(run.scheduled) - time.perf_counter()), tick)

    cpu_before = time.process_time()
    result.started_at = run.start + wall_offset
    loop.call_at(loop.time() + max(0.0, run.start - time.perf_counter()), tick)
    try:
        await asyncio.wait_for(asyncio.shield(run.done), timeout)
    finally:
        while run.idle:
            run.idle.popleft().close()
    result.elapsed = time.perf_counter() - run.start
    result.client_cpu_seconds = time.process_time() - cpu_before
    return result


def run_open_loop(host: str, port: int, factory: RequestFactory, *, rate: float, duration: float,
                  connections: int, expect: int = 200, start_at: float | None = None,
                  timeout: float = 3600.0) -> LoadResult:
    """Send `factory(i)` at `rate` requests/s for `duration` s (request i due at start + i/rate), over up
    to `connections` keep-alive connections, whatever the answers; wait for every answer.

    Each latency runs from when its request was due, not from when a connection was free to send
    it, so a server that stalls shows the stall in every request that fell due meanwhile.
    `result.ok_due` holds, beside each `ok_latencies` entry, when that request was due (seconds
    from `result.started_at`); `start_at` (time.time()) fixes the first request's time.
    """
    count = max(1, int(round(rate * duration)))
    return asyncio.run(_drive_open(host, port, factory, rate, count, connections, start_at, expect,
                                   timeout + duration))
