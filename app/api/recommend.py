"""Recommendations (JSON and streamed), the rank, rate and explain tasks, and runs (resume a
stream with Last-Event-ID, cancel)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sse_starlette import EventSourceResponse

from app.api import idempotency
from app.api.common import (
    call,
    presenter,
    runs_of,
    service_errors,
    service_of,
    usage_of,
)
from app.api.streams import (
    idempotent_stream,
    parse_last_event_id,
    resume,
    run_stream_responses,
    start_streamed_run,
)
from app.errors import ApiError
from app.schemas import (
    ERROR_RESPONSES,
    CancelOut,
    ExplanationResponse,
    ItemRequest,
    RankRequest,
    RatingResponse,
    RecommendationRequest,
    RecommendationResponse,
    RecommendedItem,
)
from app.security import Principal, require_client
from app.service import RunRequest, RunResult, Service

router = APIRouter(prefix="/v1", tags=["recommendations"], responses=ERROR_RESPONSES)
Client = Annotated[Principal, Depends(require_client)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=idempotency.MAX_KEY_CHARS,
        description=idempotency.KEY_DESCRIPTION,
    ),
]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=32,
        description="The `id:` of the last event received: the stream resumes after it.",
    ),
]
OnDisconnect = Annotated[
    Literal["cancel", "continue"] | None,
    Query(
        description="What happens to the run if the client goes away: cancel (the default) "
        "or continue (the default with an Idempotency-Key: the client will come back)."
    ),
]


def disconnect_policy(on_disconnect: str | None, key: str | None) -> str:
    return on_disconnect or ("continue" if key is not None else "cancel")


NAMES_SHOWN = 10
"""Most names an error message lists (unknown and known attributes); the rest are counted."""


def _names(names: Iterable[str], limit: int = NAMES_SHOWN) -> str:
    """`names` sorted and comma-separated, the first `limit` only ("a, b, c and 7 more")."""
    ordered = sorted(names)
    shown = ", ".join(name if len(name) <= 64 else name[:63] + "…" for name in ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _run_request(service: Service, body: RecommendationRequest) -> RunRequest:
    ds = service.toolbox().dataset
    attributes = set(ds.attribute_names)
    asked = {*body.filters.include, *body.filters.exclude}
    unknown = asked - attributes
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"unknown filter attribute(s) {_names(unknown)}; known: {_names(attributes)}",
        )
    bad_fields = set(body.fields) - attributes - {"text"}
    if bad_fields:
        raise ApiError(
            422,
            "invalid_request",
            f"unknown field(s) {_names(bad_fields)}; known: {_names(attributes | {'text'})}",
        )
    return RunRequest(
        task="recommend",
        user_id=body.user_id,
        session_id=body.session_id,
        message=body.query or "",
        count=body.count,
        filters={
            "include": body.filters.include,
            "exclude": body.filters.exclude,
            "exclude_seen": body.exclude_seen,
            "exclude_item_ids": body.exclude_item_ids,
        },
        context={"diversity": body.diversity},
        context_strings=body.context,
        run_id=uuid.uuid4().hex,
    )


def _recommendations(result: RunResult) -> RecommendationResponse:
    output = _answer(result)
    return RecommendationResponse(
        recommendation_id=result.recommendation_id,
        run_id=result.run_id,
        items=[RecommendedItem(**i) for i in output["recommendations"]],
        fallback_used=output["fallback_used"],
        degraded=output["degraded"],
        usage=output["usage"],
    )


def _answer(result: RunResult) -> dict[str, Any]:
    if result.error is not None:
        code = result.error.get("code", "internal_error")
        status = {"unavailable": 503, "invalid_request": 422}.get(code, 500)
        raise ApiError(status, code, str(result.error.get("message")))
    return result.output


@router.post(
    "/recommendations",
    response_model=RecommendationResponse,
    summary="Top items for a user or an anonymous session.",
)
async def recommend(
    body: RecommendationRequest, request: Request, _: Client
) -> RecommendationResponse:
    service = service_of(request)
    present = presenter(service.toolbox(), body.fields, body.fallback)
    with service_errors():
        result = await service.run(_run_request(service, body), present=present)
    return _recommendations(result)


@router.post(
    "/recommendations/stream",
    summary="The same recommendations, streamed with the agents' reasoning (SSE).",
    response_class=EventSourceResponse,
    responses=run_stream_responses(),
)
async def recommend_stream(
    body: RecommendationRequest,
    request: Request,
    client: Client,
    on_disconnect: OnDisconnect = None,
    idempotency_key: IdempotencyKey = None,
    last_event_id: LastEventId = None,
) -> Response:
    service = service_of(request)
    after = parse_last_event_id(last_event_id)
    run_request = _run_request(service, body)
    with service_errors():
        service.check_request(run_request)  # bad input is a 4xx, before the 200
    present = presenter(service.toolbox(), body.fields, body.fallback)

    async def start(run_id: str) -> Response:
        run_request.run_id = run_id
        events = service.stream_run(run_request, present=present)
        policy = disconnect_policy(on_disconnect, idempotency_key)
        return await start_streamed_run(request, events, run_id, policy)

    return await idempotent_stream(
        request,
        caller=client.key_id,
        key=idempotency_key,
        body=idempotency.fingerprint("recommendations", body.model_dump(mode="json")),
        run_id=str(run_request.run_id),
        after=after,
        start=start,
    )


@router.get(
    "/runs/{run_id}/stream",
    summary="Resume a run's stream after the event id given in Last-Event-ID.",
    response_class=EventSourceResponse,
    responses={
        **run_stream_responses(resumable=False),
        204: {
            "description": "The run is over and nothing follows Last-Event-ID (an EventSource "
            "stops reconnecting)."
        },
    },
)
async def resume_stream(
    run_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9._:-]{1,128}$")],
    request: Request,
    _: Client,
    last_event_id: LastEventId = None,
    last_event_id_query: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            max_length=32,
            description="The same as the Last-Event-ID header, for an EventSource's first "
            "connection (it cannot set headers); the header wins.",
        ),
    ] = None,
) -> Response:
    after = parse_last_event_id(last_event_id if last_event_id is not None else last_event_id_query)
    answer = await resume(request, run_id, after)
    if answer is None:
        raise ApiError(404, "run_not_found", f"no run {run_id!r} (unknown or expired)")
    return answer


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    response_model=CancelOut,
    summary="Stop a run in flight.",
)
async def cancel_run(run_id: str, request: Request, _: Client) -> CancelOut:
    registry = runs_of(request)
    live = registry.get(run_id)
    if live is not None:
        return CancelOut(
            run_id=run_id, status="cancelling" if registry.cancel(run_id) else "finished"
        )
    # running on another replica (or finished): ask through Redis; it checks twice a second
    answer = await call(service_of(request).short_term.request_cancel, run_id)
    if answer == "unknown":
        raise ApiError(404, "run_not_found", f"no run {run_id!r} (unknown or expired)")
    return CancelOut(run_id=run_id, status="cancelling" if answer == "cancelling" else "finished")


@router.post(
    "/rank",
    response_model=RecommendationResponse,
    summary="Order a given list of items for a user (the rank task).",
)
async def rank(body: RankRequest, request: Request, _: Client) -> RecommendationResponse:
    service = service_of(request)
    run_request = RunRequest(
        task="rank",
        user_id=body.user_id,
        session_id=body.session_id,
        candidate_item_ids=body.item_ids,
        count=len(body.item_ids),
        context_strings=body.context,
    )
    with service_errors():
        result = await service.run(run_request, present=presenter(service.toolbox()))
    return _recommendations(result)


async def _item_task(
    request: Request, body: ItemRequest, task: Literal["rate", "explain"]
) -> tuple[RunResult, dict[str, Any]]:
    service = service_of(request)
    run_request = RunRequest(
        task=task,
        user_id=body.user_id,
        session_id=body.session_id,
        item_id=body.item_id,
        context_strings=body.context,
    )
    with service_errors():
        result = await service.run(run_request)
    return result, _answer(result)


@router.post("/rate", response_model=RatingResponse, summary="Predict a user's rating.")
async def rate(body: ItemRequest, request: Request, _: Client) -> RatingResponse:
    result, output = await _item_task(request, body, "rate")
    return RatingResponse(
        run_id=result.run_id,
        user_id=body.user_id,
        item_id=body.item_id,
        rating=output["rating"],
        degraded=output["degraded"],
        usage=usage_of(output["usage"]),
    )


@router.post("/explain", response_model=ExplanationResponse, summary="Why an item suits a user.")
async def explain(body: ItemRequest, request: Request, _: Client) -> ExplanationResponse:
    result, output = await _item_task(request, body, "explain")
    return ExplanationResponse(
        run_id=result.run_id,
        user_id=body.user_id,
        item_id=body.item_id,
        explanation=output["explanation"],
        degraded=output["degraded"],
        usage=usage_of(output["usage"]),
    )
