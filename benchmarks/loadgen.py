"""A lean asyncio HTTP/1.1 load generator: keep-alive connections, closed-loop clients and
Server-Sent Events, with little client CPU per request.

The load client shares the machine with the server, so every microsecond it spends is taken
from the server: requests are pre-encoded bytes written to a raw `asyncio` stream, responses
are read by Content-Length or chunked framing and nothing else is parsed unless asked.

- `Connection`: one keep-alive connection (reopened after an error); `request` reads a whole
  response, `stream` yields the body's chunks as they arrive.
- `SseParser`: incremental `text/event-stream` parsing (`event:`, `id:`, `data:`, comments).
- `closed_loop`: N clients each sending the next request as soon as the previous answered,
  for a warm-up (not counted) and then a measured duration.
- `latency_figures`, `CpuMeter`: what a phase reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np

from benchmarks.report import latency_summary

T = TypeVar("T")

# -- HTTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the server listens: host, port and a path prefix (no trailing slash)."""

    host: str
    port: int
    prefix: str = ""

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only plain http://host[:port] URLs are supported, not {url!r}")
        return cls(parts.hostname, parts.port or 80, parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"


class StatusError(Exception):
    """The server answered with a status outside 2xx."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {body[:200]!r}")


class ProtocolError(Exception):
    """The response is not HTTP/1.1 as this client understands it."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def encode_request(
    method: str,
    target: Target,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive; JSON content type when a body is
    given). Encode once, send many times."""
    lines = [f"{method} {target.prefix}{path} HTTP/1.1", f"Host: {target.host}:{target.port}"]
    all_headers = {"Accept": "*/*", **(headers or {})}
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
        all_headers["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers (names lower-cased) of a response head ending in CRLFCRLF."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0]!r}")
    try:
        status = int(status_line[1])
    except ValueError as exc:
        raise ProtocolError(f"bad status code in {lines[0]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    return status, headers


class Connection:
    """One keep-alive HTTP/1.1 connection, used by one task at a time. After any error the
    socket is dropped and the next call opens a new one."""

    def __init__(self, target: Target, read_limit: int = 1 << 20) -> None:
        self.target = target
        self.read_limit = read_limit
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.opened = 0
        """How many sockets this connection opened (1 when keep-alive held throughout)."""

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(
                self.target.host, self.target.port, limit=self.read_limit
            )
            self.opened += 1
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _send(self, raw: bytes) -> tuple[int, dict[str, str]]:
        reader, writer = await self._open()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        return parse_head(head)

    async def _chunks(self, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
        """The body of the response whose head was just read, chunk by chunk."""
        reader = self._reader
        assert reader is not None
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise ProtocolError(f"bad chunk size line {size_line!r}") from exc
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                    return
                chunk = await reader.readexactly(size + 2)
                yield chunk[:-2]
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length:
                yield await reader.readexactly(length)
        else:  # delimited by the end of the connection
            while chunk := await reader.read(65536):
                yield chunk
            self.close()

    async def request(self, raw: bytes) -> Response:
        """Send a pre-encoded request (`encode_request`) and read the whole response."""
        try:
            status, headers = await self._send(raw)
            body = b"".join([chunk async for chunk in self._chunks(headers)])
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body)

    async def stream(self, raw: bytes) -> AsyncIterator[bytes]:
        """Send a request and yield the body's chunks as they arrive. Raises `StatusError`
        (after reading the body) for a non-2xx answer. Leaving early drops the socket."""
        complete = False
        try:
            status, headers = await self._send(raw)
            if not 200 <= status < 300:
                body = b"".join([chunk async for chunk in self._chunks(headers)])
                complete = True
                raise StatusError(status, body)
            async for chunk in self._chunks(headers):
                yield chunk
            complete = headers.get("connection", "").lower() != "close"
        finally:
            if not complete:
                self.close()


# -- Server-Sent Events --------------------------------------------------------------------


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None = None


class SseParser:
    """Incremental `text/event-stream` parser: feed bytes, get the complete events.

    Handles LF, CRLF and CR line ends, multi-line `data`, comments (`: ping`, counted in
    `comments`) and frames split anywhere across chunks."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = _utf8_decoder()
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        text = self._buffer + self._decoder.decode(chunk)
        held = ""
        if text.endswith("\r"):  # maybe the first half of a CRLF: decide with the next chunk
            text, held = text[:-1], "\r"
        *lines, rest = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = rest + held
        events: list[SseEvent] = []
        for line in lines:
            if not line:
                if self._data or self._event:
                    events.append(
                        SseEvent(self._event or "message", "\n".join(self._data), self._id)
                    )
                self._event, self._data = "", []
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            elif name == "id":
                self._id = value
        return events


def _utf8_decoder() -> Any:
    import codecs

    return codecs.getincrementaldecoder("utf-8")()


# -- closed-loop load ----------------------------------------------------------------------


def error_kind(error: BaseException) -> str:
    """A short label to count failures by: "HTTP 503", "TimeoutError", ..."""
    if isinstance(error, StatusError):
        return f"HTTP {error.status}"
    return type(error).__name__


