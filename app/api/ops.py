"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.schemas import Readiness

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers.")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Redis or Chroma is unavailable."}},
    summary="Readiness: the service is started and Redis and Chroma answer.",
)
async def readyz(request: Request) -> Response:
    service = getattr(request.app.state, "service", None)
    if service is None:
        body = Readiness(status="unavailable", checks={"service": "starting"})
        return JSONResponse(body.model_dump(), status_code=503)
    checks = await asyncio.to_thread(service.readiness)
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics.", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
