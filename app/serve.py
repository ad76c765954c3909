"""`agentrec serve`: run the HTTP service with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="Run the HTTP service.")
    p.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    p.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
    p.add_argument("--workers", type=int, default=1, help="Worker processes (default 1).")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )
    return 0
