"""Liveness, readiness, the dependency report and metrics.

- `GET /livez` (and its alias `/healthz`): liveness, the process answers. Restart on failure.
- `GET /readyz`: readiness, the replica can serve: 200 once the service is started (models
  loaded), also while Redis or Chroma is down (it answers degraded and names them in
  `degraded`); 503 only while starting or stopping. Route traffic on it.
- `GET /health/dependencies`: each dependency's state with the error; always 200 (it is a
  report for dashboards and alerts, not a probe).
- `GET /health/worker`: the worker process that answered: its pid and the threads of its
  BLAS and OpenMP libraries (one per worker by default: `app.workers`).
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.health import DependencyCheck, DependencyChecks
from app.schemas import (
    DependencyReport,
    DependencyStatus,
    Liveness,
    Readiness,
    ThreadPool,
    WorkerReport,
)
from app.service import Service
from app.workers import thread_pools, workers_ready

router = APIRouter(tags=["ops"])

_LIVENESS_SUMMARY = "Liveness: the process answers (restart the replica when it does not)."


@router.get("/livez", response_model=Liveness, summary=_LIVENESS_SUMMARY)
async def livez() -> Liveness:
    return Liveness(status="ok")


@router.get("/healthz", response_model=Liveness, summary=_LIVENESS_SUMMARY + " Alias of /livez.")
async def healthz() -> Liveness:
    return Liveness(status="ok")


def _lifecycle(request: Request) -> tuple[Service | None, str]:
    """The started service, or None and "starting" / "stopping"."""
    service: Service | None = getattr(request.app.state, "service", None)
    phase = str(getattr(request.app.state, "lifecycle", "starting"))
    if service is None or phase != "ready":
        return None, "stopping" if phase == "stopping" else "starting"
    return service, phase


async def _checks(request: Request, service: Service) -> list[DependencyCheck]:
    checks: DependencyChecks = request.app.state.dependency_checks
    return await checks.run(service)


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The service is starting or stopping."}},
    summary="Readiness: the service can serve (a Redis or Chroma outage only degrades it).",
)
async def readyz(request: Request) -> Response:
    service, phase = _lifecycle(request)
    if service is None:
        body = Readiness(status="starting" if phase == "starting" else "stopping")
        return JSONResponse(body.model_dump(), status_code=503)
    workers = workers_ready()  # under `serve --workers N`: ready when all N are
    if workers is not None and workers[0] < workers[1]:
        body = Readiness(status="starting", checks={"workers": f"{workers[0]}/{workers[1]} ready"})
        return JSONResponse(body.model_dump(), status_code=503)
    checks = await _checks(request, service)
    body = Readiness(
        status="ready",
        degraded=[c.name for c in checks if not c.ok],
        checks={c.name: "ok" if c.ok else f"unavailable: {c.error}" for c in checks},
    )
    return JSONResponse(body.model_dump(), status_code=200)


@router.get(
    "/health/dependencies",
    response_model=DependencyReport,
    summary="Each dependency (Redis, Chroma): ok or unavailable, with the error. Always 200.",
)
async def dependencies(request: Request) -> DependencyReport:
    service, phase = _lifecycle(request)
    if service is None:
        return DependencyReport(
            status="starting" if phase == "starting" else "stopping", dependencies={}
        )
    checks = await _checks(request, service)
    return DependencyReport(
        status="ok" if all(c.ok for c in checks) else "degraded",
        dependencies={
            c.name: DependencyStatus(status="ok" if c.ok else "unavailable", error=c.error)
            for c in checks
        },
    )


@router.get(
    "/health/worker",
    response_model=WorkerReport,
    summary="The worker that answered: its pid and its BLAS / OpenMP thread pools.",
)
async def worker() -> WorkerReport:
    pools = [ThreadPool(**pool) for pool in thread_pools()]
    return WorkerReport(
        pid=os.getpid(),
        blas_threads=max((p.threads for p in pools), default=None),
        thread_pools=pools,
    )


@router.get("/metrics", summary="Prometheus metrics.", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
