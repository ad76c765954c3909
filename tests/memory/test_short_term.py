from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from core.settings import Settings
from memory.connection import RedisProvider
from memory.redis_server import EmbeddedRedis
from memory.short_term import (
    AsyncTraceReader,
    FeedbackRecord,
    MemoryUnavailable,
    RunFinished,
    SessionNotFound,
    ShortTermMemory,
    Turn,
)

SESSION_TTL = 600
TRACE_TTL = 300


@pytest.fixture(params=[False, True], ids=["bytes", "str"])
def client(request: pytest.FixtureRequest, redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=request.param)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture()
def memory(client: redis.Redis) -> ShortTermMemory:
    return ShortTermMemory(
        client,
        prefix="test",
        session_ttl_s=SESSION_TTL,
        trace_ttl_s=TRACE_TTL,
        finished_trace_ttl_s=TRACE_TTL // 5,
    )


def keys_of(client: redis.Redis) -> set[str]:
    return {k.decode() if isinstance(k, bytes) else k for k in client.scan_iter("*")}


# -- sessions ---------------------------------------------------------------------------
def test_session_turns_round_trip(memory: ShortTermMemory) -> None:
    session = memory.create_session("alice")
    assert memory.session_exists(session)
    assert memory.session_owner(session) == "alice"
    assert memory.turns(session) == []
    assert memory.append_turn(session, "user", "something funny", {"lang": "en"}) == 1
    assert memory.append_turn(session, "assistant", "Try Airplane! (1980)") == 2
    assert memory.append_turn(session, "user", "more like that, ça va") == 3
    turns = memory.turns(session)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "something funny"),
        ("assistant", "Try Airplane! (1980)"),
        ("user", "more like that, ça va"),
    ]
    assert turns[0].meta == {"lang": "en"} and turns[1].meta == {}
    assert turns[0].ts <= turns[1].ts <= turns[2].ts
    assert memory.turns(session, limit=2) == turns[1:]
    assert all(isinstance(t, Turn) for t in turns)
    assert memory.sessions_of("alice") == [session]


def test_unknown_sessions_raise_session_not_found(memory: ShortTermMemory) -> None:
    assert not memory.session_exists("nope")
    for call in (
        lambda: memory.append_turn("nope", "user", "hi"),
        lambda: memory.turns("nope"),
        lambda: memory.session_owner("nope"),
    ):
        with pytest.raises(SessionNotFound, match="nope"):
            call()
    # a failed append must not leave a turns list behind
    assert not memory.client.exists(memory.turns_key("nope"))


def test_session_ttls_are_set_and_refreshed_on_write(
    memory: ShortTermMemory, client: redis.Redis
) -> None:
    session = memory.create_session("alice")
    meta, index = memory.session_key(session), memory.user_sessions_key("alice")
    assert 0 < client.ttl(meta) <= SESSION_TTL
    assert 0 < client.ttl(index) <= SESSION_TTL
    memory.append_turn(session, "user", "hi")
    turns = memory.turns_key(session)
    assert 0 < client.ttl(turns) <= SESSION_TTL
    for key in (meta, turns, index):
        client.expire(key, 5)
    memory.append_turn(session, "assistant", "hello")
    for key in (meta, turns, index):
        assert 5 < client.ttl(key) <= SESSION_TTL
    score = client.zscore(index, session)
    assert score is not None and score > 0


def test_turns_are_capped_to_the_latest(client: redis.Redis) -> None:
    memory = ShortTermMemory(client, prefix="test", max_turns=3)
    session = memory.create_session("bob")
    counts = [memory.append_turn(session, "user", f"turn {i}") for i in range(5)]
    assert counts == [1, 2, 3, 3, 3]
    assert [t.text for t in memory.turns(session)] == ["turn 2", "turn 3", "turn 4"]


def test_expired_sessions_leave_the_user_index(
    memory: ShortTermMemory, client: redis.Redis
) -> None:
    old = memory.create_session("carol")
    client.zadd(memory.user_sessions_key("carol"), {old: 1.0})  # as if it expired long ago
    client.delete(memory.session_key(old))
    new = memory.create_session("carol")
    assert client.zrange(memory.user_sessions_key("carol"), 0, -1) in ([new], [new.encode()])
    assert memory.sessions_of("carol") == [new]


