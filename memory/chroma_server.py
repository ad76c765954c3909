"""A Chroma server (`chroma run`, from the chromadb package) started by the service itself,
for `agentrec serve --workers N` on the embedded defaults: several worker processes must not
open one embedded Chroma directory each, so they share this server instead.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from core.errors import ConfigError
from memory.redis_server import free_port, stop_process


def chroma_cli() -> str:
    """The `chroma` command installed with chromadb (beside this Python, or on PATH)."""
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        raise ConfigError("no `chroma` command: install the 'chromadb' package")
    return found


class EmbeddedChromaServer:
    """`chroma run` on 127.0.0.1 over `path`, as a child process."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = Path(path)
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ConfigError("the Chroma server is not running")
        return self._process.pid

    def start(self, timeout_s: float = 60.0) -> EmbeddedChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        command = [chroma_cli(), "run", "--path", str(self.path), "--host", "127.0.0.1"]
        self._process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConfigError(f"chroma run exited with status {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ConfigError(f"chroma run did not listen on port {self.port} within {timeout_s} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout_s)

    def __enter__(self) -> EmbeddedChromaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
