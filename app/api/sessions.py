"""Chat sessions: create one, post a message and receive the streamed reply, read the
history. Sessions live in Redis, so they survive a restart of the API process."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sse_starlette import EventSourceResponse

from app.api import idempotency
from app.api.common import call, presenter, service_errors, service_of
from app.api.recommend import IdempotencyKey, LastEventId, OnDisconnect, disconnect_policy
from app.api.streams import (
    idempotent_stream,
    parse_last_event_id,
    run_stream_responses,
    start_streamed_run,
)
from app.schemas import (
    ERROR_RESPONSES,
    MessageRequest,
    SessionCreated,
    SessionOut,
    SessionRequest,
    TurnOut,
)
from app.security import Principal, require_client
from app.service import ANONYMOUS_PREFIX

router = APIRouter(prefix="/v1", tags=["chat"], responses=ERROR_RESPONSES)
Client = Annotated[Principal, Depends(require_client)]


def _public_owner(owner: str) -> str | None:
    return None if owner.startswith(ANONYMOUS_PREFIX) else owner


@router.post(
    "/sessions", status_code=201, response_model=SessionCreated, summary="Start a chat session."
)
async def create_session(body: SessionRequest, request: Request, _: Client) -> SessionCreated:
    service = service_of(request)
    session_id, owner = await call(service.create_session, body.user_id)
    return SessionCreated(session_id=session_id, user_id=_public_owner(owner))


@router.get("/sessions/{session_id}", response_model=SessionOut, summary="A session and its turns.")
async def get_session(session_id: str, request: Request, _: Client) -> SessionOut:
    service = service_of(request)
    owner = await call(service.short_term.session_owner, session_id)
    turns = await call(service.session_turns, session_id)
    return SessionOut(
        session_id=session_id,
        user_id=_public_owner(owner),
        turns=[TurnOut(role=t.role, text=t.text, meta=t.meta, ts=t.ts) for t in turns],
    )


@router.post(
    "/sessions/{session_id}/messages",
    summary="Send a message; the reply streams back (tokens, trace, recommendations).",
    response_class=EventSourceResponse,
    responses=run_stream_responses(),
)
async def post_message(
    session_id: str,
    body: MessageRequest,
    request: Request,
    client: Client,
    on_disconnect: OnDisconnect = None,
    idempotency_key: IdempotencyKey = None,
    last_event_id: LastEventId = None,
) -> Response:
    service = service_of(request)
    after = parse_last_event_id(last_event_id)

    async def start(run_id: str) -> Response:
        with service_errors():  # a missing session or Redis outage is a 4xx/503 before the 200
            events = await service.open_chat(
                session_id,
                body.message,
                context=body.context,
                present=presenter(service.toolbox()),
                run_id=run_id,
            )
        policy = disconnect_policy(on_disconnect, idempotency_key)
        return await start_streamed_run(request, events, run_id, policy)

    return await idempotent_stream(
        request,
        caller=client.key_id,
        key=idempotency_key,
        body=idempotency.fingerprint("messages", session_id, body.model_dump(mode="json")),
        run_id=uuid.uuid4().hex,
        after=after,
        start=start,
    )
