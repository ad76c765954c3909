"""Real servers the tests start as child processes (never mocks)."""

from __future__ import annotations

import sys
from pathlib import Path

from memory.chroma_server import EmbeddedChromaServer as ChromaServer
from memory.redis_server import free_port

CHROMA_CLI = Path(sys.executable).with_name("chroma")

__all__ = ["CHROMA_CLI", "ChromaServer", "free_port"]
