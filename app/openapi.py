"""How the streams are documented in OpenAPI.

A Server-Sent Events response is declared as `text/event-stream` whose schema is what each
frame's `data:` holds (JSON): `RunEvent` for the run streams (a `oneOf` keyed by `type`, the
same for every run stream), `UIMessageChunk` for the Vercel AI SDK chat stream and
`ChatCompletionChunk` for OpenAI-style streamed completions. FastAPI only puts the models of
JSON bodies into `components`, so `install` adds these there; the routes refer to them with
`sse_responses(...)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.schemas import ChatCompletionChunk, RunEvent, UIMessageChunk

STREAM_MODELS: tuple[type[BaseModel], ...] = (RunEvent, UIMessageChunk, ChatCompletionChunk)
"""The models of SSE `data:` payloads, added to the document's components."""
REF = "#/components/schemas/{model}"

CONTENT_LOCATION = {
    "description": "Where the stream resumes: `GET` it with `Last-Event-ID` after a drop.",
    "schema": {"type": "string", "examples": ["/v1/runs/3f2c0a9d/stream"]},
}


def sse_responses(
    schema: str,
    description: str,
    *,
    headers: dict[str, dict[str, Any]] | None = None,
    no_content: str | None = None,
) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route answering with an event stream whose `data:` is the
    component `schema`; `no_content` documents a 204."""
    ok: dict[str, Any] = {
        "description": description,
        "content": {"text/event-stream": {"schema": {"$ref": REF.format(model=schema)}}},
    }
    if headers:
        ok["headers"] = headers
    responses: dict[int | str, dict[str, Any]] = {200: ok}
    if no_content is not None:
        responses[204] = {"description": no_content}
    return responses


def stream_components() -> dict[str, Any]:
    """The JSON schemas of the stream models and of every model they use."""
    _, top = models_json_schema([(m, "serialization") for m in STREAM_MODELS], ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


def install(app: FastAPI) -> None:
    """Make `app.openapi()` add the stream schemas to the generated document. A schema that
    FastAPI generated under the same name must be the same (else `RuntimeError`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in stream_components().items():
                if name in schemas and schemas[name] != schema:
                    raise RuntimeError(f"OpenAPI: two different schemas are named {name!r}")
                schemas[name] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
