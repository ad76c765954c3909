"""Feedback events: batched, idempotent by `event_id`, attributed by `recommendation_id`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.api.common import call, service_of
from app.schemas import ERROR_RESPONSES, EventBatch, EventBatchResponse, EventResult
from app.security import Principal, require_client
from app.service import EventIn

router = APIRouter(prefix="/v1", tags=["events"], responses=ERROR_RESPONSES)


@router.post(
    "/events",
    status_code=202,
    response_model=EventBatchResponse,
    summary="Record up to 100 feedback events; a repeated event_id is reported duplicate.",
)
async def record_events(
    body: EventBatch, request: Request, _: Annotated[Principal, Depends(require_client)]
) -> EventBatchResponse:
    service = service_of(request)
    events = [EventIn(**e.model_dump()) for e in body.events]
    outcomes = await call(service.record_events, events)
    results = [
        EventResult(event_id=o.event_id, status=o.status, message=o.message) for o in outcomes
    ]
    counter = request.app.state.metrics.events
    for result in results:
        counter.labels(result.status).inc()
    return EventBatchResponse(
        results=results,
        stored=sum(r.status == "stored" for r in results),
        duplicates=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
    )
