"""The error model and the two middlewares, on a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.errors import REQUEST_ID_HEADER, ApiError, install, request_id_of
from core.settings import Settings

MAX_BODY = 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run `app` with a real uvicorn server in a background thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class Item(BaseModel):
    count: int = Field(gt=0)
    name: str


def build_app() -> FastAPI:
    app = FastAPI()
    install(app, Settings(max_body_bytes=MAX_BODY))
    app.state.first_chunk_read = threading.Event()

    @app.get("/ok")
    def ok(request: Request) -> dict[str, str]:
        return {"request_id": request_id_of(request)}

    @app.post("/items")
    def create_item(item: Item) -> Item:
        return item

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"bytes": size}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail 4711")

    @app.get("/conflict")
    def conflict() -> None:
        raise ApiError(409, "conflict", "Already there.", {"id": "x1"}, {"X-Extra": "yes"})

    @app.get("/items/{item_id}")
    def get_item(item_id: int) -> None:
        raise HTTPException(404, f"item {item_id} does not exist")

    @app.get("/teapot")
    def teapot() -> None:
        raise HTTPException(418)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            # The second chunk is only sent once the client has read the first, so a
            # middleware that buffered the response would make this wait time out.
            seen = await asyncio.to_thread(app.state.first_chunk_read.wait, 10)
            yield b"after-client-read" if seen else b"timed-out"

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FastAPI, str]]:
    app = build_app()
    with serve_in_thread(app) as url:
        yield app, url


@pytest.fixture()
def base_url(served: tuple[FastAPI, str]) -> str:
    return served[1]


@pytest.fixture()
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=20) as c:
        yield c


def assert_error_body(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert "Traceback" not in response.text
    return dict(error)


def test_every_response_has_a_request_id(client: httpx.Client) -> None:
    generated = client.get("/ok")
    assert generated.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers[REQUEST_ID_HEADER])
    assert generated.json()["request_id"] == generated.headers[REQUEST_ID_HEADER]
    assert client.get("/ok").headers[REQUEST_ID_HEADER] != generated.headers[REQUEST_ID_HEADER]

    given = client.get("/ok", headers={REQUEST_ID_HEADER: "trace-1.A_b"})
    assert given.headers[REQUEST_ID_HEADER] == "trace-1.A_b"
    assert given.json()["request_id"] == "trace-1.A_b"


@pytest.mark.parametrize("offered", ["has space", "x" * 65, "semi;colon", "ünïcode"])
def test_unusable_request_ids_are_replaced(client: httpx.Client, offered: str) -> None:
    response = client.get("/ok", headers={REQUEST_ID_HEADER.encode(): offered.encode("utf-8")})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers[REQUEST_ID_HEADER])


def test_validation_errors_name_fields_readably(client: httpx.Client) -> None:
    huge = "z" * 900  # under the body limit of this app
    response = client.post("/items", json={"count": 0, "extra": huge})
    error = assert_error_body(response, 422, "invalid_request")
    details = error["details"]
    assert isinstance(details, list)
    by_field = {d["field"]: d["message"] for d in details}
    assert set(by_field) == {"body.count", "body.name"}
    assert "greater than 0" in by_field["body.count"]
    assert all(set(d) == {"field", "message"} for d in details)
    assert "body.count" in str(error["message"])
    assert "pydantic.dev" not in response.text
    assert huge not in response.text and len(response.content) < 800

    wrong_type = client.post("/items", json={"count": huge, "name": "a"})
    assert_error_body(wrong_type, 422, "invalid_request")
    assert huge not in wrong_type.text


def test_a_body_that_is_not_json_gets_a_clear_400(client: httpx.Client) -> None:
    response = client.post(
        "/items", content=b'{"count": 1,', headers={"Content-Type": "application/json"}
    )
    error = assert_error_body(response, 400, "invalid_json")
    assert "not valid JSON" in str(error["message"])


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    missing = assert_error_body(client.get("/nowhere"), 404, "not_found")
    assert "GET /nowhere" in str(missing["message"])

    wrong_method = client.delete("/ok")
    error = assert_error_body(wrong_method, 405, "method_not_allowed")
    assert "GET" in wrong_method.headers["allow"]
    assert "DELETE" in str(error["message"])


def test_http_exceptions_keep_their_message(client: httpx.Client) -> None:
    error = assert_error_body(client.get("/items/7"), 404, "not_found")
    assert error["message"] == "item 7 does not exist"
    assert_error_body(client.get("/teapot"), 418, "http_418")


def test_api_error_carries_details_and_headers(client: httpx.Client) -> None:
    response = client.get("/conflict")
    error = assert_error_body(response, 409, "conflict")
    assert error["details"] == {"id": "x1"}
    assert error["message"] == "Already there."
    assert response.headers["X-Extra"] == "yes"


def test_unhandled_exception_is_a_generic_500_logged_with_the_id(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="agentrec.api"):
        response = client.get("/boom", headers={REQUEST_ID_HEADER: "boom-request-1"})
    error = assert_error_body(response, 500, "internal_error")
    assert error["request_id"] == "boom-request-1"
    assert "secret internal detail" not in response.text
    assert "RuntimeError" not in response.text
    logged = [r for r in caplog.records if r.name == "agentrec.api"]
    assert any("boom-request-1" in r.getMessage() and r.exc_info for r in logged)


def test_declared_body_over_the_limit_is_a_413(client: httpx.Client) -> None:
    response = client.post(
        "/upload", content=b"a" * (MAX_BODY + 1), headers={REQUEST_ID_HEADER: "big-1"}
    )
    error = assert_error_body(response, 413, "payload_too_large")
    assert error["request_id"] == "big-1"
    assert client.post("/upload", content=b"a" * MAX_BODY).json() == {"bytes": MAX_BODY}


def test_chunked_body_is_stopped_when_it_grows_past_the_limit(base_url: str) -> None:
    def chunks(count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield b"b" * 300

    # A fresh connection per upload: the server closes one after refusing a body.
    with httpx.Client(base_url=base_url, timeout=20) as client:
        small = client.post("/upload", content=chunks(3))
        assert "content-length" not in small.request.headers
        assert small.json() == {"bytes": 900}
    with httpx.Client(base_url=base_url, timeout=20) as client:
        big = client.post("/upload", content=chunks(20))
        assert big.request.headers["transfer-encoding"] == "chunked"
        assert_error_body(big, 413, "payload_too_large")
    with httpx.Client(base_url=base_url, timeout=20) as client:
        # FastAPI's own body parsing turns the error into a 400; the 413 must still win.
        parsed = client.post(
            "/items", content=chunks(20), headers={"Content-Type": "application/json"}
        )
        assert_error_body(parsed, 413, "payload_too_large")


def test_streaming_responses_pass_through_unbuffered(served: tuple[FastAPI, str]) -> None:
    app, base_url = served
    with (
        httpx.Client(base_url=base_url, timeout=20) as client,
        client.stream("GET", "/stream") as response,
    ):
        assert response.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers[REQUEST_ID_HEADER])
        pieces = response.iter_raw()
        first = next(pieces)
        app.state.first_chunk_read.set()
        rest = b"".join(pieces)
    assert first == b"first\n"
    assert rest == b"after-client-read"
