"""OpenAI-compatible chat completions: `POST /v1/chat/completions` (streamed or not) and
`GET /v1/models`, so any OpenAI SDK or OpenAI-speaking chat UI can talk to the agents.

Each request is one stateless chat run (no session): the last user message is answered for
the user named by `user` (or an anonymous visitor), reading the user and assistant messages
before it as the conversation (titles named, liked or not, already suggested). `model` is
`agentrec` (the served preset) or a preset name from `GET /v1/models`. The reply's text is
the agents' answer followed by the grounded items, one per line ("1. Title - why"); the same
items are in the extra field `agentrec` (`{run_id, recommendation_id, recommendations,
degraded}`) of the completion, or of the streamed chunk that carries `finish_reason`. Usage
counts the LLM tokens the agents spent (0 on the offline preset). An adapter over the one run
event stream, as `/v1/chat` is.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam

from agents.context import PRESETS_DIR, Context
from app.api.common import (
    ChatInput,
    conversation_input,
    data_frame,
    presenter,
    service_errors,
    service_of,
)
from app.api.streams import start_streamed_run
from app.errors import ApiError
from app.openapi import sse_responses
from app.schemas import (
    ERROR_RESPONSES,
    AgentrecExtra,
    ChatCompletion,
    ChatCompletionRequest,
    CompletionChoice,
    CompletionMessage,
    CompletionUsage,
    ModelList,
    ModelOut,
    OpenAIMessage,
    RecommendedItem,
)
from app.security import Principal, require_client
from app.service import RunRequest, Service
from core.errors import ConfigError

router = APIRouter(prefix="/v1", tags=["openai"], responses=ERROR_RESPONSES)
Client = Annotated[Principal, Depends(require_client)]

SERVED_MODEL = "agentrec"
"""The model name of the served preset."""
DONE = "[DONE]"

COMPLETION_STREAM_DESCRIPTION = (
    "With `stream: true`: OpenAI's chunk stream. Each SSE `data:` is a `chat.completion.chunk` "
    "(schema below); the chunk with `finish_reason` also carries `agentrec` (the grounded "
    'items); a failure after the 200 is `data: {"error": {...}}`; the stream ends with '
    "`data: [DONE]`. Without `stream`, a JSON `chat.completion`."
)


def _mtime(path: Path) -> int:
    try:
        return int(path.stat().st_mtime)
    except OSError:
        return 0


def models(service: Service) -> list[ModelOut]:
    """`agentrec` (the served preset) and every preset of configs/ (or AGENTREC_PRESETS_DIR);
    `created` is when the preset file last changed."""
    served = Path(service.settings.preset)
    if not served.suffix:
        served = PRESETS_DIR / f"{served}.toml"
    paths = sorted(PRESETS_DIR.glob("*.toml")) if PRESETS_DIR.is_dir() else []
    return [
        ModelOut(id=name, object="model", created=_mtime(path), owned_by="agentrec")
        for name, path in [(SERVED_MODEL, served), *((p.stem, p) for p in paths)]
    ]


def context_of(service: Service, model: str) -> dict[str, Any]:
    """The run's context overrides for `model`: none for the served preset, a preset's
    values otherwise; 404 `model_not_found` for any other name."""
    if model == SERVED_MODEL:
        return {}
    if model not in {m.id for m in models(service)}:
        raise ApiError(
            404,
            "model_not_found",
            f"no model {model[:100]!r}; GET /v1/models lists them",
        )
    try:
        preset = Context.from_preset(model)
    except ConfigError as error:
        raise ApiError(422, "invalid_request", str(error)) from None
    return {
        f.name: getattr(preset, f.name)
        for f in dataclasses.fields(Context)
        if f.name not in ("catalog", "memory")
    }


def message_text(message: OpenAIMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(p.text or "" for p in message.content or [] if p.type == "text")


def completion_input(body: ChatCompletionRequest, max_chars: int) -> ChatInput:
    """The one place that reads the conversation an OpenAI client sends: the last user
    message is what the run answers (422 when there is none, it is blank or too long); the
    user and assistant messages before it are the conversation the run reads (system,
    developer and tool messages are not part of it)."""
    return conversation_input([(m.role, message_text(m), ()) for m in body.messages], max_chars)


def items_text(items: list[dict[str, Any]]) -> str:
    """The grounded items as text lines, after the reply ("" when there are none)."""
    lines = []
    for item in items:
        why = str(item.get("explanation") or "").strip()
        lines.append(f"{item['rank']}. {item['title']}" + (f" - {why}" if why else ""))
    return "\n\n" + "\n".join(lines) if lines else ""


def _usage(output: dict[str, Any]) -> CompletionUsage:
    usage = output.get("usage") or {}
    prompt = int(usage.get("prompt_tokens", 0))
    completion = int(usage.get("completion_tokens", 0))
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _extra(finished: dict[str, Any]) -> AgentrecExtra:
    output = finished["output"]
    return AgentrecExtra(
        run_id=finished["run_id"],
        recommendation_id=finished["recommendation_id"],
        recommendations=[RecommendedItem(**i) for i in output.get("recommendations", [])],
        degraded=list(output.get("degraded", [])),
    )


class CompletionChunks:
    """Turns one run's events into `chat.completion.chunk`s (`feed`, event by event)."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = ""
        self.created = int(time.time())

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": None, "content": None, **delta},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": None,
            "agentrec": None,
        }

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event["type"]
        if kind == "run_started":
            self.id = f"chatcmpl-{event['run_id']}"
            self.created = int(event["ts"])
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "token":
            return [self.chunk({"content": str(event.get("text", ""))})]
        if kind == "error" and not event.get("recoverable"):
            code = str(event.get("code") or "internal_error")
            message = str(event.get("message", ""))
            return [{"error": {"message": message, "type": code, "code": code, "param": None}}]
        if kind != "run_finished":
            return []
        output = event["output"]
        out = []
        listed = items_text(output.get("recommendations", []))
        if listed:
            out.append(self.chunk({"content": listed}))
        last = self.chunk({}, "stop")
        last["agentrec"] = _extra(event).model_dump(mode="json")
        out.append(last)
        if self.include_usage:
            out.append({**self.chunk({}), "choices": [], "usage": _usage(output).model_dump()})
        return out