@dataclass
class PhaseResult:
    """What a closed-loop phase measured (warm-up excluded)."""

    latencies: list[float] = field(default_factory=list)
    """Seconds of every measured call that succeeded."""
    errors: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    """Measured calls, failed ones included."""
    window_s: float = 0.0
    """From the end of the warm-up to the last measured call's end."""

    @property
    def throughput(self) -> float:
        return self.calls / self.window_s if self.window_s > 0 else 0.0


async def closed_loop(
    clients: int,
    duration_s: float,
    call: Callable[[int, int], Awaitable[Any]],
    *,
    warmup_s: float = 0.0,
    timeout_s: float = 30.0,
) -> PhaseResult:
    """Run `clients` tasks, each awaiting `call(client, n)` back to back for `warmup_s` +
    `duration_s` seconds. Calls that start after the warm-up are measured; a call fails
    when it raises (counted by `error_kind`) or takes longer than `timeout_s`."""
    result = PhaseResult()
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup_s
    stop_at = measure_from + duration_s
    last_end = measure_from

    async def client(index: int) -> None:
        nonlocal last_end
        n = 0
        while (start := loop.time()) < stop_at:
            error: BaseException | None = None
            try:
                async with asyncio.timeout(timeout_s):
                    await call(index, n)
            except Exception as exc:
                error = exc
            end = loop.time()
            n += 1
            if start < measure_from:
                continue
            result.calls += 1
            last_end = max(last_end, end)
            if error is None:
                result.latencies.append(end - start)
            else:
                result.errors[error_kind(error)] += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    result.window_s = last_end - measure_from
    return result


def latency_figures(seconds: list[float]) -> dict[str, float]:
    """`benchmarks.report.latency_summary` plus p90 and the sample count (ms)."""
    if not seconds:
        return {"count": 0}
    summary = latency_summary(seconds)
    p90 = round(float(np.percentile(np.asarray(seconds) * 1e3, 90)), 3)
    return {
        "count": len(seconds),
        "p50_ms": summary["p50_ms"],
        "p90_ms": p90,
        "p99_ms": summary["p99_ms"],
        "mean_ms": summary["mean_ms"],
        "max_ms": summary["max_ms"],
    }


class CpuMeter:
    """CPU seconds used over a phase by this process (the load client) and by some others
    with their children (uvicorn workers), and their share of one core over the phase's wall
    time (2.0 = two cores busy); also the whole machine's, and what other processes took
    (a shared machine makes figures noisy: this says how much)."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        import psutil

        self._processes = {"load client": psutil.Process(os.getpid())}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                self._processes[name] = psutil.Process(pid)
        self._start: dict[str, float] = {}
        self._wall = 0.0
        self.figures: dict[str, dict[str, float]] = {}

    def _times(self) -> dict[str, float]:
        """CPU seconds of each metered process and its children (e.g. uvicorn workers)."""
        import psutil

        out = {}
        for name, process in self._processes.items():
            total = 0.0
            try:
                family = [process]
                if process.pid != os.getpid():  # the load client's children are the servers
                    family += process.children(recursive=True)
            except psutil.NoSuchProcess:
                family = []
            for member in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = member.cpu_times()
                    total += times.user + times.system
                    if member is not process:  # each worker too: is the load balanced?
                        out[f"{name} child {member.pid}"] = times.user + times.system
            out[name] = total
        busy = psutil.cpu_times()
        out["whole machine"] = busy.user + busy.nice + busy.system + busy.irq + busy.softirq
        return out

    def start(self) -> None:
        self._start = self._times()
        self._wall = time.perf_counter()

    def stop(self) -> None:
        wall = time.perf_counter() - self._wall
        end = self._times()
        self.figures = {
            name: {
                "cpu_s": round(end[name] - self._start.get(name, 0.0), 2),
                "cores": round((end[name] - self._start.get(name, 0.0)) / wall, 2)
                if wall > 0
                else 0.0,
            }
            for name in end
        }
        ours = sum(
            figures["cpu_s"]
            for name, figures in self.figures.items()
            if name != "whole machine" and " child " not in name
        )
        other = self.figures["whole machine"]["cpu_s"] - ours
        self.figures["other processes"] = {
            "cpu_s": round(other, 2),
            "cores": round(other / wall, 2) if wall > 0 else 0.0,
        }

    def __enter__(self) -> CpuMeter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- planning ------------------------------------------------------------------------------


def plan_batches(
    items: Sequence[T], repeated: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[T]]:
    """Every item once, plus a second copy of `items[i]` for each i in `repeated`, shuffled
    into batches of at most `batch_size` where no batch holds both copies of an item (so a
    repeat always comes from another request, maybe a concurrent one)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if len(set(repeated)) != len(repeated):
        raise ValueError("an item can be repeated only once")
    sends = list(range(len(items))) + list(repeated)
    rng.shuffle(sends)
    pending = deque(sends)
    batches: list[list[T]] = []
    while pending:
        batch: list[int] = []
        deferred: list[int] = []
        while pending and len(batch) < batch_size:
            index = pending.popleft()
            (deferred if index in batch else batch).append(index)
        pending.extendleft(reversed(deferred))
        batches.append([items[i] for i in batch])
    return batches
