"""A run's Redis trace holds every event that was streamed, in order, exactly once: on a real
redis-server, with a write held in flight while the run ends, and with many runs at once.

Regression tests for streamed traces that lost a contiguous block of events: the run ended
while its periodic flush was still writing in a worker thread, the final flush overtook
that write, and the store (which keeps only seqs above its last one) dropped the earlier
batch when it landed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from app.service import RunRequest, Service, _TraceWriter
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from memory.short_term import ShortTermMemory
from recdata.demo import DEMO_USER_ID


class _HeldFirstWrite(ShortTermMemory):
    """Real Redis; the first `append_events` waits until the test lets it through."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.release = threading.Event()
        self.first_started = threading.Event()
        self.first_done = threading.Event()
        self._calls = 0

    def append_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        self._calls += 1
        if self._calls > 1:
            return super().append_events(run_id, events)
        self.first_started.set()
        self.release.wait(10)
        try:
            return super().append_events(run_id, events)
        finally:
            self.first_done.set()


def _event(seq: int) -> dict[str, Any]:
    return {"type": "thought", "seq": seq, "run_id": "r1", "text": f"step {seq}"}


def test_a_write_in_flight_when_the_run_ends_is_not_overtaken(
    redis_client: redis.Redis,
) -> None:
    store = _HeldFirstWrite(redis_client)
    writer = _TraceWriter(store, "r1", subject=None, interval_s=0.01)

    async def scenario() -> None:
        for seq in (1, 2, 3):
            writer.add(_event(seq))
        autoflush = asyncio.create_task(writer.autoflush())
        await asyncio.to_thread(store.first_started.wait, 10)  # events 1-3 are being written
        for seq in (4, 5, 6):
            writer.add(_event(seq))
        autoflush.cancel()  # the run ends, as stream_run ends it
        final = asyncio.create_task(writer.flush(finish=True))
        await asyncio.sleep(0.2)
        store.release.set()
        await final
        await asyncio.to_thread(store.first_done.wait, 10)

    asyncio.run(scenario())
    assert [e["seq"] for e in store.replay("r1")] == [1, 2, 3, 4, 5, 6]
    assert store.run_finished("r1")
    assert not writer.failed


def test_a_failed_write_is_retried_before_later_events(redis_client: redis.Redis) -> None:
    store = ShortTermMemory(redis_client)
    writer = _TraceWriter(store, "r2", subject="u1")
    writer.add(_event(1) | {"run_id": "r2"})
    calls = {"n": 0}
    append = store.append_events

    def failing_once(run_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            from memory.connection import MemoryUnavailable

            raise MemoryUnavailable(store.server, ConnectionError("down"))
        return append(run_id, events)

    store.append_events = failing_once  # type: ignore[method-assign]
    asyncio.run(writer.flush())
    assert writer.failed and writer.has_pending
    writer.add(_event(2) | {"run_id": "r2"})
    asyncio.run(writer.flush(finish=True))
    assert [e["seq"] for e in store.replay("r2")] == [1, 2]
    assert redis_client.zscore(store.user_runs_key("u1"), "r2") is not None


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis
) -> Iterator[Service]:
    data_dir: Path = tmp_path_factory.mktemp("trace-writer")
    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    settings.redis_url = redis_server.url
    with Service(settings) as svc:
        yield svc


def test_many_concurrent_streamed_runs_store_exactly_what_they_streamed(
    service: Service,
) -> None:
    runs, parallel = 96, 24

    async def one(n: int) -> list[dict[str, Any]]:
        request = RunRequest(user_id=DEMO_USER_ID if n % 2 else None, count=5 + n % 5)
        return [event async for event in service.stream_run(request)]

    async def all_runs() -> list[list[dict[str, Any]]]:
        streamed: list[list[dict[str, Any]]] = []
        for start in range(0, runs, parallel):
            batch = range(start, min(start + parallel, runs))
            streamed += await asyncio.gather(*(one(n) for n in batch))
        return streamed

    for events in asyncio.run(all_runs()):
        run_id = events[0]["run_id"]
        assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "success"
        stored = service.short_term.replay(run_id)
        assert [e["seq"] for e in stored] == [e["seq"] for e in events], run_id
        assert stored == events
