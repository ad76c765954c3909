"""The service as a real process: `agentrec serve` on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "AGENTREC_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"server did not start:\n{out}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_answers_health_and_openapi(server: str) -> None:
    r = httpx.get(f"{server}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    spec = httpx.get(f"{server}/openapi.json").json()
    assert spec["info"]["title"] == "agentrec"
    assert "/healthz" in spec["paths"]


def test_unknown_path_is_a_404(server: str) -> None:
    assert httpx.get(f"{server}/nope").status_code == 404
