"""A real `agentrec serve` process for end-to-end API tests, and an SSE frame parser.

`LiveServer` starts the service as a child process on a free loopback port with its own data
directory (embedded Redis and Chroma live there unless `REDIS_URL` is given), waits until
`GET /readyz` answers 200 and stops it with SIGTERM, then SIGKILL. The server runs in the data
directory (so a developer's `.env` is not read) with every `AGENTREC_*`, `REDIS_URL` and
`CHROMA_*` variable of the test process removed: only what a test passes in `env` applies.

`read_sse(response)` parses a streamed response into `SseFrame`s by the SSE framing rules
(`event:`, `id:`, `data:` lines, `:` comments, a blank line ends a frame), independently of
the server's own code.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_SCRUBBED_PREFIXES = ("AGENTREC_", "CHROMA_")
_SCRUBBED_NAMES = ("REDIS_URL",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(port: int) -> list[str]:
    """`agentrec serve` from the virtual environment (its entry point, else `-m app.cli`)."""
    entry_point = Path(sys.executable).with_name("agentrec")
    base = [str(entry_point)] if entry_point.is_file() else [sys.executable, "-m", "app.cli"]
    return [*base, "serve", "--host", "127.0.0.1", "--port", str(port)]


class LiveServer:
    """`agentrec serve` as a child process. `env` adds settings (REDIS_URL, AGENTREC_API_KEYS,
    AGENTREC_RATE_LIMIT_PER_MINUTE...); `start` may be called again after `stop` (a restart
    on a new port, same data directory and settings)."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.extra_env = dict(env or {})
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"server-{self.starts}.log"

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES
        }
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        env["AGENTREC_DATA_DIR"] = str(self.data_dir)
        env["AGENTREC_API_KEYS"] = ""
        env.update(self.extra_env)
        return env

    def launch(self) -> LiveServer:
        """Start the process without waiting for it (see `wait_ready`)."""
        if self.process is not None:
            raise RuntimeError("the server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                serve_command(self.port),
                cwd=self.data_dir,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> LiveServer:
        """Wait until `GET /readyz` answers 200; RuntimeError with the log's tail if not."""
        process = self.process
        if process is None:
            raise RuntimeError("the server is not started")
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"agentrec serve exited with {process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"/readyz not 200 within {timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def start(self) -> LiveServer:
        return self.launch().wait_ready()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> LiveServer:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.base_url, **kwargs)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_all(servers: Iterable[LiveServer]) -> None:
    """Start several servers at once (their start-ups overlap), then wait for each."""
    launched = [server.launch() for server in servers]
    try:
        for server in launched:
            server.wait_ready()
    except BaseException:
        for server in launched:
            server.stop()
        raise


# -- Server-Sent Events ------------------------------------------------------------------
@dataclass
class SseFrame:
    """One SSE frame: what the lines up to a blank line said. A frame of comments only
    (a heartbeat) has `data` None."""

    event: str | None = None
    id: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def is_event(self) -> bool:
        return self.data is not None

    def json(self) -> dict[str, Any]:
        if self.data is None:
            raise ValueError("a comment-only frame has no data")
        value = json.loads(self.data)
        if not isinstance(value, dict):
            raise ValueError(f"data is not a JSON object: {self.data[:80]!r}")
        return value


def parse_sse_lines(lines: Iterable[str]) -> Iterator[SseFrame]:
    """SSE frames from the lines of a stream (line terminators already removed)."""
    frame = SseFrame()
    data_lines: list[str] = []
    touched = False
    for line in lines:
        if line == "":
            if touched:
                if data_lines:
                    frame.data = "\n".join(data_lines)
                yield frame
            frame, data_lines, touched = SseFrame(), [], False
            continue
        touched = True
        if line.startswith(":"):
            frame.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            frame.event = value
        elif name == "id":
            frame.id = value
        elif name == "data":
            data_lines.append(value)
        # retry: and unknown fields are ignored, as the SSE rules say
    if touched and data_lines:
        frame.data = "\n".join(data_lines)
        yield frame


def read_sse(response: httpx.Response) -> Iterator[SseFrame]:
    """The frames of a streamed httpx response, as they arrive."""
    return parse_sse_lines(response.iter_lines())


def events_of(frames: Iterable[SseFrame]) -> list[dict[str, Any]]:
    """The JSON data of the frames that carry one (heartbeats skipped)."""
    return [frame.json() for frame in frames if frame.is_event]
