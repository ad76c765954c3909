"""Run streams over HTTP, shared by every streaming route: start a live run and stream it,
resume a run after a `Last-Event-ID` (from this process or the Redis trace), attach a
retried POST to its run by `Idempotency-Key`.

Resume answers: the events after `Last-Event-ID` (live ones follow until `run_finished`);
204 when the run is over and nothing follows (what makes EventSource stop reconnecting), or
an empty 200 stream for a retried POST (what fetch-event-source accepts as the end); None
(the route answers 404) when the run is unknown or expired.

Adapters (the Vercel AI SDK and OpenAI formats) pass `adapt` (run events -> their items) and
`encode` (item -> SSE frame); the run itself is always the same event stream.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from fastapi import Request, Response
from sse_starlette import EventSourceResponse

from app.api import idempotency
from app.api.common import no_content, runs_of, service_errors, service_of, sse_response
from app.errors import ApiError
from app.openapi import CONTENT_LOCATION, sse_responses
from app.runs import follow_stored
from app.streaming import sse_message
from memory.short_term import AsyncTraceReader

Adapt = Callable[[AsyncIterator[dict[str, Any]]], AsyncIterator[Any]]
Encode = Callable[[Any], dict[str, str] | bytes]
WhenOver = Literal["no_content", "empty"]

RUN_STREAM_DESCRIPTION = (
    "Server-Sent Events: each frame's `event:` is the event type, `id:` its `seq` and "
    "`data:` the event as JSON (schema below: one of the run event types, keyed by `type`): "
    "`run_started` first, then the agents' events, `recommendations`, and `run_finished` "
    "last, after which the server closes the stream. Every event is named, so an "
    "EventSource's `onmessage` never fires: listen with `addEventListener(type, ...)`. "
    "`: ping` comments every 5 s keep proxies open."
)


def run_stream_responses(*, resumable: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a route streaming run events (with `Content-Location` when
    the stream can be resumed elsewhere)."""
    headers = {"Content-Location": CONTENT_LOCATION} if resumable else None
    return sse_responses("RunEvent", RUN_STREAM_DESCRIPTION, headers=headers)


def run_location(run_id: str) -> str:
    return f"/v1/runs/{run_id}/stream"


def parse_last_event_id(value: str | None) -> int:
    """The seq a resume starts after (0: from the start); 422 for anything but an id."""
    if value is None or not value.strip():
        return 0
    if not re.fullmatch(r"[0-9]{1,18}", value.strip()):
        raise ApiError(422, "invalid_request", "Last-Event-ID must be an event id (a seq)")
    return int(value.strip())


async def start_streamed_run(
    request: Request,
    events: AsyncGenerator[dict[str, Any], None],
    run_id: str,
    on_disconnect: str,
    *,
    adapt: Adapt | None = None,
    encode: Encode = sse_message,
    headers: dict[str, str] | None = None,
) -> EventSourceResponse:
    """Run `events` as a live run and stream it once its first event is out; the client's
    departure cancels the run unless `on_disconnect` is "continue". `Content-Location`
    names the run's resume URL unless `headers` names another."""
    registry = runs_of(request)
    live = registry.start(run_id, events)
    # the 200 and its Content-Location go out only once `run_started` is stored (the
    # service writes it before yielding it): a replica that dies after answering leaves a
    # run that readers elsewhere find, and declare lost, instead of an unknown run id
    await live.started()

    def closed() -> None:
        if on_disconnect == "cancel" and not live.done:
            registry.cancel(run_id)

    stream = live.follow()
    return sse_response(
        adapt(stream) if adapt is not None else stream,
        headers={"Content-Location": run_location(run_id), **(headers or {})},
        on_close=closed,
        encode=encode,
    )


def _reader(request: Request) -> AsyncTraceReader:
    service = service_of(request)
    return AsyncTraceReader(service.redis.async_client(), prefix=service.short_term.prefix)


async def run_known(request: Request, run_id: str) -> bool:
    """Whether the run is live here or has a trace in Redis."""
    if runs_of(request).get(run_id) is not None:
        return True
    with service_errors():
        return bool(await _reader(request).replay(run_id, None))


async def resume(
    request: Request,
    run_id: str,
    after: int,
    *,
    when_over: WhenOver = "no_content",
    adapt: Adapt | None = None,
    encode: Encode = sse_message,
    headers: dict[str, str] | None = None,
) -> Response | None:
    """The run's events after seq `after` as a stream; when the run is over and nothing
    follows, 204 (`no_content`) or an empty stream (`empty`); None if the run is unknown."""

    def stream(events: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
        return sse_response(
            adapt(events) if adapt is not None else events, headers=headers, encode=encode
        )

    def over() -> Response:
        if when_over == "no_content":
            return no_content(headers)
        return stream(_nothing())

    live = runs_of(request).get(run_id)
    if live is not None:
        if live.done and (not live.events or live.events[-1]["seq"] <= after):
            return over()
        return stream(live.follow(after))
    service = service_of(request)
    reader = _reader(request)
    with service_errors():
        following = await reader.replay(run_id, after)
        if not following:
            if await reader.run_finished(run_id):
                return over()
            if not await reader.replay(run_id, None):
                return None  # nothing stored: unknown or expired
    settings = service.settings
    return stream(
        follow_stored(
            reader,
            run_id,
            after,
            ttl_s=settings.finished_trace_ttl_s,
            max_events=settings.trace_max_events,
        )
    )


async def _nothing() -> AsyncIterator[dict[str, Any]]:
    return
    yield  # an async generator that yields nothing


async def idempotent_stream(
    request: Request,
    *,
    caller: str,
    key: str | None,
    body: str,
    run_id: str,
    after: int,
    start: Callable[[str], Awaitable[Response]],
) -> Response:
    """A streamed POST: without `key`, `start(run_id)`; with it, the run an earlier request
    with the key started (its events after `after`), or `start` for a new one."""
    if key is None:
        return await start(run_id)
    service = service_of(request)
    try:
        claim = await idempotency.claim(
            service, caller, key, body, run_id, lambda rid: run_known(request, rid)
        )
    except idempotency.KeyReused:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was sent before with a different request; use a new key",
        ) from None
    if not claim.new:
        headers = {"Content-Location": run_location(claim.run_id)}
        answer = await resume(request, claim.run_id, after, when_over="empty", headers=headers)
        if answer is None:
            raise ApiError(404, "run_not_found", f"run {claim.run_id!r} expired; use a new key")
        return answer
    try:
        return await start(claim.run_id)
    except BaseException:
        await idempotency.release(service, claim)
        raise
