"""CORS, resume semantics and `Idempotency-Key`, on real `agentrec serve` processes.

Three servers run for the module, started together:
- `api` and `replica`: open services with CORS for `ORIGIN`, on one Redis started here (what
  one writes, the other resumes: the Redis path of resuming and attaching);
- `keyed`: two client keys and CORS for any origin (`*`), on its own embedded Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
from pydantic import TypeAdapter

from app.cors import EXPOSED_HEADERS, parse_origins
from app.main import create_app
from app.runs import follow_stored
from app.schemas import RunEvent
from core.errors import ConfigError
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from memory.short_term import AsyncTraceReader, ShortTermMemory, lost_run_events
from tests.app.live_server import LiveServer, events_of, parse_sse_lines, read_sse, start_all

ORIGIN = "http://127.0.0.1:5173"
OTHER_ORIGIN = "http://127.0.0.1:5174"
RUN_EVENT = TypeAdapter(RunEvent)


@dataclass
class Servers:
    api: LiveServer
    replica: LiveServer
    keyed: LiveServer
    keys: tuple[str, str]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("resume-cors")
    keys = (secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    with contextlib.ExitStack() as stack:
        redis_server = EmbeddedRedis(root / "redis").start()
        stack.callback(redis_server.stop)
        shared = {"REDIS_URL": redis_server.url, "AGENTREC_CORS_ORIGINS": ORIGIN}
        api = LiveServer(root / "api", shared)
        replica = LiveServer(root / "replica", shared)
        keyed = LiveServer(
            root / "keyed",
            {
                "AGENTREC_API_KEYS": f"client:{keys[0]},client:{keys[1]}",
                "AGENTREC_CORS_ORIGINS": "*",
            },
        )
        for server in (api, replica, keyed):
            stack.callback(server.stop)
        start_all([api, replica, keyed])
        yield Servers(api, replica, keyed, keys)


@pytest.fixture()
def client(servers: Servers) -> Iterator[httpx.Client]:
    with servers.api.client() as c:
        yield c


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[dict[str, Any]]


def stream(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
) -> Stream:
    """A streamed request's events (all, or the first `stop_after`: the connection is then
    dropped)."""
    events: list[dict[str, Any]] = []
    with client.stream(method, url, json=body, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            return Stream(response.status_code, response.headers, [])
        for frame in read_sse(response):
            if frame.is_event:
                events.append(frame.json())
                if stop_after is not None and len(events) >= stop_after:
                    break
    return Stream(response.status_code, response.headers, events)


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["seq"]) for e in events]


def recommend_body() -> dict[str, Any]:
    return {"user_id": "u001", "count": 5, "context": {"test": uuid.uuid4().hex}}


# -- CORS ------------------------------------------------------------------------------------
def test_origins_are_parsed_strictly() -> None:
    assert parse_origins("") == ()
    assert parse_origins(" https://shop.example/ , http://localhost:3000,") == (
        "https://shop.example",
        "http://localhost:3000",
    )
    assert parse_origins("*") == ("*",)
    for bad in ("shop.example", "https://shop.example/app", "*,https://shop.example"):
        with pytest.raises(ConfigError):
            parse_origins(bad)


def test_without_origins_no_cors_middleware_is_installed() -> None:
    names = [m.cls.__name__ for m in create_app(Settings(cors_origins="")).user_middleware]  # type: ignore[attr-defined]
    assert "CORSMiddleware" not in names
    names = [m.cls.__name__ for m in create_app(Settings(cors_origins=ORIGIN)).user_middleware]  # type: ignore[attr-defined]
    assert names[0] == "CORSMiddleware"  # outermost: every answer, errors included


def test_a_preflight_from_an_allowed_origin_is_answered(client: httpx.Client) -> None:
    response = client.options(
        "/v1/recommendations/stream",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key,last-event-id",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"content-type", "idempotency-key", "last-event-id"} <= set(allowed.split(","))


def test_another_origin_gets_no_cors_headers(client: httpx.Client) -> None:
    preflight = client.options(
        "/v1/recommendations",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    answer = client.get("/livez", headers={"Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in answer.headers


def test_scripts_may_read_the_stream_and_error_headers(client: httpx.Client) -> None:
    streamed = stream(
        client, "POST", "/v1/recommendations/stream", body={"count": 2}, headers={"Origin": ORIGIN}
    )
    assert streamed.status == 200
    assert streamed.headers["access-control-allow-origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in streamed.headers["access-control-expose-headers"].split(",")
    }
    assert {h.lower() for h in EXPOSED_HEADERS} <= exposed
    assert {"content-location", "retry-after", "x-request-id"} <= exposed
    error = client.post("/v1/recommendations", json={"count": 0}, headers={"Origin": ORIGIN})
    assert error.status_code == 422  # the page can read why
    assert error.headers["access-control-allow-origin"] == ORIGIN


def test_any_origin_never_allows_credentials(servers: Servers) -> None:
    with servers.keyed.client() as keyed:
        preflight = keyed.options(
            "/v1/recommendations",
            headers={
                "Origin": "https://anywhere.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in preflight.headers
        answer = keyed.post(
            "/v1/recommendations",
            json={"count": 2},
            headers={"Origin": "https://anywhere.example", "X-API-Key": servers.keys[0]},
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "*"


# -- resume ----------------------------------------------------------------------------------
def test_a_finished_run_resumes_after_last_event_id_then_answers_204(
    servers: Servers, client: httpx.Client
) -> None:
    first = stream(client, "POST", "/v1/recommendations/stream", body=recommend_body())
    location = first.headers["content-location"]
    last = first.events[-1]["seq"]
    assert first.events[-1]["type"] == "run_finished"
    with servers.replica.client() as replica:
        for resumer in (client, replica):  # this process's registry, then the Redis trace
            rest = stream(resumer, "GET", location, headers={"Last-Event-ID": "3"})
            assert rest.status == 200
            assert rest.events == first.events[3:]
            over = resumer.get(location, headers={"Last-Event-ID": str(last)})
            assert over.status_code == 204 and over.content == b""
            # an EventSource's first connection names the id in the query; the header wins
            assert resumer.get(f"{location}?last_event_id={last}").status_code == 204
            both = stream(
                resumer, "GET", f"{location}?last_event_id={last}", headers={"Last-Event-ID": "5"}
            )
            assert seqs(both.events) == list(range(6, last + 1))


def test_a_json_run_is_resumed_from_its_summary_then_204(
    servers: Servers, client: httpx.Client
) -> None:
    answer = client.post("/v1/recommendations", json=recommend_body())
    run_id = answer.json()["run_id"]
    replayed = stream(client, "GET", f"/v1/runs/{run_id}/stream")
    assert [e["type"] for e in replayed.events] == ["run_started", "run_finished"]
    last = replayed.events[-1]["seq"]
    assert (
        client.get(f"/v1/runs/{run_id}/stream", headers={"Last-Event-ID": str(last)}).status_code
        == 204
    )


def test_an_unknown_run_is_404(client: httpx.Client) -> None:
    response = client.get(f"/v1/runs/{uuid.uuid4().hex}/stream", headers={"Last-Event-ID": "3"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "run_not_found"


# -- Idempotency-Key -------------------------------------------------------------------------
def test_a_retried_post_attaches_to_its_run(client: httpx.Client) -> None:
    """The first request drops after 4 events; its retry (same key and body, with
    Last-Event-ID) gets the rest of the same run, which the drop did not cancel."""
    key, body = str(uuid.uuid4()), recommend_body()
    headers = {"Idempotency-Key": key}
    head = stream(
        client, "POST", "/v1/recommendations/stream", body=body, headers=headers, stop_after=4
    )
    location = head.headers["content-location"]
    retry = stream(
        client,
        "POST",
        "/v1/recommendations/stream",
        body=body,
        headers={**headers, "Last-Event-ID": str(head.events[-1]["seq"])},
    )
    assert retry.status == 200
    assert retry.headers["content-location"] == location
    union = head.events + retry.events
    assert seqs(union) == list(range(1, len(union) + 1))
    assert {e["run_id"] for e in union} == {head.events[0]["run_id"]}
    assert union[-1]["type"] == "run_finished" and union[-1]["status"] == "success"

    again = stream(client, "POST", "/v1/recommendations/stream", body=body, headers=headers)
    assert again.events == [*head.events, *retry.events]  # no Last-Event-ID: from the start
    done = client.post(
        "/v1/recommendations/stream",
        json=body,
        headers={**headers, "Last-Event-ID": str(union[-1]["seq"])},
    )
    assert done.status_code == 200  # fetch-event-source takes a 200 with no events as the end
    assert events_of(parse_sse_lines(done.text.splitlines())) == []


def test_a_retry_on_another_replica_attaches_from_redis(
    servers: Servers, client: httpx.Client
) -> None:
    key, body = str(uuid.uuid4()), recommend_body()
    headers = {"Idempotency-Key": key}
    first = stream(client, "POST", "/v1/recommendations/stream", body=body, headers=headers)
    with servers.replica.client() as replica:
        retry = stream(
            replica,
            "POST",
            "/v1/recommendations/stream",
            body=body,
            headers={**headers, "Last-Event-ID": "3"},
        )
    assert retry.status == 200
    assert retry.events == first.events[3:]


def test_a_key_reused_for_another_request_is_a_422(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    first = stream(
        client,
        "POST",
        "/v1/recommendations/stream",
        body=recommend_body(),
        headers={"Idempotency-Key": key},
    )
    assert first.status == 200
    other = client.post(
        "/v1/recommendations/stream", json=recommend_body(), headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    bad = client.post(
        "/v1/recommendations/stream", json={"count": 2}, headers={"Idempotency-Key": "k" * 256}
    )
    assert bad.status_code == 422


def test_keys_are_scoped_to_the_caller(servers: Servers) -> None:
    key, body = str(uuid.uuid4()), {"count": 2}
    runs = []
    with servers.keyed.client() as keyed:
        for api_key in servers.keys:
            got = stream(
                keyed,
                "POST",
                "/v1/recommendations/stream",
                body=body,
                headers={"Idempotency-Key": key, "Authorization": f"Bearer {api_key}"},
            )
            assert got.status == 200
            runs.append(got.events[0]["run_id"])
    assert runs[0] != runs[1]


def test_a_chat_message_retried_with_its_key_is_answered_once(client: httpx.Client) -> None:
    session = client.post("/v1/sessions", json={}).json()["session_id"]
    url = f"/v1/sessions/{session}/messages"
    body = {"message": "a scary film"}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    head = stream(client, "POST", url, body=body, headers=headers, stop_after=2)
    retry = stream(client, "POST", url, body=body, headers={**headers, "Last-Event-ID": "2"})
    union = head.events + retry.events
    assert seqs(union) == list(range(1, len(union) + 1))
    assert union[-1]["type"] == "run_finished"
    turns = client.get(f"/v1/sessions/{session}").json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"]


def test_a_message_that_could_not_start_frees_its_key(client: httpx.Client) -> None:
    url = f"/v1/sessions/{uuid.uuid4().hex}/messages"
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(2):
        response = client.post(url, json={"message": "hi"}, headers=headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"


# -- the documented event schemas ------------------------------------------------------------
def test_every_streamed_event_matches_its_documented_schema(client: httpx.Client) -> None:
    """What the server sends validates against the models the OpenAPI document is made of
    (unknown fields are refused, so a new field fails here until it is documented)."""
    events = stream(
        client, "POST", "/v1/recommendations/stream", body={**recommend_body(), "query": "a comedy"}
    ).events
    session = client.post("/v1/sessions", json={}).json()["session_id"]
    events += stream(
        client, "POST", f"/v1/sessions/{session}/messages", body={"message": "a scary film"}
    ).events
    answer = client.post("/v1/recommendations", json=recommend_body()).json()
    events += stream(client, "GET", f"/v1/runs/{answer['run_id']}/stream").events
    events += lost_run_events("r1", 7)
    assert {e["type"] for e in events} >= {
        "run_started", "agent_started", "thought", "action", "observation", "candidates",
        "token", "agent_finished", "reflection", "recommendations", "error", "run_finished",
    }  # fmt: skip
    for event in events:
        RUN_EVENT.validate_python(json.loads(json.dumps(event)))


def test_a_lost_run_ends_with_the_recommendation_id_it_started_with(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    """A run whose process died is closed (error run_lost, run_finished) by the next claim
    of its session or by a follower; its run_finished names the recommendation_id its
    run_started gave out, as a finished run's does (feedback sent after it attributes)."""
    memory = ShortTermMemory(redis_client)

    def start(run_id: str) -> None:
        started = {"type": "run_started", "run_id": run_id, "seq": 1, "ts": 1.0,
                   "recommendation_id": f"rec-{run_id}", "task": "chat", "user_id": None,
                   "session_id": "s1", "context": {}}  # fmt: skip
        thought = {"type": "thought", "run_id": run_id, "seq": 2, "ts": 2.0,
                   "agent": "Manager", "text": "Reading the conversation."}  # fmt: skip
        memory.append_events(run_id, [started, thought])

    start("claimed")
    assert memory.end_lost_run("claimed")
    closed = memory.replay("claimed")
    assert [e["type"] for e in closed[-2:]] == ["error", "run_finished"]
    assert closed[-1]["recommendation_id"] == "rec-claimed"

    start("followed")

    async def follow() -> list[dict[str, Any]]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            reader = AsyncTraceReader(client)
            return [e async for e in follow_stored(reader, "followed", 0, 10, lost_after_s=0)]
        finally:
            await client.aclose()

    delivered = asyncio.run(follow())
    assert delivered[-1]["type"] == "run_finished"
    assert delivered[-1]["recommendation_id"] == "rec-followed"
    assert memory.replay("followed") == delivered  # every later reader sees the same end
    for event in closed + delivered:
        RUN_EVENT.validate_python(event)
    assert "recommendation_id" not in lost_run_events("r", 3)[-1]  # not known: left out


