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


def _serve(tmp_path: Path, *extra: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "AGENTREC_DATA_DIR": str(tmp_path)}
    for name in ("REDIS_URL", "CHROMA_HOST", "CHROMA_PORT", "AGENTREC_API_KEYS"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
                time.sleep(0.2)
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"server did not start:\n{out}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path)


def test_several_workers_share_embedded_redis_and_chroma(tmp_path: Path) -> None:
    """`serve --workers 2` on the embedded defaults: both workers see the same sessions,
    feedback and memories (a shared redis-server and Chroma server, stopped at exit)."""
    for base in _serve(tmp_path, "--workers", "2"):
        with httpx.Client(base_url=base, timeout=30) as first:
            session = first.post("/v1/sessions", json={"user_id": "u007"}).json()["session_id"]
            item = first.post("/v1/recommendations", json={"user_id": "u007"}).json()["items"][0]
            event = {
                "event_id": "w1",
                "type": "dislike",
                "user_id": "u007",
                "item_id": item["item_id"],
            }
            assert first.post("/v1/events", json={"events": [event]}).status_code == 202
        for _ in range(6):  # new connections: both workers answer some of them
            with httpx.Client(base_url=base, timeout=30) as other:
                assert other.get(f"/v1/sessions/{session}").status_code == 200
                again = other.post("/v1/recommendations", json={"user_id": "u007"}).json()
                assert item["item_id"] not in [i["item_id"] for i in again["items"]]
                memories = other.get("/v1/users/u007/memories").json()
                assert item["item_id"] in memories["excluded_item_ids"]


def test_serve_answers_health_and_openapi(server: str) -> None:
    r = httpx.get(f"{server}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    spec = httpx.get(f"{server}/openapi.json").json()
    assert spec["info"]["title"] == "agentrec"
    assert "/healthz" in spec["paths"]


def test_unknown_path_is_a_404(server: str) -> None:
    assert httpx.get(f"{server}/nope").status_code == 404
