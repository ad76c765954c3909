"""Worker processes of `agentrec serve --workers N`, under uvicorn's process manager.

uvicorn's `Multiprocess` supervisor starts the workers, restarts one that dies or hangs,
and replaces them one by one on SIGHUP (a rolling restart). Two things are added here:

- **One socket per worker.** Each worker binds its own socket with SO_REUSEPORT, so the
  kernel spreads new connections evenly over the workers (with one shared socket, whichever
  worker wakes first can accept a whole burst of keep-alive connections and leave the others
  idle). A worker's socket starts listening only once its application has started (models
  loaded): until then the kernel sends it nothing, so a restarting worker never holds
  connections it cannot answer.
- **Readiness of the whole set.** Each worker, once started, leaves a marker named by its
  pid in a folder the supervisor made; `/readyz` answers 200 only when as many live workers
  are ready as were asked for.
- **One BLAS thread per worker.** A worker is one process per core: BLAS and OpenMP thread
  pools of their default size (one thread per core) in every worker oversubscribe the cores
  (on 2 cores, a chat turn's p50 went from 14.5 ms to 33 ms under load). Each worker limits
  them to `AGENTREC_BLAS_THREADS` (1; 0 leaves the libraries' defaults) as it starts, before
  the application loads (`limit_blas_threads`), and `GET /health/worker` reports what it
  runs with.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits
from uvicorn.supervisors import multiprocess

WORKERS_ENV = "AGENTREC_SERVE_WORKERS"
"""How many workers the supervisor runs (unset: one process, no supervisor)."""
READY_DIR_ENV = "AGENTREC_SERVE_READY_DIR"
"""Where ready workers leave their marker."""
BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
"""What the BLAS and OpenMP libraries read when they load."""


def blas_environment(threads: int) -> None:
    """Make the BLAS and OpenMP libraries this process loads from now on, and those of its
    child processes (uvicorn's workers), start with `threads` threads each (0: leave their
    defaults; they read these variables when they load, and never start more threads than
    there are cores)."""
    if threads > 0:
        for name in BLAS_THREAD_VARIABLES:
            os.environ[name] = str(threads)


def limit_blas_threads(threads: int) -> None:
    """Run this worker's BLAS and OpenMP libraries on `threads` threads each (0: leave them
    alone): numpy's and scipy's BLAS are loaded and limited now with threadpoolctl, any
    library loaded later reads the environment (`blas_environment`)."""
    if threads <= 0:
        return
    blas_environment(threads)
    import numpy  # noqa: F401  (the worker loads both anyway; their BLAS is limited now)
    import scipy.linalg  # noqa: F401

    threadpool_limits(limits=threads)


def thread_pools() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries loaded in this process, with their thread counts."""
    return [
        {"api": pool["user_api"], "library": pool["prefix"], "threads": pool["num_threads"]}
        for pool in threadpool_info()
    ]


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not yet listening (uvicorn calls
    `listen` when the server starts serving, after the application's startup)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


class ReusePortWorker(multiprocess.Process):
    """uvicorn's worker process, serving on a socket of its own (see the module doc)."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        from core.settings import get_settings

        limit_blas_threads(get_settings().blas_threads)  # before the app loads numpy
        own = reuse_port_socket(self.config.host, self.config.port)
        super().target([own])


def use_reuse_port_workers() -> None:
    """Make uvicorn's supervisor start `ReusePortWorker`s (it names its worker class at
    module level)."""
    multiprocess.Process = ReusePortWorker  # type: ignore[misc]


def mark_ready() -> None:
    """This worker has started: leave its marker (no-op outside a supervised set)."""
    folder = os.environ.get(READY_DIR_ENV)
    if folder:
        (Path(folder) / str(os.getpid())).touch()


def unmark_ready() -> None:
    folder = os.environ.get(READY_DIR_ENV)
    if folder:
        (Path(folder) / str(os.getpid())).unlink(missing_ok=True)


def workers_ready() -> tuple[int, int] | None:
    """(ready, expected) live workers of the set this process belongs to; None outside a
    supervised set. Markers of dead workers are removed."""
    folder, expected = os.environ.get(READY_DIR_ENV), os.environ.get(WORKERS_ENV)
    if not folder or not expected:
        return None
    ready = 0
    for marker in Path(folder).iterdir():
        if not marker.name.isdigit():
            continue
        try:
            os.kill(int(marker.name), 0)
        except ProcessLookupError:
            marker.unlink(missing_ok=True)
            continue
        except PermissionError:
            pass
        ready += 1
    return ready, int(expected)
