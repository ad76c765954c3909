"""`agentrec serve`: run the HTTP service with uvicorn.

One worker uses the embedded stores in-process. Several workers (one per core: a worker is
one Python process, bound to one core) must share their state: with no REDIS_URL or
CHROMA_HOST, `serve` starts an embedded redis-server and a Chroma server (`chroma run`) for
them in the data directory, and stops both when it exits.

Each worker listens on its own socket bound with SO_REUSEPORT, so the kernel spreads new
connections evenly over the workers. (With one shared socket, as uvicorn's own workers use,
whichever worker wakes first can accept a whole burst of connections and leave the others
idle: a 32-client benchmark then ran on one core.)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Iterator
from types import FrameType

import uvicorn

from app.security import bind_host_for
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


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def _worker(host: str, port: int) -> None:
    """One worker process: its own SO_REUSEPORT socket, one uvicorn server."""
    config = uvicorn.Config(
        "app.main:create_app", factory=True, log_level="info", timeout_graceful_shutdown=10
    )
    uvicorn.Server(config).run(sockets=[_listening_socket(host, port)])


def _run_workers(host: str, port: int, workers: int) -> int:
    """Start `workers` worker processes and wait; a signal or a worker's exit stops all."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(host, port), name=f"agentrec-worker-{n}")
        for n in range(workers)
    ]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        while not stopping and all(p.is_alive() for p in processes):
            time.sleep(0.2)
        if not stopping:
            log.error("a worker exited; stopping the others")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else 1


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    host = bind_host_for(settings, args.host)
    if args.workers > 1 and hasattr(socket, "SO_REUSEPORT"):
        with shared_stores(settings):
            return _run_workers(host, args.port, args.workers)
    stores = shared_stores(settings) if args.workers > 1 else contextlib.nullcontext()
    with stores:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=args.port,
            workers=args.workers,
            log_level="info",
            timeout_graceful_shutdown=10,
        )
    return 0
