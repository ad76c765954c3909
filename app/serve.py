"""`agentrec serve`: run the HTTP service with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from app.security import bind_host_for
from core.errors import ConfigError
from core.settings import get_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="Run the HTTP service.")
    p.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    p.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Worker processes (default 1; more need REDIS_URL and CHROMA_HOST, which all "
        "workers share).",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if args.workers > 1 and (settings.redis_url is None or settings.chroma_host is None):
        raise ConfigError(
            "--workers > 1 needs a shared Redis (REDIS_URL) and Chroma server (CHROMA_HOST): "
            "each worker would otherwise start its own embedded stores"
        )
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=bind_host_for(settings, args.host),
        port=args.port,
        workers=args.workers,
        log_level="info",
        timeout_graceful_shutdown=10,
    )
    return 0
