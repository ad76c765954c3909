"""`agentrec serve` as a child process for the benchmarks that load or fuzz the service."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from memory.redis_server import free_port, stop_process


def clean_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This environment without agentrec, Chroma and Redis settings or API keys, plus an
    open service (no keys, no rate limit, offline preset) in `data_dir` and `settings`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not (name.endswith("_API_KEY") or name.startswith(("AGENTREC_", "CHROMA_")))
        and name != "REDIS_URL"
    }
    env.update(
        AGENTREC_DATA_DIR=str(data_dir),
        AGENTREC_RATE_LIMIT_PER_MINUTE="0",
        AGENTREC_PRESET="offline",
        AGENTREC_API_KEYS="",
    )
    env.update(settings)
    return env


@dataclass(frozen=True)
class RunningService:
    url: str
    process: subprocess.Popen[bytes]
    startup_s: float
    log: Path


@contextmanager
def agentrec_serve(
    workdir: Path, env: dict[str, str], workers: int = 1, ready_timeout_s: float = 120.0
) -> Iterator[RunningService]:
    """`agentrec serve` on a free loopback port, its output in `workdir/server.log`; yields
    once `GET /readyz` answers 200, stops it on exit (terminate, then kill)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    agentrec = Path(sys.executable).with_name("agentrec")
    command = [str(agentrec), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.perf_counter()
        wait_ready(url, server, log_path, ready_timeout_s)
        yield RunningService(url, server, round(time.perf_counter() - started, 2), log_path)
    finally:
        stop_process(server, 20.0)


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the service exited ({server.returncode}):\n{tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"GET /readyz was not 200 within {timeout_s:.0f} s:\n{tail(log)}")


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
