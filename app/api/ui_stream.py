"""The Vercel AI SDK's chat protocol (`ai` 6, `useChat` with `DefaultChatTransport`): an
adapter over the one run event stream.

`POST /v1/chat` takes what the transport posts (`{id, messages, trigger, messageId}`) and
answers with the UI message stream protocol v1 (header `x-vercel-ai-ui-message-stream: v1`;
each SSE `data:` a JSON chunk, then `data: [DONE]`):

- `run_started` -> `start` (`messageId`: the run id; metadata: run and recommendation ids);
- agent events (thought, action, observation, candidates, reflection, errors the run
  survives) -> a line each in `reasoning-start/-delta/-end`, and a transient `data-trace`
  part holding the event (for UIs that draw the trace with `onData`);
- `token` -> `text-start`, `text-delta`, `text-end`;
- `recommendations` -> `data-recommendations` (`{run_id, recommendation_id, items}`);
- an `error` that ends the run -> `error` (`errorText` "code: message"), `abort` if cancelled;
- `run_finished` -> `finish` (`finishReason` stop or error; metadata: status, degraded, usage).

The chat id names a chat session of the caller (created on first use, owned by `user_id`
from the body, or an anonymous visitor); the session keeps the turns and the graph's
checkpoints. The last user message is answered; the messages before it (the items of each
assistant message's `data-recommendations` part included) are the conversation the agents
read, in place of the one the session's thread holds, so the client's copy wins (edited or
regenerated messages); a client that sends only its last message continues the thread's.
A client that goes away does not cancel the reply (the AI SDK treats aborts as
disconnects): `GET /v1/chat/{id}/stream` replays the reply in flight from its start (the
transport's `resumeStreamIsReplay` default) and follows it; 204 when no reply is in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sse_starlette import EventSourceResponse

from app.api.common import (
    ChatInput,
    conversation_input,
    data_frame,
    no_content,
    presenter,
    service_errors,
    service_of,
)
from app.api.streams import resume, start_streamed_run
from app.errors import ApiError
from app.openapi import sse_responses
from app.schemas import (
    ERROR_RESPONSES,
    ID_PATTERN,
    MAX_ITEM_ID_CHARS,
    ChatRequest,
    UIMessageIn,
)
from app.security import Principal, require_client
from app.service import ANONYMOUS_PREFIX, Service
from memory.connection import MemoryUnavailable

router = APIRouter(prefix="/v1", tags=["chat"], responses=ERROR_RESPONSES)
Client = Annotated[Principal, Depends(require_client)]

UI_STREAM_HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}
DONE = "[DONE]"
TRACE_TYPES = frozenset(
    {"agent_started", "thought", "action", "observation", "candidates", "agent_finished"}
    | {"reflection", "error"}
)
"""Run events sent as `data-trace` parts."""
MAX_ARG_CHARS = 80

UI_STREAM_DESCRIPTION = (
    "The AI SDK's UI message stream (protocol v1, header `x-vercel-ai-ui-message-stream: "
    "v1`): each SSE `data:` is one chunk (schema below, keyed by `type`), the stream ends "
    "with `data: [DONE]`. The reply arrives as text parts, the agents' reasoning as "
    "reasoning parts and transient `data-trace` parts, the items as a "
    "`data-recommendations` part."
)


MAX_RECOMMENDED_IDS = 50
"""Item ids read from one assistant message's `data-recommendations` part."""


def chat_input(body: ChatRequest, max_chars: int) -> ChatInput:
    """The one place that reads the AI SDK's messages: the last user message's text parts
    are the message answered (422 when there is none, it is blank or too long); the turns
    before it, with the items each assistant message's `data-recommendations` part holds,
    are the conversation the run reads."""
    turns = [
        (m.role, "".join(p.text or "" for p in m.parts if p.type == "text"), _recommended(m))
        for m in body.messages
    ]
    return conversation_input(turns, max_chars)


def _recommended(message: UIMessageIn) -> tuple[str, ...]:
    """The item ids of an assistant message's `data-recommendations` part (as this server
    sent it; anything else there is ignored)."""
    if message.role != "assistant":
        return ()
    for part in message.parts:
        data = (part.model_extra or {}).get("data")
        if part.type != "data-recommendations" or not isinstance(data, dict):
            continue
        items = data.get("items")
        if not isinstance(items, list):
            return ()
        ids = [i.get("item_id") for i in items[:MAX_RECOMMENDED_IDS] if isinstance(i, dict)]
        return tuple(i for i in ids if isinstance(i, str) and 0 < len(i) <= MAX_ITEM_ID_CHARS)
    return ()


