"""The FastAPI application factory. Nothing is built at import time.

The lifespan starts the `Service` (embedded Redis unless REDIS_URL, Chroma, the catalog's
models) in a worker thread and stops it on shutdown; requests that arrive before it is
ready get a 503 `starting`, and `/readyz` answers 503 until then and from shutdown on
(`app.state.lifecycle`: starting, ready, stopping).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app import cors, errors, openapi, security, workers
from app.api import admin, feedback, openai_compat, ops, recommend, sessions, ui_stream
from app.health import DependencyChecks
from app.metrics import Metrics, MetricsMiddleware
from app.runs import RunRegistry
from app.service import Service
from core.settings import Settings, get_settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("agentrec.api")

DESCRIPTION = """
Multi-agent recommendations with the reasoning behind them.

- `POST /v1/recommendations` answers in JSON; `POST /v1/recommendations/stream` streams the
  agents' reasoning as Server-Sent Events, resumable with `Last-Event-ID`.
- `POST /v1/events` records feedback (idempotent by `event_id`); it shapes the next answers.
- `POST /v1/sessions` and `POST /v1/sessions/{id}/messages` hold a streamed chat.
- `POST /v1/chat` speaks the Vercel AI SDK's UI message stream (`useChat`);
  `POST /v1/chat/completions` and `GET /v1/models` speak OpenAI's API.

Authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>` when keys are configured.
"""


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """Build the service for `settings` (from the environment when not given). A `service`
    that is already started may be passed (tests); it is then not stopped on shutdown."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        svc = service or Service(settings)
        if owned:
            await asyncio.to_thread(svc.start)
        security.install(app, settings, svc.redis.async_client())
        svc.run_observer = lambda task, status: metrics.runs.labels(task, status).inc()
        app.state.service = svc
        app.state.dependency_checks = DependencyChecks()
        app.state.lifecycle = "ready"
        workers.mark_ready()  # under `serve --workers N`, /readyz waits for every worker
        try:
            yield
        finally:
            workers.unmark_ready()
            app.state.lifecycle = "stopping"  # /readyz answers 503 from here on
            app.state.service = None
            app.state.dependency_checks.close()
            await app.state.runs.shutdown()
            await svc.aclose()
            if owned:
                await asyncio.to_thread(svc.close)

    app = FastAPI(
        title="agentrec",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = None
    app.state.lifecycle = "starting"  # then "ready", then "stopping" (see app/api/ops.py)
    app.state.runs = RunRegistry()
    app.state.metrics = metrics
    security.install(app, settings)
    for router in (
        ops.router,
        recommend.router,
        feedback.router,
        sessions.router,
        ui_stream.router,
        openai_compat.router,
        admin.router,
    ):
        app.include_router(router)
    if (STATIC_DIR / "index.html").is_file():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    errors.install(app, settings)  # the request-id middleware outside the others
    cors.install(app, settings)  # outermost: preflights, and CORS headers on every answer
    openapi.install(app)
    return app