@router.get("/models", response_model=ModelList, summary="The models (presets) to chat with.")
async def list_models(request: Request, _: Client) -> ModelList:
    return ModelList(object="list", data=models(service_of(request)))


@router.get("/models/{model}", response_model=ModelOut, summary="One model.")
async def get_model(
    model: Annotated[str, PathParam(max_length=200)], request: Request, _: Client
) -> ModelOut:
    for listed in models(service_of(request)):
        if listed.id == model:
            return listed
    raise ApiError(404, "model_not_found", f"no model {model[:100]!r}; GET /v1/models lists them")


@router.post(
    "/chat/completions",
    summary="OpenAI-compatible chat completion (one stateless chat run; stream or not).",
    response_model=ChatCompletion,
    responses=sse_responses("ChatCompletionChunk", COMPLETION_STREAM_DESCRIPTION),
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, _: Client
) -> ChatCompletion | Response:
    service = service_of(request)
    given = completion_input(body, service.settings.max_message_chars)
    run_request = RunRequest(
        task="chat",
        user_id=body.user,
        message=given.message,
        messages=given.history,
        context=context_of(service, body.model),
        run_id=uuid.uuid4().hex,
    )
    with service_errors():
        service.check_request(run_request)  # bad input is a 4xx, before the 200
        service.context(run_request.context)
    present = presenter(service.toolbox())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        adapter = CompletionChunks(body.model, include_usage)

        async def chunks(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Any]:
            async for event in events:
                for chunk in adapter.feed(event):
                    yield chunk
            yield DONE

        return await start_streamed_run(
            request,
            service.stream_run(run_request, present=present),
            str(run_request.run_id),
            "cancel",
            adapt=chunks,
            encode=data_frame,
        )
    with service_errors():
        result = await service.run(run_request, present=present)
    if result.error is not None:
        code = str(result.error.get("code", "internal_error"))
        status = {"unavailable": 503, "invalid_request": 422}.get(code, 500)
        raise ApiError(status, code, str(result.error.get("message")))
    finished = result.events[-1]
    output = result.output
    text = str(output.get("reply") or "") + items_text(output.get("recommendations", []))
    return ChatCompletion(
        id=f"chatcmpl-{result.run_id}",
        object="chat.completion",
        created=int(finished["ts"]),
        model=body.model,
        choices=[
            CompletionChoice(
                index=0,
                message=CompletionMessage(role="assistant", content=text),
                finish_reason="stop",
            )
        ],
        usage=_usage(output),
        agentrec=_extra(finished),
    )