# -- blackboard -------------------------------------------------------------------------
def test_blackboard(memory: ShortTermMemory, client: redis.Redis) -> None:
    assert memory.get_blackboard("run1") == {}
    memory.put_blackboard("run1", "candidates", json.dumps([3, 1, 2]))
    memory.put_blackboard("run1", "profile", json.dumps({"genre": {"Comedy": 0.5}}))
    memory.put_blackboard("run1", "candidates", json.dumps([1]))
    memory.put_blackboard("run2", "candidates", json.dumps([9]))
    board = memory.get_blackboard("run1")
    assert {k: json.loads(v) for k, v in board.items()} == {
        "candidates": [1],
        "profile": {"genre": {"Comedy": 0.5}},
    }
    assert 0 < client.ttl(memory.blackboard_key("run1")) <= TRACE_TTL
    with pytest.raises(ValueError):
        memory.put_blackboard("run1", "broken", "{not json")


# -- trace ------------------------------------------------------------------------------
def test_events_get_increasing_seq_and_replay_after_a_seq(
    memory: ShortTermMemory, client: redis.Redis
) -> None:
    ids = [memory.append_event("r", {"type": "thought", "text": f"step {i}"}) for i in range(7)]
    assert len(set(ids)) == 7
    events = memory.replay("r")
    assert [e["seq"] for e in events] == list(range(1, 8))
    assert [e["text"] for e in events] == [f"step {i}" for i in range(7)]
    assert all(e["run_id"] == "r" and e["type"] == "thought" for e in events)
    assert all(isinstance(e["ts"], float) for e in events)
    for after in range(8):
        assert memory.replay("r", after_seq=after) == events[after:]
    assert memory.replay("other") == []
    assert 0 < client.ttl(memory.trace_key("r")) <= TRACE_TTL


def test_event_fields_seq_and_run_id_are_the_stores(memory: ShortTermMemory) -> None:
    memory.append_event("r", {"type": "action", "seq": 99, "run_id": "x", "ts": 1.5})
    (event,) = memory.replay("r")
    assert (event["seq"], event["run_id"], event["ts"]) == (1, "r", 1.5)
    with pytest.raises(ValueError, match="type"):
        memory.append_event("r", {"text": "no type"})


def test_trace_is_capped_and_seq_keeps_increasing(client: redis.Redis) -> None:
    memory = ShortTermMemory(client, prefix="test", max_events=20)
    for i in range(500):
        memory.append_event("long", {"type": "token", "i": i})
    assert 20 <= client.xlen(memory.trace_key("long")) < 500
    events = memory.replay("long")
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(501 - len(events), 501))
    assert [e["i"] for e in events] == [s - 1 for s in seqs]


def test_read_new_returns_later_events_and_waits_for_them(memory: ShortTermMemory) -> None:
    memory.append_event("live", {"type": "run_started"})
    assert [e["seq"] for e in memory.read_new("live", after_seq=0)] == [1]
    assert memory.read_new("live", after_seq=1) == []
    assert memory.read_new("live", after_seq=1, block_ms=50) == []

    def later() -> None:
        threading.Event().wait(0.2)
        memory.append_event("live", {"type": "agent_started", "agent": "Manager"})

    writer = threading.Thread(target=later)
    writer.start()
    new: list[dict[str, Any]] = []
    while not new:  # each read waits; the writer shows up within a few reads at most
        new = memory.read_new("live", after_seq=1, block_ms=1000)
    writer.join()
    assert [(e["seq"], e["type"]) for e in new] == [(2, "agent_started")]


def test_blocking_reads_stay_below_the_socket_timeout(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.5)
    memory = ShortTermMemory(client, prefix="test")
    assert memory.max_block_ms < 500
    # would raise a TimeoutError (MemoryUnavailable) if the block were not capped
    assert memory.read_new("quiet", after_seq=0, block_ms=10_000) == []
    client.close()


