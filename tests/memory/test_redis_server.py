from __future__ import annotations

from pathlib import Path

import redis

from memory.redis_server import EmbeddedRedis


def test_embedded_server_persists_across_restarts(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r")
    with server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
    assert not server.running
    with EmbeddedRedis(tmp_path / "r", port=server.port) as again:
        client = redis.Redis.from_url(again.url)
        assert client.get("k") == b"v"
        client.close()


def test_binds_loopback_only(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url)
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    client.close()
