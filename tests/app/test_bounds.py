"""Every list and map a request carries is bounded, and so is every error answer.

A body under the 1 MB limit could hold 100,000 filter values that all passed validation and
cost CPU, or 30,000 unknown attribute names that a 422 repeated one by one. The bounds are in
the OpenAPI document (maxItems, maxProperties, maxLength) and enforced by the server; a 422
lists at most a few names and errors and never echoes the input.

The API runs over ASGI on a real service (the shared redis-server, embedded Chroma, its own
data directory, no API keys).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.errors import MAX_VALIDATION_DETAILS
from app.main import create_app
from app.schemas import (
    MAX_CHAT_MESSAGES,
    MAX_CONTEXT_KEYS,
    MAX_CONTEXT_VALUE_CHARS,
    MAX_EXCLUDED_ITEMS,
    MAX_FILTER_ATTRIBUTES,
    MAX_FILTER_VALUES,
    MAX_ITEM_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_PART_CHARS,
)
from app.service import ChatMessage, InvalidInput, RunRequest, Service
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from recdata.demo import DEMO_USER_ID

SMALL_ERROR_BYTES = 4096
"""An error answer to any body stays under this size."""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Iterator[FastAPI]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("bounds"),
        redis_url=redis_server.url,
        api_keys="",
        rate_limit_per_minute=0,
    )
    with Service(settings) as service:
        yield create_app(settings, service=service)


def call(app: FastAPI, method: str, path: str, body: Any = None) -> httpx.Response:
    async def go() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.request(method, path, json=body)

    return asyncio.run(go())


def recommend(app: FastAPI, **body: Any) -> httpx.Response:
    return call(app, "POST", "/v1/recommendations", {"user_id": DEMO_USER_ID, **body})


def small_422(response: httpx.Response) -> dict[str, Any]:
    """The error of a 422 that stays small; asserts both."""
    assert response.status_code == 422, response.text[:500]
    assert len(response.content) < SMALL_ERROR_BYTES, len(response.content)
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_request"
    return error


# -- filters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["include", "exclude"])
def test_100000_filter_values_are_a_short_422(app: FastAPI, kind: str) -> None:
    values = [f"v{i:05d}" for i in range(100_000)]
    body = {"filters": {kind: {"genres": values}}}
    assert 900_000 < len(json.dumps(body)) < 1_048_576  # under the body limit
    error = small_422(recommend(app, **body))
    assert [d["field"] for d in error["details"]] == [f"body.filters.{kind}.genres"]
    assert f"at most {MAX_FILTER_VALUES} items" in error["details"][0]["message"]
    assert "v00000" not in json.dumps(error)


def test_30000_unknown_attribute_names_get_a_small_error(app: FastAPI) -> None:
    include = {f"attribute{i:05d}": ["x"] for i in range(30_000)}
    error = small_422(recommend(app, filters={"include": include}))
    assert error["details"][0]["field"] == "body.filters.include"
    assert "attribute29999" not in json.dumps(error)


def test_unknown_filter_attributes_and_fields_are_listed_ten_at_most(app: FastAPI) -> None:
    include = {f"in{i:02d}": ["x"] for i in range(MAX_FILTER_ATTRIBUTES)}
    exclude = {f"out{i:02d}": ["x"] for i in range(MAX_FILTER_ATTRIBUTES)}
    error = small_422(recommend(app, filters={"include": include, "exclude": exclude}))
    message = error["message"]
    named = [f"in{i:02d}" for i in range(10)]
    assert f"unknown filter attribute(s) {', '.join(named)} and 30 more;" in message
    assert "in10" not in message and "out00" not in message
    assert "; known: decade, director, " in message

    fields = [f"f{i:02d}" for i in range(50)]
    message = small_422(recommend(app, fields=fields))["message"]
    assert f"unknown field(s) {', '.join(fields[:10])} and 40 more;" in message
    assert "f10" not in message


def test_the_known_attribute_names_are_listed_ten_at_most(app: FastAPI) -> None:
    names = [f"extra{i:02d}" for i in range(30)]
    item = call(app, "GET", "/v1/items/alien-1979").json()
    attributes = {**item["attributes"], **{name: ["yes"] for name in names}}
    changed = call(
        app, "PUT", "/v1/items/alien-1979", {"title": item["title"], "attributes": attributes}
    )
    assert changed.status_code == 200, changed.text
    message = small_422(recommend(app, filters={"include": {"nope": ["x"]}}))["message"]
    known = sorted({*attributes, *("genres", "director", "year")})
    assert message.endswith(f"known: {', '.join(known[:10])} and {len(known) - 10} more")


# -- other lists and maps ---------------------------------------------------------------------
def test_long_ids_context_entries_and_fields_are_refused(app: FastAPI) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"exclude_item_ids": ["x" * (MAX_ITEM_ID_CHARS + 1)]}, "body.exclude_item_ids.0"),
        ({"exclude_item_ids": ["x"] * (MAX_EXCLUDED_ITEMS + 1)}, "body.exclude_item_ids"),
        ({"fields": ["x" * (MAX_NAME_CHARS + 1)]}, "body.fields.0"),
        ({"context": {"k": "v" * (MAX_CONTEXT_VALUE_CHARS + 1)}}, "body.context.k"),
        ({"context": {f"k{i}": "v" for i in range(MAX_CONTEXT_KEYS + 1)}}, "body.context"),
        ({"filters": {"include": {"g" * (MAX_NAME_CHARS + 1): ["x"]}}}, "body.filters.include"),
    ]
    for body, field in cases:
        error = small_422(recommend(app, **body))
        assert error["details"][0]["field"].startswith(field), (body.keys(), error)
    huge_key = "k" * 500_000
    error = small_422(recommend(app, context={huge_key: "v"}))
    assert huge_key[:100] not in json.dumps(error)
    rank = call(app, "POST", "/v1/rank", {"item_ids": ["x" * 129]})
    assert small_422(rank)["details"][0]["field"] == "body.item_ids.0"


def test_a_422_lists_a_bounded_number_of_errors_and_never_echoes_the_input(
    app: FastAPI,
) -> None:
    # 100 events, each wrong in three ways: 300 errors
    events = [{"event_id": "", "type": "teleport", "item_id": ""} for _ in range(100)]
    error = small_422(call(app, "POST", "/v1/events", {"events": events}))
    assert len(error["details"]) == MAX_VALIDATION_DETAILS
    assert f"(and 299 more; details lists the first {MAX_VALIDATION_DETAILS})" in error["message"]

    padding = "z" * 900_000
    error = small_422(recommend(app, filters={"include": padding}))
    assert "zzzz" not in json.dumps(error)


def test_values_at_the_bounds_are_accepted(app: FastAPI) -> None:
    response = recommend(
        app,
        count=3,
        filters={
            "include": {"genres": ["Drama", *(f"g{i}" for i in range(MAX_FILTER_VALUES - 1))]},
            "exclude": {"genres": [f"h{i}" for i in range(MAX_FILTER_VALUES)]},
        },
        exclude_item_ids=["i" * MAX_ITEM_ID_CHARS] * MAX_EXCLUDED_ITEMS,
        context={f"{i:02d}".ljust(MAX_NAME_CHARS, "k"): "v" * 500 for i in range(20)},
        fields=["genres"],
    )
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["items"]) == 3


def test_the_conversation_of_a_chat_run_is_bounded(app: FastAPI) -> None:
    """A chat run reads the conversation a client sends: at most MAX_CHAT_MESSAGES turns
    of at most MAX_PART_CHARS characters each, for the API as for the service."""
    turns = [{"role": "user", "content": "a comedy"}] * (MAX_CHAT_MESSAGES + 1)
    body: dict[str, Any] = {"model": "agentrec", "messages": turns}
    error = small_422(call(app, "POST", "/v1/chat/completions", body))
    assert error["details"][0]["field"] == "body.messages"
    long = [{"type": "text", "text": "a" * 15_000}] * 2  # each part within its own bound
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "a comedy"},
        {"role": "assistant", "content": long},
        {"role": "user", "content": "another"},
    ]
    body = {"model": "agentrec", "messages": messages}
    error = small_422(call(app, "POST", "/v1/chat/completions", body))
    assert f"conversation is longer than {MAX_PART_CHARS} characters" in error["message"]
    assert "aaaa" not in json.dumps(error)

    def conversation(request: RunRequest) -> str:
        with pytest.raises(InvalidInput) as refused:
            Service._conversation(request)
        return str(refused.value)

    many = [ChatMessage("user", "hi")] * (MAX_CHAT_MESSAGES + 1)
    assert "at most" in conversation(RunRequest(task="chat", messages=many))
    one = [ChatMessage("user", "hi")]
    assert "chat task" in conversation(RunRequest(task="recommend", messages=one))
    at_bound = [ChatMessage("assistant", "x" * MAX_PART_CHARS), ChatMessage("user", "hi")]
    answered, earlier = Service._conversation(RunRequest(task="chat", messages=at_bound))
    assert answered == "hi" and len(earlier) == 1


# -- the OpenAPI document ---------------------------------------------------------------------
def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _unbounded(
    spec: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> Iterator[str]:
    """The places in `schema` (refs followed) where a list, map or string has no bound."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen = seen | {ref}
    schema = _resolve(spec, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, ()):
            yield from _unbounded(spec, option, where, seen)
    kind = schema.get("type")
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{where}: an array without maxItems"
        yield from _unbounded(spec, schema.get("items", {}), f"{where}[]", seen)
    elif kind == "string":
        if not {"maxLength", "pattern", "enum", "const"} & set(schema):
            yield f"{where}: a string without maxLength"
    elif kind == "object":
        for name, sub in schema.get("properties", {}).items():
            yield from _unbounded(spec, sub, f"{where}.{name}", seen)
        extra = schema.get("additionalProperties", False)
        values = list(schema.get("patternProperties", {}).values())
        if isinstance(extra, dict):
            values.append(extra)
        if values or extra is True:
            if "maxProperties" not in schema:
                yield f"{where}: a map without maxProperties"
            if "patternProperties" not in schema:
                keys = schema.get("propertyNames", {})
                if not {"maxLength", "pattern"} & set(keys):
                    yield f"{where}: a map whose keys have no maxLength"
        for sub in values:
            yield from _unbounded(spec, sub, f"{where}{{}}", seen)


def test_every_list_and_map_of_every_request_body_is_bounded_in_the_openapi(
    app: FastAPI,
) -> None:
    spec = call(app, "GET", "/openapi.json").json()
    bodies = 0
    problems: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                bodies += 1
                label = f"{method.upper()} {path} ({media})"
                problems.extend(_unbounded(spec, body["schema"], label, set()))
    assert bodies >= 8  # every POST/PUT with a JSON body was walked
    assert problems == []