def test_the_openapi_document_types_every_stream() -> None:
    document = create_app(Settings()).openapi()
    schemas = document["components"]["schemas"]
    run_event = schemas["RunEvent"]
    assert run_event["discriminator"]["propertyName"] == "type"
    assert len(run_event["oneOf"]) == len(run_event["discriminator"]["mapping"]) == 12
    streams = {
        ("post", "/v1/recommendations/stream"): "RunEvent",
        ("post", "/v1/sessions/{session_id}/messages"): "RunEvent",
        ("get", "/v1/runs/{run_id}/stream"): "RunEvent",
        ("post", "/v1/chat"): "UIMessageChunk",
        ("get", "/v1/chat/{chat_id}/stream"): "UIMessageChunk",
        ("post", "/v1/chat/completions"): "ChatCompletionChunk",
    }
    for (method, path), schema in streams.items():
        operation = document["paths"][path][method]
        content = operation["responses"]["200"]["content"]["text/event-stream"]
        assert content["schema"] == {"$ref": f"#/components/schemas/{schema}"}, path
        if method == "post" and path.endswith(("/recommendations/stream", "/messages")):
            assert "Content-Location" in operation["responses"]["200"]["headers"]
            headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
            assert {"Idempotency-Key", "Last-Event-ID"} <= headers
    assert "204" in document["paths"]["/v1/runs/{run_id}/stream"]["get"]["responses"]
    # what is always sent is required; an optional field has no `default` (openapi-typescript
    # would type it as always present)
    assert set(schemas["RecommendedItem"]["required"]) == set(
        schemas["RecommendedItem"]["properties"]
    )
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            assert "default" not in prop or field in schema.get("required", []), (name, field)
