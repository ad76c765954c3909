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
import redis.asyncio

from agents.memory import SHORT_TERM
from app.runs import follow_stored
from app.service import RunRequest, Service, _TraceWriter
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from memory.short_term import AsyncTraceReader, ShortTermMemory
from memory.short_term.base import decoded
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


# -- what a run leaves in Redis, and for how long ----------------------------------------


def _run_keys(service: Service, run_id: str) -> dict[str, tuple[int, int]]:
    """(MEMORY USAGE, TTL) of every key of the run."""
    client = service.short_term.client
    memory = service.short_term
    keys = [memory.trace_key(run_id), memory.run_state_key(run_id), memory.run_summary_key(run_id)]
    return {
        key: (int(client.memory_usage(key) or 0), int(client.ttl(key)))
        for key in keys
        if client.exists(key)
    }


def test_a_json_run_keeps_only_its_summary_for_the_finished_ttl(service: Service) -> None:
    result = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=10))
    stored = service.short_term.replay(result.run_id)
    assert [e["type"] for e in stored] == ["run_started", "run_finished"]
    finished = stored[-1]
    assert finished["trace"] == "summary" and finished["seq"] == result.events[-1]["seq"]
    assert finished["recommendation_id"] == result.recommendation_id
    answer = result.output["recommendations"]
    assert [r["item_id"] for r in finished["output"]["recommendations"]] == [
        r["item_id"] for r in answer
    ]
    assert [r["rank"] for r in finished["output"]["recommendations"]] == list(
        range(1, len(answer) + 1)
    )
    keys = _run_keys(service, result.run_id)
    assert list(keys) == [service.short_term.run_summary_key(result.run_id)]
    assert sum(size for size, _ in keys.values()) < 2000  # the full trace took ~16 KB
    finished_ttl = service.settings.finished_trace_ttl_s
    assert all(0 < ttl <= finished_ttl for _, ttl in keys.values()), keys
    user_runs = service.short_term.client.zrange(
        service.short_term.user_runs_key(DEMO_USER_ID), 0, -1
    )
    # forgetting the user still finds the run
    assert result.run_id in [decoded(r) for r in user_runs]


def test_json_trace_full_and_none(service: Service) -> None:
    settings = service.settings
    try:
        settings.json_trace = "full"
        full = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=5))
        settings.json_trace = "none"
        none = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=5))
    finally:
        settings.json_trace = "summary"
    assert service.short_term.replay(full.run_id) == full.events
    assert service.short_term.replay(none.run_id) == []
    assert _run_keys(service, none.run_id) == {}
    assert none.output["recommendations"] and SHORT_TERM not in none.output["degraded"]


def test_a_streamed_run_stays_replayable_for_the_finished_ttl_only(service: Service) -> None:
    seen_ttls: list[int] = []

    async def streamed() -> list[dict[str, Any]]:
        events = []
        async for event in service.stream_run(RunRequest(user_id=DEMO_USER_ID)):
            events.append(event)
            if event["type"] == "recommendations":  # still running: the in-flight TTL
                await asyncio.sleep(0.2)  # let the periodic flush write the trace
                seen_ttls.append(
                    int(
                        service.short_term.client.ttl(service.short_term.trace_key(event["run_id"]))
                    )
                )
        return events

    events = asyncio.run(streamed())
    run_id = events[0]["run_id"]
    assert service.short_term.replay(run_id) == events
    finished_ttl = service.settings.finished_trace_ttl_s
    assert finished_ttl < seen_ttls[0] <= service.settings.trace_ttl_s
    keys = _run_keys(service, run_id)
    assert len(keys) == 2 and all(0 < ttl <= finished_ttl for _, ttl in keys.values()), keys


def test_the_embedded_redis_evicts_what_expires_first_under_its_maxmemory(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis(tmp_path / "redis", maxmemory="64mb") as server:
        client = redis.Redis.from_url(server.url)
        config = client.config_get("maxmemory*")
        client.close()
    assert config["maxmemory"] == str(64 * 1024 * 1024)
    assert config["maxmemory-policy"] == "volatile-ttl"


def test_a_json_runs_summary_replays_ends_and_is_forgotten(service: Service) -> None:
    user = "trace-summary-user"
    result = service.run_blocking(RunRequest(user_id=user, count=3))
    run_id = result.run_id

    async def follow(after: int) -> list[dict[str, Any]]:
        client = redis.asyncio.Redis.from_url(service.redis.url)
        reader = AsyncTraceReader(client, prefix=service.short_term.prefix)
        try:
            return [e async for e in follow_stored(reader, run_id, after, poll_ms=50)]
        finally:
            await client.aclose()

    followed = asyncio.run(follow(0))
    assert [e["type"] for e in followed] == ["run_started", "run_finished"]
    assert asyncio.run(follow(1)) == followed[1:]
    assert asyncio.run(follow(followed[-1]["seq"])) == []  # finished: not declared lost
    assert service.short_term.run_finished(run_id)
    assert service.short_term.request_cancel(run_id) == "finished"
    assert service.short_term.replay(run_id) == followed
    service.forget_user(user)
    assert service.short_term.replay(run_id) == []
    assert service.short_term.request_cancel(run_id) == "unknown"


def test_a_json_run_collects_the_same_agent_events_as_a_streamed_one(service: Service) -> None:
    """JSON runs take the agents' events from a trace sink in the run's config (steps run
    inline), streamed runs from LangGraph's custom stream: the same events either way."""

    async def streamed() -> list[dict[str, Any]]:
        request = RunRequest(user_id=DEMO_USER_ID, count=4)
        return [e async for e in service.stream_run(request)]

    blocking = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=4)).events
    live = asyncio.run(streamed())

    def by_agent(events: list[dict[str, Any]]) -> dict[object, list[object]]:
        # agents of one step (the User Analyst and the Searcher) run side by side in a
        # streamed run, so their events interleave in any order; each agent's own are ordered
        shape: dict[object, list[object]] = {}
        for event in events:
            shape.setdefault(event.get("agent"), []).append(event["type"])
        return shape

    assert len(blocking) > 10 and by_agent(blocking) == by_agent(live)
    for events in (blocking, live):
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert (events[0]["type"], events[-1]["type"]) == ("run_started", "run_finished")
    assert blocking[-1]["output"]["recommendations"] == live[-1]["output"]["recommendations"]


def test_a_json_run_runs_its_parallel_step_without_starting_a_thread(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recommend run's first step has two agents (the User Analyst and the Searcher):
    a JSON run runs both in the calling thread (`graphs.inline`), a pool thread per run
    cost more CPU than the agents' own work."""
    started: list[str] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    result = service.run_blocking(RunRequest(user_id=DEMO_USER_ID, count=4))
    agents = {e.get("agent") for e in result.events}
    assert {"UserAnalyst", "Searcher"} <= agents
    assert started == [], started
    assert len(result.output["recommendations"]) == 4