def test_finished_runs_take_no_more_events(memory: ShortTermMemory, client: redis.Redis) -> None:
    memory.append_event("r", {"type": "run_started"})
    memory.append_event("r", {"type": "run_finished"})
    assert not memory.run_finished("r")
    assert client.ttl(memory.trace_key("r")) > memory.finished_trace_ttl_s  # was in flight
    memory.finish_run("r")
    assert memory.run_finished("r")
    for key in (memory.run_state_key("r"), memory.trace_key("r")):
        assert 0 < client.ttl(key) <= memory.finished_trace_ttl_s
    with pytest.raises(RunFinished):
        memory.append_event("r", {"type": "thought"})
    assert [e["type"] for e in memory.replay("r")] == ["run_started", "run_finished"]


def test_concurrent_appends_keep_unique_increasing_seq(memory: ShortTermMemory) -> None:
    writers, per_writer = 8, 40
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        start.wait()
        for i in range(per_writer):
            memory.append_event("busy", {"type": "token", "writer": writer, "i": i})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = memory.replay("busy")
    assert [e["seq"] for e in events] == list(range(1, writers * per_writer + 1))
    for writer in range(writers):
        assert [e["i"] for e in events if e["writer"] == writer] == list(range(per_writer))


# -- cache ------------------------------------------------------------------------------
def test_response_cache(memory: ShortTermMemory, client: redis.Redis) -> None:
    assert memory.cache_get("recommend:alice:10") is None
    memory.cache_set("recommend:alice:10", '{"items": [1, 2]}', ttl_s=60)
    assert memory.cache_get("recommend:alice:10") == '{"items": [1, 2]}'
    assert 0 < client.ttl(memory.cache_key("recommend:alice:10")) <= 60
    with pytest.raises(ValueError):
        memory.cache_set("k", "v", ttl_s=0)


# -- profiles ---------------------------------------------------------------------------
def test_profile_updates_add_up_with_eta_and_clip(memory: ShortTermMemory) -> None:
    assert memory.get_profile("alice") == {}
    memory.update_profile("alice", {"genre": {"Comedy": 0.4, "Drama": -0.2}}, eta=0.5)
    memory.update_profile("alice", {"genre": {"Comedy": 0.4}, "decade": {"1980s": 1.0}}, eta=0.5)
    # hand computed: Comedy 0.5*0.4 + 0.5*0.4, Drama 0.5*-0.2, 1980s 0.5*1.0
    assert memory.get_profile("alice") == {
        "genre": {"Comedy": pytest.approx(0.4), "Drama": pytest.approx(-0.1)},
        "decade": {"1980s": pytest.approx(0.5)},
    }
    returned = memory.update_profile("alice", {"genre": {"Comedy": 3.0, "Drama": -5.0}}, eta=1)
    assert returned == {"genre": {"Comedy": 1.0, "Drama": -1.0}}
    assert memory.get_profile("alice")["genre"] == {"Comedy": 1.0, "Drama": -1.0}
    assert memory.get_profile("alice")["decade"] == {"1980s": pytest.approx(0.5)}
    assert memory.update_profile("alice", {}, eta=0.1) == {}
    with pytest.raises(ValueError):
        memory.update_profile("alice", {"genre": {"Comedy": float("nan")}}, eta=0.1)


def test_profile_names_with_separators_survive(memory: ShortTermMemory) -> None:
    memory.update_profile("u", {"tag:x": {'a "quoted": name': 0.25, "Sci-Fi": 0.5}}, eta=1.0)
    assert memory.get_profile("u") == {"tag:x": {'a "quoted": name': 0.25, "Sci-Fi": 0.5}}


