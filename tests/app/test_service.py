"""The service as a real process: `agentrec serve` on a free loopback port."""

from __future__ import annotations

import json
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


def _serve(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "AGENTREC_DATA_DIR": str(tmp_path), **(env or {})}
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
        # each worker (one process per core) runs its BLAS on one thread
        reports = {}
        for _ in range(40):  # new connections until both workers have answered
            with httpx.Client(base_url=base, timeout=30) as other:
                report = other.get("/health/worker").json()
            reports[report["pid"]] = report
            if len(reports) == 2:
                break
        assert len(reports) == 2
        for report in reports.values():
            assert report["blas_threads"] == 1
            pools = report["thread_pools"]
            assert any(p["api"] == "blas" for p in pools)  # numpy's OpenBLAS is loaded
            assert all(p["threads"] == 1 for p in pools)


def test_the_blas_threads_of_a_worker_are_a_setting(tmp_path: Path) -> None:
    """`serve` with one worker (the process itself) runs its BLAS on the threads asked for
    (3: neither the default of the setting nor that of the libraries on 2 cores)."""
    for base in _serve(tmp_path, env={"AGENTREC_BLAS_THREADS": "3"}):
        report = httpx.get(f"{base}/health/worker", timeout=30).json()
        assert report["blas_threads"] == 3
        assert {p["threads"] for p in report["thread_pools"]} == {3}


def test_serve_answers_health_and_openapi(server: str) -> None:
    r = httpx.get(f"{server}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    spec = httpx.get(f"{server}/openapi.json").json()
    assert spec["info"]["title"] == "agentrec"
    assert "/healthz" in spec["paths"]


def test_unknown_path_is_a_404(server: str) -> None:
    assert httpx.get(f"{server}/nope").status_code == 404


def _workers(supervisor: int) -> set[int]:
    """The pids of the uvicorn workers a `serve --workers N` process supervises."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == supervisor and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def test_a_killed_worker_is_restarted_and_readiness_waits_for_every_worker(
    tmp_path: Path,
) -> None:
    """uvicorn's process manager restarts a worker that died; /readyz says 503 while fewer
    workers than asked for are ready, and the service answers on the survivor meanwhile."""
    port = _free_port()
    env = {**os.environ, "AGENTREC_DATA_DIR": str(tmp_path)}
    for name in ("REDIS_URL", "CHROMA_HOST", "CHROMA_PORT", "AGENTREC_API_KEYS"):
        env.pop(name, None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> httpx.Response | None:
        try:
            return httpx.get(f"{base}/readyz", timeout=5)
        except httpx.TransportError:
            return None

    def wait_ready() -> None:
        deadline = time.monotonic() + 120
        while (answer := ready()) is None or answer.status_code != 200:
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serve.log"
            ).read_text()[-3000:]
            time.sleep(0.2)

    try:
        wait_ready()
        workers = _workers(proc.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, 9)
        not_ready = None
        for _ in range(100):  # the survivor answers; readiness waits for the replacement
            answer = ready()
            if answer is not None and answer.status_code == 503:
                not_ready = answer.json()
                break
            time.sleep(0.05)
        assert not_ready is not None and not_ready["checks"]["workers"] == "1/2 ready"
        answered = httpx.post(f"{base}/v1/recommendations", json={"user_id": "u001"}, timeout=30)
        assert answered.status_code == 200
        wait_ready()
        now = _workers(proc.pid)
        assert len(now) == 2 and victim not in now
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    lines = (tmp_path / "serve.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("died" in r["message"] for r in records)


def test_slow_request_headers_get_a_408_and_the_connection_closed(tmp_path: Path) -> None:
    """A client sending its headers a byte at a time no longer holds a connection forever."""
    for base in _serve(tmp_path, env={"AGENTREC_HEADER_TIMEOUT_S": "1"}):
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
        assert received.startswith(b"HTTP/1.1 408")
        assert json.loads(received.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