def chat_session_id(caller: str, chat_id: str) -> str:
    """The session of a caller's chat: the same chat id of two callers names two sessions."""
    return "chat-" + hashlib.sha256(f"{caller}\n{chat_id}".encode()).hexdigest()[:32]


def _ensure_session(service: Service, session_id: str, user_id: str | None) -> None:
    """Create the chat's session on first use; a user id must match the session's owner."""
    memory = service.short_term
    if not memory.session_exists(session_id):
        memory.create_session(user_id or f"{ANONYMOUS_PREFIX}{session_id}", session_id)
        return
    if user_id is not None and memory.session_owner(session_id) != user_id:
        raise ApiError(422, "invalid_request", "this chat belongs to another user")


def _reply_in_flight(service: Service, session_id: str) -> str | None:
    """The run answering in the session (its claim), if any."""
    memory = service.short_term
    try:
        value = memory.client.get(memory.busy_key(session_id))
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise MemoryUnavailable(memory.server, error) from error
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def reasoning_line(event: dict[str, Any]) -> str | None:
    """An agent event as one line of reasoning text (None: nothing worth a line)."""
    agent = event.get("agent") or "run"
    kind = event["type"]
    if kind in ("thought", "observation"):
        return f"{agent}: {event.get('text', '')}"
    if kind == "action":
        args = event.get("args") or {}
        shown = ", ".join(f"{k}={_short(v)}" for k, v in args.items())
        return f"{agent} calls {event.get('tool', '?')}" + (f"({shown})" if shown else "")
    if kind == "candidates":
        return f"{agent}: {event.get('total', len(event.get('items', [])))} candidates"
    if kind == "reflection":
        if event.get("accept"):
            return f"{agent}: the list is accepted"
        return f"{agent}: rejected: {'; '.join(event.get('problems', []))}"
    if kind == "error":
        return f"{agent}: {event.get('message', '')}"
    return None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_ARG_CHARS else text[: MAX_ARG_CHARS - 1] + "…"


