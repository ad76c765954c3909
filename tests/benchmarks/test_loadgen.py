"""The load generator's HTTP client, SSE parser, batch planning and closed loop; the client
runs against a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from benchmarks.loadgen import (
    Connection,
    ProtocolError,
    SseEvent,
    SseParser,
    StatusError,
    Target,
    closed_loop,
    encode_request,
    latency_figures,
    parse_head,
    plan_batches,
)

FRAMES = (
    b": ping\n\n"
    b'event: run_started\nid: 1\ndata: {"seq": 1}\n\n'
    b"event: token\r\nid: 2\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b'event: run_finished\nid: 3\ndata: {"status": "success"}\n\n'
)
EXPECTED = [
    SseEvent("run_started", '{"seq": 1}', "1"),
    SseEvent("token", "line one\nline two", "2"),
    SseEvent("run_finished", '{"status": "success"}', "3"),
]


def test_sse_parser_gives_the_same_events_wherever_the_stream_is_cut() -> None:
    for cut in range(len(FRAMES) + 1):
        parser = SseParser()
        events = parser.feed(FRAMES[:cut]) + parser.feed(FRAMES[cut:])
        assert events == EXPECTED, cut
        assert parser.comments == 1


def test_sse_parser_byte_by_byte_with_multibyte_text() -> None:
    raw = "event: token\ndata: Amélie — 🎬\n\n".encode()
    parser = SseParser()
    events = [e for i in range(len(raw)) for e in parser.feed(raw[i : i + 1])]
    assert events == [SseEvent("token", "Amélie — 🎬", None)]


def test_encode_request_and_parse_head() -> None:
    target = Target.from_url("http://127.0.0.1:8123/api/")
    raw = encode_request("POST", target, "/v1/x", b'{"a": 1}')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1:8123\r\n")
    assert b"Content-Length: 8" in head and body == b'{"a": 1}'
    status, headers = parse_head(b"HTTP/1.1 202 Accepted\r\nContent-Type: a/b\r\nX-Y:  z \r\n\r\n")
    assert status == 202 and headers == {"content-type": "a/b", "x-y": "z"}
    with pytest.raises(ProtocolError):
        parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ValueError):
        Target.from_url("https://example.org")


def test_plan_batches_sends_repeats_in_other_batches() -> None:
    items = [f"e{n}" for n in range(1000)]
    rng = random.Random(7)
    repeated = rng.sample(range(len(items)), 300)
    batches = plan_batches(items, repeated, 25, rng)
    sent = Counter(item for batch in batches for item in batch)
    assert all(1 <= len(batch) <= 25 for batch in batches)
    assert all(len(set(batch)) == len(batch) for batch in batches)
    assert sent == Counter(items) + Counter(items[i] for i in repeated)
    with pytest.raises(ValueError):
        plan_batches(items, [1, 1], 10, rng)
    # one item repeated, batches of one: still two batches, never one holding both copies
    assert plan_batches(["a"], [0], 1, rng) == [["a"], ["a"]]


# -- against a real server -----------------------------------------------------------------


async def echo(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"echo": body}, status_code=int(body.get("status", 200)))


async def sse(request: Request) -> Response:
    if request.query_params.get("fail"):
        return JSONResponse({"error": "nope"}, status_code=503)

    async def frames() -> AsyncIterator[bytes]:
        for n in range(0, len(FRAMES), 7):  # small chunks, as a server flushes them
            yield FRAMES[n : n + 7]
            await asyncio.sleep(0.001)

    return StreamingResponse(frames(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/sse", sse)])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_connection_keeps_alive_and_streams(server_url: str) -> None:
    target = Target.from_url(server_url)

    async def scenario() -> None:
        connection = Connection(target)
        for n in range(5):
            response = await connection.request(
                encode_request("POST", target, "/echo", json.dumps({"n": n}).encode())
            )
            assert response.status == 200 and json.loads(response.body) == {"echo": {"n": n}}
        failed = await connection.request(
            encode_request("POST", target, "/echo", b'{"status": 418}')
        )
        assert failed.status == 418
        parser = SseParser()
        events = [
            event
            async for chunk in connection.stream(encode_request("GET", target, "/sse"))
            for event in parser.feed(chunk)
        ]
        assert events == EXPECTED
        with pytest.raises(StatusError) as error:
            async for _ in connection.stream(encode_request("GET", target, "/sse?fail=1")):
                pass
        assert error.value.status == 503
        again = await connection.request(encode_request("POST", target, "/echo", b"{}"))
        assert again.status == 200
        assert connection.opened == 1  # one socket for everything: keep-alive held
        connection.close()

    asyncio.run(scenario())


def test_closed_loop_counts_only_after_the_warm_up() -> None:
    started: Counter[int] = Counter()

    async def call(client: int, n: int) -> None:
        started[client] += 1
        await asyncio.sleep(0.005)
        if n % 4 == 3:
            raise ValueError("every fourth call of a client fails")

    result = asyncio.run(closed_loop(3, 0.2, call, warmup_s=0.1))
    assert 0 < result.calls <= sum(started.values()) - 3  # the warm-up is not counted
    assert result.calls == len(result.latencies) + sum(result.errors.values())
    assert set(result.errors) == {"ValueError"}
    # each client's measured calls are consecutive, so a quarter of them fail, give or take one
    assert abs(result.errors["ValueError"] - result.calls / 4) <= 3
    assert result.window_s >= 0.2 and result.throughput == result.calls / result.window_s
    figures = latency_figures(result.latencies)
    assert figures["count"] == len(result.latencies)
    assert figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] <= figures["max_ms"]
