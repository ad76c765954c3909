from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import redis

from core.settings import Settings
from memory.connection import (
    MemoryStoreError,
    MemoryUnavailable,
    RedisProvider,
    redact_url,
    redis_errors_as_unavailable,
)
from memory.redis_server import EmbeddedRedis


def settings_for(tmp_path: Path, url: str | None) -> Settings:
    return Settings(data_dir=tmp_path, redis_url=url)


def test_external_url_is_used_and_left_running(tmp_path: Path, redis_server: EmbeddedRedis) -> None:
    with RedisProvider(settings_for(tmp_path, redis_server.url)) as provider:
        assert provider.embedded is None
        assert provider.url == redis_server.url
        provider.client().set("provider:k", "v")
        assert provider.client().get("provider:k") == "v"
        assert provider.client(decode_responses=False).get("provider:k") == b"v"
        assert provider.available()
    assert redis_server.running
    assert not (tmp_path / "redis").exists()


def test_without_url_an_embedded_server_lives_in_the_data_dir(tmp_path: Path) -> None:
    provider = RedisProvider(settings_for(tmp_path, None))
    with pytest.raises(MemoryStoreError, match="REDIS_URL"):
        _ = provider.url
    with provider:
        server = provider.embedded
        assert server is not None and server.running
        assert provider.client().config_get("dir")["dir"] == str(tmp_path / "redis")
        provider.client().set("k", "kept")
    assert not server.running
    assert provider.embedded is None
    # a new provider on the same data dir finds the data again (append-only file)
    with RedisProvider(settings_for(tmp_path, None)) as again:
        assert again.client().get("k") == "kept"


def test_clients_are_shared_and_tuned_to_fail_fast(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    with RedisProvider(settings_for(tmp_path, redis_server.url), socket_timeout_s=1.5) as p:
        client = p.client()
        assert p.client() is client
        assert p.client(decode_responses=False) is not client
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 1.5
        assert kwargs["socket_connect_timeout"] == p.connect_timeout_s
        assert kwargs["health_check_interval"] > 0


def test_async_client_per_event_loop(tmp_path: Path, redis_server: EmbeddedRedis) -> None:
    provider = RedisProvider(settings_for(tmp_path, redis_server.url))

    async def roundtrip(value: str) -> tuple[object, object]:
        client = provider.async_client()
        assert provider.async_client() is client
        await client.set("async:k", value)
        read = await client.get("async:k")
        await provider.aclose_async_clients()
        return client, read

    first_client, first = asyncio.run(roundtrip("one"))
    second_client, second = asyncio.run(roundtrip("two"))
    assert (first, second) == ("one", "two")
    assert first_client is not second_client
    provider.close()


def test_available_is_cached_and_follows_the_server(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r").start()
    try:
        cached = RedisProvider(settings_for(tmp_path, server.url), availability_ttl_s=3600)
        fresh = RedisProvider(settings_for(tmp_path, server.url), availability_ttl_s=0)
        client = fresh.client()
        client.set("k", "before")
        assert cached.available() and fresh.available()
        server.stop()
        assert cached.available()  # within its cache window
        assert not fresh.available()
        with pytest.raises(redis.ConnectionError):
            client.get("k")
        server = EmbeddedRedis(tmp_path / "r", port=server.port).start()
        assert fresh.available()
        assert client.get("k") == "before"  # the same client reconnects by itself
        cached.close()
        fresh.close()
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_a_frozen_server_times_out_instead_of_hanging(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r").start()
    provider = RedisProvider(
        settings_for(tmp_path, server.url), socket_timeout_s=0.3, availability_ttl_s=0
    )
    client = provider.client()
    pid = int(client.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        assert not provider.available()
        with (
            pytest.raises(MemoryUnavailable, match="unavailable"),
            redis_errors_as_unavailable(provider.url),
        ):
            client.get("k")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert provider.available()
    assert client.ping()
    provider.close()
    server.stop()


def test_redact_url_hides_the_password() -> None:
    assert redact_url("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("redis://:secret@host:6379") == "redis://***@host:6379"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
