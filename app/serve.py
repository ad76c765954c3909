"""`agentrec serve`: run the HTTP service with uvicorn.

One worker uses the embedded stores in-process. Several workers (one per core: a worker is
one Python process, bound to one core) must share their state: with no REDIS_URL or
CHROMA_HOST, `serve` starts an embedded redis-server and a Chroma server (`chroma run`) for
them in the data directory, and stops both when it exits.

Several workers run under uvicorn's process manager, which restarts a worker that dies or
hangs and replaces them one by one on SIGHUP; each listens on its own SO_REUSEPORT socket
once its models are loaded, and `/readyz` waits for all of them; each runs its BLAS on
`AGENTREC_BLAS_THREADS` threads (`app.workers`). Requests
have header and body read timeouts (`app.http_protocol`); logs are JSON lines (`app.logs`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from app.http_protocol import TimedHttpProtocol
from app.http_protocol import configure as configure_timeouts
from app.security import bind_host_for
from app.workers import (
    READY_DIR_ENV,
    WORKERS_ENV,
    blas_environment,
    limit_blas_threads,
    use_reuse_port_workers,
)
from core.errors import ConfigError
from core.settings import Settings, get_settings

log = logging.getLogger("agentrec.serve")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="Run the HTTP service.")
    p.add_argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1).")
    p.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Worker processes (default 1; use one per core). Without REDIS_URL and "
        "CHROMA_HOST, several workers share an embedded Redis and Chroma server.",
    )
    p.set_defaults(handler=run)


@contextlib.contextmanager
def shared_stores(settings: Settings) -> Iterator[None]:
    """Start the Redis and Chroma servers several workers share, unless configured, and
    tell the workers where they are (environment variables they inherit)."""
    from memory.chroma_server import EmbeddedChromaServer
    from memory.redis_server import EmbeddedRedis

    with contextlib.ExitStack() as stack:
        if settings.redis_url is None:
            redis_server = stack.enter_context(
                EmbeddedRedis(settings.data_dir / "redis", maxmemory=settings.redis_maxmemory)
            )
            os.environ["REDIS_URL"] = redis_server.url
            log.info("shared Redis at %s", redis_server.url)
        if settings.chroma_host is None:
            chroma = stack.enter_context(EmbeddedChromaServer(settings.data_dir / "chroma"))
            os.environ["CHROMA_HOST"] = "127.0.0.1"
            os.environ["CHROMA_PORT"] = str(chroma.port)
            log.info("shared Chroma server on port %d", chroma.port)
        yield


def _config(settings: Settings, host: str, port: int, workers: int) -> uvicorn.Config:
    from app.logs import uvicorn_log_config

    config = uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=TimedHttpProtocol,
        log_config=uvicorn_log_config(settings.log_format),
        timeout_graceful_shutdown=10,
    )
    configure_timeouts(config, settings.header_timeout_s, settings.body_timeout_s)
    return config


def _run_workers(config: uvicorn.Config, settings: Settings) -> int:
    """uvicorn's process manager over `config.workers` workers, each on its own socket; the
    folder where ready workers leave their marker lives as long as the set."""
    use_reuse_port_workers()
    with tempfile.TemporaryDirectory(prefix="agentrec-workers-", dir=_run_dir(settings)) as ready:
        os.environ[WORKERS_ENV] = str(config.workers)
        os.environ[READY_DIR_ENV] = ready
        Multiprocess(config, sockets=[]).run()
    return 0


def _run_dir(settings: Settings) -> Path:
    folder = settings.data_dir / "run"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    host = bind_host_for(settings, args.host)
    config = _config(settings, host, args.port, args.workers)
    if args.workers > 1:
        blas_environment(settings.blas_threads)  # each worker limits its own as it starts
        with shared_stores(settings):
            return _run_workers(config, settings)
    limit_blas_threads(settings.blas_threads)  # this process is the one worker
    uvicorn.Server(config).run()
    return 0