def test_concurrent_profile_updates_all_count(memory: ShortTermMemory) -> None:
    threads = [
        threading.Thread(
            target=lambda: [
                memory.update_profile("dave", {"genre": {"Horror": 0.1}}, eta=0.1)
                for _ in range(10)
            ]
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 60 updates of 0.1 * 0.1 each, below the clip
    assert memory.get_profile("dave") == {"genre": {"Horror": pytest.approx(60 * 0.01)}}


# -- forget -----------------------------------------------------------------------------
def test_forget_user_removes_only_that_users_data(
    memory: ShortTermMemory, client: redis.Redis
) -> None:
    alice = [memory.create_session("alice") for _ in range(3)]
    bob = memory.create_session("bob")
    for session in [*alice, bob]:
        memory.append_turn(session, "user", f"hello from {session}")
    memory.update_profile("alice", {"genre": {"Comedy": 0.5}}, eta=1)
    memory.update_profile("bob", {"genre": {"Drama": 0.5}}, eta=1)
    memory.record_feedback("alice", [_like("a1", "i1", "Comedy"), _dislike("a2", "i2", "X")], 1)
    memory.record_feedback("bob", [_like("b1", "i1", "Comedy")], eta=1)
    memory.append_event("run-bob", {"type": "run_started"})
    memory.add_user_run("bob", "run-bob")
    memory.add_user_run("alice", "run-alice")
    memory.append_events("run-alice", [{"type": "run_started", "seq": 1}])
    memory.put_blackboard("run-alice", "pool", "[]")
    memory.finish_run("run-alice")
    bob_keys = {k for k in keys_of(client) if "bob" in k or bob in k}

    assert memory.forget_user("alice") == 3

    remaining = keys_of(client)
    assert not any("alice" in k or any(s in k for s in alice) for k in remaining)
    assert bob_keys <= remaining
    for session in alice:
        assert not memory.session_exists(session)
    assert memory.get_profile("alice") == {}
    assert memory.sessions_of("alice") == []
    assert [t.text for t in memory.turns(bob)] == [f"hello from {bob}"]
    assert memory.get_profile("bob") == {"genre": {"Drama": 0.5, "Comedy": 1.0}}
    assert memory.user_state("alice") == memory.user_state("nobody")
    assert memory.user_events("alice") == []
    assert len(memory.user_events("bob")) == 1
    assert memory.forget_user("alice") == 0
    with pytest.raises(SessionNotFound):
        memory.append_turn(alice[0], "user", "still there?")


# -- feedback ---------------------------------------------------------------------------
def _like(event_id: str, item: str, genre: str, ts: float = 1.0) -> FeedbackRecord:
    return FeedbackRecord(
        event_id=event_id,
        event={"event_id": event_id, "type": "like", "item_id": item},
        item_id=item,
        profile_delta={"genre": {genre: 1.0}},
        positive=True,
        exclude=False,
        ts=ts,
    )


def _dislike(event_id: str, item: str, genre: str) -> FeedbackRecord:
    return FeedbackRecord(
        event_id=event_id,
        event={"event_id": event_id, "type": "dislike", "item_id": item},
        item_id=item,
        profile_delta={"genre": {genre: -1.0}},
        exclude=True,
    )


def test_feedback_is_applied_once_per_event_id(memory: ShortTermMemory) -> None:
    first = memory.record_feedback(
        "alice", [_like("e1", "i1", "Horror", 10.0), _dislike("e2", "i2", "Comedy")], eta=0.25
    )
    again = memory.record_feedback(
        "alice", [_like("e1", "i1", "Horror"), _like("e3", "i3", "Horror", 20.0)], eta=0.25
    )
    assert first == [True, True]
    assert again == [False, True]
    state = memory.user_state("alice")
    assert state.profile == {"genre": {"Horror": 0.5, "Comedy": -0.25}}
    assert state.feedback == [("i1", 10.0), ("i3", 20.0)]
    assert state.excluded == {"i2"}
    assert [e["event_id"] for e in memory.user_events("alice")] == ["e1", "e2", "e3"]
    # the same ids in the same batch count once too
    assert memory.record_feedback("alice", [_like("e4", "i4", "X")] * 3, eta=1) == [
        True,
        False,
        False,
    ]


def test_a_later_like_lifts_an_exclusion(memory: ShortTermMemory) -> None:
    memory.record_feedback("bob", [_dislike("d", "i9", "Drama")], eta=1)
    assert memory.user_state("bob").excluded == {"i9"}
    memory.record_feedback("bob", [_like("l", "i9", "Drama")], eta=1)
    assert memory.user_state("bob").excluded == set()
    assert memory.user_state("bob").profile == {"genre": {"Drama": 0.0}}


def test_feedback_history_is_capped_to_the_newest(client: redis.Redis) -> None:
    memory = ShortTermMemory(client, prefix="cap", max_feedback=3)
    memory.record_feedback("u", [_like(f"e{n}", f"i{n}", "G", float(n)) for n in range(6)], eta=0.1)
    assert [item for item, _ in memory.user_state("u").feedback] == ["i3", "i4", "i5"]


def test_concurrent_batches_store_every_distinct_event_once(memory: ShortTermMemory) -> None:
    ids = [f"e{n}" for n in range(200)]

    def send(offset: int) -> None:
        for lo in range(0, 200, 20):
            batch = ids[(lo + offset) % 200 : (lo + offset) % 200 + 20]
            memory.record_feedback("carol", [_like(e, e, "G") for e in batch], eta=0.001)

    threads = [threading.Thread(target=send, args=(k * 40,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = memory.user_events("carol")
    assert sorted(e["event_id"] for e in events) == sorted(ids)
    assert memory.user_state("carol").profile["genre"]["G"] == pytest.approx(0.2)


def test_append_events_keeps_their_seqs_and_skips_a_retried_flush(
    memory: ShortTermMemory,
) -> None:
    first = [{"type": "run_started", "seq": 1}, {"type": "thought", "seq": 2}]
    assert memory.append_events("r", first) == 2
    retried = [*first, {"type": "action", "seq": 3}]
    assert memory.append_events("r", retried) == 3
    assert memory.append_events("r", []) == 3
    assert [(e["seq"], e["type"]) for e in memory.replay("r")] == [
        (1, "run_started"),
        (2, "thought"),
        (3, "action"),
    ]
    with pytest.raises(ValueError):
        memory.append_events("r", [{"type": "x", "seq": 5}, {"type": "y", "seq": 4}])
    memory.finish_run("r")
    with pytest.raises(RunFinished):
        memory.append_events("r", [{"type": "late", "seq": 4}])


# -- faults -----------------------------------------------------------------------------
OPERATIONS: dict[str, Callable[[ShortTermMemory, str], object]] = {
    "create_session": lambda m, s: m.create_session("alice"),
    "session_exists": lambda m, s: m.session_exists(s),
    "append_turn": lambda m, s: m.append_turn(s, "user", "hi"),
    "turns": lambda m, s: m.turns(s),
    "put_blackboard": lambda m, s: m.put_blackboard("r", "k", "1"),
    "get_blackboard": lambda m, s: m.get_blackboard("r"),
    "append_event": lambda m, s: m.append_event("r", {"type": "thought"}),
    "replay": lambda m, s: m.replay("r"),
    "read_new": lambda m, s: m.read_new("r", after_seq=5, block_ms=100),
    "finish_run": lambda m, s: m.finish_run("other"),
    "cache_get": lambda m, s: m.cache_get("k"),
    "cache_set": lambda m, s: m.cache_set("k", "v", 10),
    "get_profile": lambda m, s: m.get_profile("alice"),
    "update_profile": lambda m, s: m.update_profile("alice", {"g": {"x": 0.1}}, eta=1),
    "forget_user": lambda m, s: m.forget_user("bob"),
    "record_feedback": lambda m, s: m.record_feedback("bob", [_like("x", "i", "G")], eta=1),
    "user_state": lambda m, s: m.user_state("bob"),
    "append_events": lambda m, s: m.append_events("r", [{"type": "thought", "seq": 9}]),
    "add_user_run": lambda m, s: m.add_user_run("bob", "r"),
}


@pytest.mark.timeout(120)
def test_outage_raises_memory_unavailable_and_recovers_with_the_data(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    provider = RedisProvider(Settings(data_dir=tmp_path, redis_url=server.url))
    provider.availability_ttl_s = 0
    memory = ShortTermMemory.from_settings(provider.client(), provider.settings)
    try:
        session = memory.create_session("alice")
        memory.append_turn(session, "user", "before the outage")
        memory.append_event("r", {"type": "run_started"})
        memory.update_profile("alice", {"genre": {"Comedy": 0.5}}, eta=1)
        assert provider.available()

        server.stop()
        assert not provider.available()
        for name, operation in OPERATIONS.items():
            with pytest.raises(MemoryUnavailable, match="unavailable") as caught:
                operation(memory, session)
            assert isinstance(caught.value.cause, redis.ConnectionError), name

        server = EmbeddedRedis(tmp_path / "redis", port=server.port).start()
        assert provider.available()
        assert [t.text for t in memory.turns(session)] == ["before the outage"]
        assert memory.append_turn(session, "assistant", "after the outage") == 2
        # the restarted server lost its script cache; the scripts are loaded again
        memory.append_event("r", {"type": "agent_started"})
        assert [(e["seq"], e["type"]) for e in memory.replay("r")] == [
            (1, "run_started"),
            (2, "agent_started"),
        ]
        assert memory.get_profile("alice") == {"genre": {"Comedy": 0.5}}
    finally:
        provider.close()
        server.stop()


@pytest.mark.timeout(60)
def test_a_frozen_server_raises_memory_unavailable_from_the_timeout(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    client = redis.Redis.from_url(server.url, socket_timeout=0.3)
    provider = RedisProvider(
        Settings(data_dir=tmp_path, redis_url=server.url), socket_timeout_s=0.3
    )
    memory = ShortTermMemory(provider.client(), prefix="test")
    session = memory.create_session("alice")
    memory.append_turn(session, "user", "before")
    pid = int(client.info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(MemoryUnavailable) as caught:
            memory.append_turn(session, "user", "while frozen")
        assert isinstance(caught.value.cause, redis.TimeoutError)
    finally:
        os.kill(pid, signal.SIGCONT)
    # the timed-out command may still run once the server thaws, but only once
    texts = [t.text for t in memory.turns(session)]
    assert texts[0] == "before" and texts[1:] in ([], ["while frozen"])
    client.close()
    provider.close()
    server.stop()


def test_async_reader_replays_and_tails_what_the_sync_side_writes(
    memory: ShortTermMemory, redis_server: EmbeddedRedis
) -> None:
    for i in range(5):
        memory.append_event("sse", {"type": "token", "text": str(i)})

    async def read() -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]], bool]:
        client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
        reader = AsyncTraceReader(client, prefix="test")
        replays = [await reader.replay("sse", after_seq=n) for n in (None, 0, 3, 5)]
        writer = threading.Timer(0.1, lambda: memory.append_event("sse", {"type": "run_finished"}))
        writer.start()
        live: list[dict[str, Any]] = []
        while not live:
            live = await reader.read_new("sse", after_seq=5, block_ms=1000)
        writer.join()
        memory.finish_run("sse")
        finished = await reader.run_finished("sse")
        await client.aclose()
        return replays, live, finished

    replays, live, finished = asyncio.run(read())
    events = memory.replay("sse")
    assert replays == [events[:5], events[:5], events[3:5], []]
    assert live == events[5:] and [e["type"] for e in live] == ["run_finished"]
    assert finished


def test_async_reader_reports_an_outage(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    url = server.url
    server.stop()

    async def read() -> None:
        client = redis.asyncio.Redis.from_url(url, socket_timeout=1)
        try:
            await AsyncTraceReader(client, prefix="test").replay("r")
        finally:
            await client.aclose()

    with pytest.raises(MemoryUnavailable, match="unavailable"):
        asyncio.run(read())


def test_a_cancel_request_reaches_the_running_process(memory: ShortTermMemory) -> None:
    assert memory.request_cancel("nope") == "unknown"
    memory.append_events("r", [{"type": "run_started", "seq": 1}])
    assert memory.touch_run("r") is False  # alive, nobody asked to cancel
    assert memory.request_cancel("r") == "cancelling"
    assert memory.touch_run("r") is True
    memory.finish_run("r")
    assert memory.request_cancel("r") == "finished"
