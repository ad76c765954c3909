"""`REDIS_URL=redis+sentinel://...` through redis-py's Sentinel clients, on real processes: a
master, a replica and a Sentinel (redis-server in sentinel mode). The service answers on
the master Sentinel names, and again on the promoted replica after the master is killed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from app.service import EventIn, RunRequest, Service
from core.errors import ConfigError
from core.settings import Settings
from memory.redis_server import EmbeddedRedis, free_port, redis_server_binary, stop_process
from memory.redis_url import parse_sentinel_url, sync_client
from recdata.demo import DEMO_USER_ID

SERVICE = "agentrec-master"


def test_sentinel_urls_are_parsed() -> None:
    parts = parse_sentinel_url("redis+sentinel://:s3cret@h1:26379,h2:26380/mymaster/2")
    assert parts.sentinels == [("h1", 26379), ("h2", 26380)]
    assert (parts.service, parts.db, parts.password, parts.username) == (
        "mymaster",
        2,
        "s3cret",
        None,
    )
    assert parse_sentinel_url("redis+sentinel://h:1/m").db == 0
    for bad in ("redis+sentinel://h:1", "redis+sentinel://h/m", "redis+sentinel://h:1/m/x"):
        with pytest.raises(ConfigError):
            parse_sentinel_url(bad)


def _master_info(sentinel: redis.Redis) -> dict[str, Any]:
    return cast(dict[str, Any], sentinel.sentinel_master(SERVICE))


def _wait(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = check()
            if result:
                return result
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture()
def sentinel_set(tmp_path: Path) -> Iterator[dict[str, Any]]:
    master = EmbeddedRedis(tmp_path / "master").start()
    replica = EmbeddedRedis(tmp_path / "replica").start()
    port = free_port()
    sentinel_process = None
    try:
        replica_client = redis.Redis(port=replica.port)
        replica_client.replicaof("127.0.0.1", master.port)
        _wait(lambda: replica_client.info("replication")["master_link_status"] == "up", 20, "sync")
        replica_client.close()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        sentinel_process = subprocess.Popen(
            [redis_server_binary(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sentinel = redis.Redis(port=port, decode_responses=True)
        _wait(lambda: _master_info(sentinel)["num-slaves"] >= 1, 20, "the replica")
        sentinel.close()
        yield {
            "url": f"redis+sentinel://127.0.0.1:{port}/{SERVICE}/0",
            "master": master,
            "replica": replica,
        }
    finally:
        stop_process(sentinel_process, 10.0)
        replica.stop()
        master.stop()


def test_the_service_follows_the_master_sentinel_names(
    sentinel_set: dict[str, Any], tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    settings.redis_url = sentinel_set["url"]
    with Service(settings) as service:
        first = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=5))
        assert first.output["degraded"] == []
        session_id, _ = service.create_session(DEMO_USER_ID)
        item = first.output["recommendations"][0]["item_id"]
        outcome = service.record_events([EventIn("s-1", "dislike", item, user_id=DEMO_USER_ID)])
        assert outcome[0].status == "stored"
        master = redis.Redis(port=sentinel_set["master"].port)
        assert master.exists(service.short_term.session_key(session_id))
        master.close()

        stop_process(sentinel_set["master"]._process, 5.0)  # the master goes away
        sentinel_set["master"]._process = None
        direct = sync_client(sentinel_set["url"], socket_timeout=1)
        pool = cast(SentinelConnectionPool, direct.connection_pool)
        replica_port = sentinel_set["replica"].port
        assert _wait(lambda: pool.get_master_address()[1] == replica_port, 60, "the failover")
        direct.close()

        def answers() -> bool:
            result = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=5))
            return result.output["degraded"] == []

        _wait(answers, 30, "an undegraded answer on the new master")
        again = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=5))
        assert item not in [r["item_id"] for r in again.output["recommendations"]]
        assert service.session_turns(session_id) == []  # the session moved with the data