class UIMessageStream:
    """Turns one run's events into UI message chunks (`feed`, event by event)."""

    def __init__(self) -> None:
        self.run_id = ""
        self.recommendation_id = ""
        self.text_open = False
        self.texted = False
        self.reasoning_id: str | None = None
        self.reasonings = 0
        self.recommended = False

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event["type"]
        if kind == "run_started":
            self.run_id = str(event["run_id"])
            self.recommendation_id = str(event["recommendation_id"])
            return [{"type": "start", "messageId": self.run_id, "messageMetadata": self._ids()}]
        if kind == "token":
            return [*self._end_reasoning(), *self._text(str(event.get("text", "")))]
        if kind == "recommendations":
            return [*self._end_reasoning(), self._recommendations(event["items"])]
        if kind == "run_finished":
            return self._finish(event)
        if kind not in TRACE_TYPES:
            return []
        out: list[dict[str, Any]] = [
            {
                "type": "data-trace",
                "id": f"{self.run_id}:{event['seq']}",
                "data": event,
                "transient": True,
            }
        ]
        if kind == "error" and not event.get("recoverable"):
            out += self._end_reasoning()
            if event.get("code") == "cancelled":
                return [*out, {"type": "abort", "reason": str(event.get("message", ""))}]
            text = f"{event.get('code', 'internal_error')}: {event.get('message', '')}"
            return [*out, {"type": "error", "errorText": text}]
        line = reasoning_line(event)
        if line is not None:
            if self.reasoning_id is None:
                self.reasonings += 1
                suffix = "" if self.reasonings == 1 else f"-{self.reasonings}"
                self.reasoning_id = f"reasoning-{self.run_id}{suffix}"
                out.append({"type": "reasoning-start", "id": self.reasoning_id})
            out.append({"type": "reasoning-delta", "id": self.reasoning_id, "delta": line + "\n"})
        return out

    def _ids(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "recommendation_id": self.recommendation_id}

    def _text(self, delta: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.text_open:
            self.text_open = self.texted = True
            out.append({"type": "text-start", "id": f"text-{self.run_id}"})
        out.append({"type": "text-delta", "id": f"text-{self.run_id}", "delta": delta})
        return out

    def _end_reasoning(self) -> list[dict[str, Any]]:
        if self.reasoning_id is None:
            return []
        ended, self.reasoning_id = self.reasoning_id, None
        return [{"type": "reasoning-end", "id": ended}]

    def _recommendations(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        self.recommended = True
        return {
            "type": "data-recommendations",
            "id": f"recommendations-{self.run_id}",
            "data": {**self._ids(), "items": items},
        }

    def _finish(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        output = event.get("output") or {}
        out = self._end_reasoning()
        reply = output.get("reply") or ""
        if not self.texted and reply:
            out += self._text(reply)
        if self.text_open:
            self.text_open = False
            out.append({"type": "text-end", "id": f"text-{self.run_id}"})
        items = output.get("recommendations") or []
        if not self.recommended and items:
            out.append(self._recommendations(items))
        status = event.get("status", "success")
        metadata = {
            **self._ids(),
            "status": status,
            "degraded": list(output.get("degraded") or []),
        }
        if "usage" in output:
            metadata["usage"] = output["usage"]
        finish_reason = "stop" if status == "success" else "error"
        out.append({"type": "finish", "finishReason": finish_reason, "messageMetadata": metadata})
        return out


async def ui_message_chunks(
    events: AsyncIterator[dict[str, Any]],
) -> AsyncIterator[dict[str, Any] | str]:
    """The UI message stream of a run's events, then `[DONE]`."""
    adapter = UIMessageStream()
    async for event in events:
        for chunk in adapter.feed(event):
            yield chunk
    yield DONE


ChatId = Annotated[str, Path(pattern=ID_PATTERN, description="The chat id (`useChat`'s `id`).")]


@router.post(
    "/chat",
    summary="A chat turn for the Vercel AI SDK (useChat): the reply as a UI message stream.",
    response_class=EventSourceResponse,
    responses=sse_responses("UIMessageChunk", UI_STREAM_DESCRIPTION),
)
async def chat(
    body: ChatRequest,
    request: Request,
    client: Client,
    on_disconnect: Annotated[
        Literal["cancel", "continue"],
        Query(
            description="What happens to the reply if the client goes away: continue (the "
            "default: resume it with GET /v1/chat/{id}/stream) or cancel."
        ),
    ] = "continue",
) -> Response:
    service = service_of(request)
    given = chat_input(body, service.settings.max_message_chars)
    session_id = chat_session_id(client.key_id, body.id)
    with service_errors():
        await asyncio.to_thread(_ensure_session, service, session_id, body.user_id)
    run_id = uuid.uuid4().hex
    with service_errors():  # a busy session or a Redis outage is a 4xx/503 before the 200
        events = await service.open_chat(
            session_id,
            given.message,
            context=body.context,
            present=presenter(service.toolbox()),
            run_id=run_id,
            history=given.history,
        )
    return await start_streamed_run(
        request,
        events,
        run_id,
        on_disconnect,
        adapt=ui_message_chunks,
        encode=data_frame,
        headers={**UI_STREAM_HEADERS, "Content-Location": f"/v1/chat/{body.id}/stream"},
    )


@router.get(
    "/chat/{chat_id}/stream",
    summary="Resume the reply in flight of a chat (useChat's resume), replayed from its start.",
    response_class=EventSourceResponse,
    responses={
        **sse_responses("UIMessageChunk", UI_STREAM_DESCRIPTION),
        204: {"description": "No reply is in flight in this chat."},
    },
)
async def resume_chat(chat_id: ChatId, request: Request, client: Client) -> Response:
    service = service_of(request)
    session_id = chat_session_id(client.key_id, chat_id)
    with service_errors():
        run_id = await asyncio.to_thread(_reply_in_flight, service, session_id)
    if run_id is None:
        return no_content()
    answer = await resume(
        request,
        run_id,
        0,
        adapt=ui_message_chunks,
        encode=data_frame,
        headers=UI_STREAM_HEADERS,
    )
    return answer if answer is not None else no_content()
