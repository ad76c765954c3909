"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from memory.redis_server import EmbeddedRedis

REPO_ROOT = Path(__file__).resolve().parents[1]
ML100K = REPO_ROOT.parent / "shared" / "data" / "ml-100k"


@pytest.fixture(scope="session")
def ml100k_path() -> Path:
    """The MovieLens 100K folder beside the repository; tests needing it skip without it."""
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {ML100K}")
    return ML100K


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real redis-server (the embedded binary; never a mock), shared by the session."""
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")))
    with server:
        yield server


@pytest.fixture()
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()
