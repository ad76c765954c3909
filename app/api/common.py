"""What the routes share: the service of the app, item presentation, SSE responses and the
mapping of service errors to the error model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from agents.toolbox import Toolbox
from app.errors import ApiError
from app.runs import RunRegistry
from app.schemas import RecommendedItem, Usage, _check_unicode
from app.service import ChatMessage, InvalidInput, Service, SessionBusy
from app.streaming import sse_message
from core.errors import ConfigError, DataError, Unavailable
from memory.short_term import SessionNotFound

HEARTBEAT_S = 5.0
"""Seconds between SSE heartbeat comments (proxies close idle streams)."""

T = TypeVar("T")


def service_of(request: Request) -> Service:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:
        raise ApiError(503, "starting", "the service is starting; retry in a moment")
    return service


def runs_of(request: Request) -> RunRegistry:
    registry: RunRegistry = request.app.state.runs
    return registry


@contextmanager
def service_errors() -> Iterator[None]:
    """Service exceptions as API errors (4xx for the caller's mistakes, 503 for outages)."""
    try:
        yield
    except SessionNotFound as error:
        raise ApiError(404, "session_not_found", str(error)) from error
    except SessionBusy as error:
        raise ApiError(409, "session_busy", str(error), {"run_id": error.run_id}) from error
    except (InvalidInput, ConfigError, DataError) as error:
        raise ApiError(422, "invalid_request", str(error)) from error
    except Unavailable as error:
        raise ApiError(503, "unavailable", str(error), headers={"Retry-After": "1"}) from error


@dataclass(frozen=True)
class ChatInput:
    """What a chat run is given from the conversation a chat client sends."""

    message: str
    """The text answered: the last user message."""
    history: list[ChatMessage]
    """The user and assistant turns before it, oldest first (system and tool messages left
    out): the run's `messages`."""


ClientTurn = tuple[str, str, tuple[str, ...]]
"""A message as a client adapter reads it: (role, text, recommended item ids)."""


def conversation_input(turns: Sequence[ClientTurn], max_chars: int) -> ChatInput:
    """The one reading of a client's conversation: the last user message is answered (422
    when there is none, it is blank, too long or not valid text); the user and assistant
    messages before it are the conversation the run reads (messages after it are left
    out, as a reply to it would replace them)."""
    last = max((n for n, (role, _, _) in enumerate(turns) if role == "user"), default=None)
    if last is None:
        raise ApiError(422, "invalid_request", "messages holds no user message to answer")
    text = turns[last][1]
    if not text.strip():
        raise ApiError(422, "invalid_request", "the last user message has no text")
    if len(text) > max_chars:
        raise ApiError(
            422, "invalid_request", f"the last user message is longer than {max_chars} characters"
        )
    history: list[ChatMessage] = []
    for role, content, item_ids in turns[:last]:
        if role not in ("user", "assistant") or not (content.strip() or item_ids):
            continue
        history.append(ChatMessage(_role(role), content, item_ids))
    try:
        _check_unicode([text, *(turn.content for turn in history)])
    except ValueError as error:
        raise ApiError(422, "invalid_request", str(error)) from None
    return ChatInput(message=text, history=history)


def _role(role: str) -> Literal["user", "assistant"]:
    return "user" if role == "user" else "assistant"


async def call(function: Callable[..., T], *args: Any) -> T:
    """A blocking service call off the event loop, with its errors mapped."""
    with service_errors():
        return await asyncio.to_thread(function, *args)


def source_of(sources: Iterable[str]) -> str:
    found = set(sources)
    if "fallback" in found:
        return "fallback"
    if "exploration" in found:
        return "exploration"
    return "personalized"


def present_items(
    box: Toolbox,
    items: list[dict[str, Any]],
    fields: list[str] | None = None,
    fallback: str = "popular",
) -> list[dict[str, Any]]:
    """Ranked items as the API shows them: rank, title, source and the asked properties;
    with fallback "none", items that only the popularity fallback found are left out."""
    ds = box.dataset
    shown: list[dict[str, Any]] = []
    for item in items:
        source = source_of(item.get("sources", []))
        if fallback == "none" and source == "fallback":
            continue
        row = ds.items[ds.item_index[item["item_id"]]]
        properties: dict[str, Any] = {}
        for name in fields or []:
            if name == "text":
                properties["text"] = row.text
            elif name in row.attributes:
                properties[name] = list(row.attributes[name])
        shown.append(
            RecommendedItem(
                item_id=row.item_id,
                rank=len(shown) + 1,
                score=float(item.get("score", 0.0)),
                title=row.title,
                explanation=str(item.get("explanation", "")),
                reasons=list(item.get("reasons", [])),
                source=source,  # type: ignore[arg-type]
                properties=properties,
            ).model_dump()
        )
    return shown


def usage_of(usage: dict[str, dict[str, Any]]) -> Usage:
    return Usage(
        llm_calls=sum(int(u.get("calls", 0)) for u in usage.values()),
        prompt_tokens=sum(int(u.get("prompt_tokens", 0)) for u in usage.values()),
        completion_tokens=sum(int(u.get("completion_tokens", 0)) for u in usage.values()),
        by_agent=usage,
    )


def presenter(
    box: Toolbox, fields: list[str] | None = None, fallback: str = "popular"
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Rewrites the events that carry items (recommendations, run_finished) for the API."""

    def present(event: dict[str, Any]) -> dict[str, Any]:
        if event["type"] == "recommendations":
            return {**event, "items": present_items(box, event["items"], fields, fallback)}
        if event["type"] == "run_finished":
            output = dict(event["output"])
            items = present_items(box, output.get("recommendations", []), fields, fallback)
            output["recommendations"] = items
            output["fallback_used"] = any(i["source"] == "fallback" for i in items)
            output["usage"] = usage_of(output.get("usage", {})).model_dump()
            return {**event, "output": output}
        return event

    return present


def sse_response(
    events: AsyncIterator[Any],
    headers: dict[str, str] | None = None,
    on_close: Callable[[], None] | None = None,
    encode: Callable[[Any], dict[str, str] | bytes] = sse_message,
) -> EventSourceResponse:
    """An SSE response with heartbeats: each of `events` (run events, by default) becomes a
    frame through `encode`; `on_close` runs when the stream ends or the client goes away."""

    async def messages() -> AsyncIterator[dict[str, str] | bytes]:
        try:
            async for event in events:
                yield encode(event)
        finally:
            if on_close is not None:
                on_close()

    return EventSourceResponse(
        messages(),
        ping=HEARTBEAT_S,
        ping_message_factory=lambda: ServerSentEvent(comment="ping"),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


def data_frame(payload: Any) -> dict[str, str]:
    """A frame with only `data:`: the payload as JSON, or a literal string (`[DONE]`)."""
    if isinstance(payload, str):
        return {"data": payload}
    return {"data": json.dumps(payload, ensure_ascii=False, separators=(",", ":"))}


def no_content(headers: dict[str, str] | None = None) -> Response:
    """204: a stream with nothing left to send (EventSource then stops reconnecting)."""
    return Response(status_code=204, headers=headers)
