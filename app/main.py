"""The FastAPI application factory. Nothing is built at import time."""

from __future__ import annotations

from fastapi import FastAPI

from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for `settings` (from the environment when not given)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="agentrec",
        version="0.1.0",
        description="Multi-agent recommendations with the reasoning behind them.",
    )
    app.state.settings = settings

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
