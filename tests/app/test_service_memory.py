"""The service's memory end to end, on a real redis-server and a real Chroma (embedded, and a
`chroma run` server for the outage test): profiles evolve from feedback, memories stay with
their user, forgetting leaves nothing, and outages degrade then recover without a restart."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

import agents.state
import app.service
from agents.feedback import feedback_effect
from agents.memory import LONG_TERM, SHORT_TERM
from agents.schemas import Conversation, Intent
from app.runs import RunRegistry
from app.service import EventIn, MemoryRecord, RunRequest, RunResult, Service
from core.settings import Settings
from memory.connection import MemoryUnavailable
from memory.redis_server import EmbeddedRedis
from recdata.demo import DEMO_USER_ID
from tests.servers import CHROMA_CLI, ChromaServer, free_port


def _settings(data_dir: Path, **values: Any) -> Settings:
    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    for name, value in values.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis
) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("service")
    with Service(_settings(data_dir, redis_url=redis_server.url)) as svc:
        yield svc


def run(service: Service, **request: Any) -> RunResult:
    return asyncio.run(service.run(RunRequest(**request)))


def ids_of(result: RunResult) -> list[str]:
    return [r["item_id"] for r in result.output["recommendations"]]


def genres(service: Service, item_id: str) -> tuple[str, ...]:
    ds = service.toolbox().dataset
    return ds.items[ds.item_index[item_id]].attributes.get("genres", ())


# -- profiles evolve ----------------------------------------------------------------------
def test_feedback_updates_the_profile_and_the_next_recommendation(service: Service) -> None:
    user = DEMO_USER_ID
    before = run(service, user_id=user, count=10)
    assert before.error is None and before.output["degraded"] == []
    horror = [
        it.item_id
        for it in service.toolbox().dataset.items
        if "Horror" in it.attributes.get("genres", ()) and it.item_id not in ids_of(before)
    ][:4]
    top = ids_of(before)[0]
    events = [EventIn(f"like-{i}", "like", item, user_id=user) for i, item in enumerate(horror)]
    events.append(EventIn("dislike-top", "dislike", top, user_id=user))
    outcomes = service.record_events(events)
    assert [o.status for o in outcomes] == ["stored"] * len(events)

    # P(u, t+1) = P(u, t) + eta * dP, event by event, from an empty profile
    eta = service.settings.profile_eta
    expected: dict[str, dict[str, float]] = {}
    for event in events:
        delta = feedback_effect(service.toolbox(), event.type, event.item_id).profile_delta
        for facet, weights in delta.items():
            for name, change in weights.items():
                value = expected.setdefault(facet, {}).get(name, 0.0) + eta * change
                expected[facet][name] = max(-1.0, min(1.0, value))
    state = service.short_term.user_state(user)
    assert state.profile.keys() == expected.keys()
    for facet, weights in expected.items():
        assert state.profile[facet] == pytest.approx(weights)
    assert state.excluded == {top}

    after = run(service, user_id=user, count=10)
    assert top not in ids_of(after)  # a dislike excludes the item
    horror_before = sum("Horror" in genres(service, i) for i in ids_of(before))
    horror_after = sum("Horror" in genres(service, i) for i in ids_of(after))
    assert horror_after > horror_before
    assert not set(horror) & set(ids_of(after))  # liked items count as seen
    summary = [
        e["text"]
        for e in after.events
        if e["type"] == "observation" and e["agent"] == "UserAnalyst"
    ][-1]
    assert "Horror" in summary


def test_repeated_events_change_nothing(service: Service) -> None:
    user = "repeat-user"
    item = service.toolbox().dataset.items[3].item_id
    first = service.record_events([EventIn("r1", "rating", item, user_id=user, value=5)])
    profile = service.short_term.user_state(user).profile
    again = service.record_events(
        [EventIn("r1", "rating", item, user_id=user, value=5), EventIn("r2", "view", item, user)]
    )
    assert [o.status for o in first] == ["stored"]
    assert [o.status for o in again] == ["duplicate", "stored"]
    assert len(service.short_term.user_events(user)) == 2
    state = service.short_term.user_state(user)
    for facet, weights in profile.items():
        for name, value in weights.items():  # only the view (+0.1 signal) moved it
            assert state.profile[facet][name] > value
            assert state.profile[facet][name] < value + service.settings.profile_eta * 0.11


def test_bad_events_are_rejected_one_by_one(service: Service) -> None:
    item = service.toolbox().dataset.items[0].item_id
    outcomes = service.record_events(
        [
            EventIn("ok", "click", item, user_id="someone"),
            EventIn("no-item", "click", "no-such-item", user_id="someone"),
            EventIn("no-who", "click", item),
            EventIn("no-value", "rating", item, user_id="someone"),
            EventIn("bad-type", "teleport", item, user_id="someone"),
        ]
    )
    assert [o.status for o in outcomes] == ["stored", *["rejected"] * 4]
    assert all(o.message for o in outcomes[1:])


def test_anonymous_sessions_learn_too(service: Service) -> None:
    before = run(service, session_id="visitor-1", count=5)
    assert before.output["recommendations"]
    top = ids_of(before)[0]
    service.record_events([EventIn("v1", "dislike", top, session_id="visitor-1")])
    after = run(service, session_id="visitor-1", count=5)
    assert top not in ids_of(after)
    assert top in ids_of(run(service, session_id="visitor-2", count=5))


# -- isolation ----------------------------------------------------------------------------
def test_one_users_memories_never_reach_another_users_run(service: Service) -> None:
    texts = {
        "iso-a": "I love slow-burning Korean thrillers with a twist",
        "iso-b": "I love slow burning Korean thrillers with a twist",
    }
    for user, text in texts.items():
        service.memory.remember([(user, "stated_preference", text, None)])
    for user, text in texts.items():
        other = next(t for u, t in texts.items() if u != user)
        result = run(service, task="chat", user_id=user, message="a Korean thriller please")
        recalled = [
            m
            for e in result.events
            if e["type"] == "observation" and "memories" in e
            for m in e["memories"]
        ]
        assert recalled == [text]
        assert other not in json.dumps(result.events)


# -- forgetting ---------------------------------------------------------------------------
def _all_keys(service: Service) -> list[str]:
    return [k if isinstance(k, str) else k.decode() for k in service.short_term.client.keys("*")]


def test_forget_user_deletes_everything_about_them(service: Service) -> None:
    user, other = "forget-me", "keep-me"
    items = [it.item_id for it in service.toolbox().dataset.items[:3]]
    sessions: list[str] = []
    runs: list[str] = []
    for who in (user, other):
        session_id, _ = service.create_session(who)
        if who == user:
            sessions.append(session_id)

        async def chat(session_id: str = session_id) -> list[dict[str, Any]]:
            return [e async for e in service.stream_chat(session_id, "a funny film from the 90s")]

        events = asyncio.run(chat())
        if who == user:
            runs.append(events[0]["run_id"])
            runs.append(run(service, user_id=who).run_id)
        service.record_events(
            [EventIn(f"{who}-{n}", "like", item, user_id=who) for n, item in enumerate(items)]
        )
        service.memory.remember([(who, "session_summary", f"{who} wanted comedies", None)])
    saver = service.checkpointer()
    assert saver.get_tuple({"configurable": {"thread_id": sessions[0]}}) is not None
    other_keys = {k for k in _all_keys(service) if other in k}
    assert any(user in k for k in _all_keys(service))

    report = service.forget_user(user)

    assert report["sessions"] == 1 and report["memories"] >= 4
    left = _all_keys(service)
    traces = [*sessions, *runs, user]
    assert [k for k in left if any(t in k for t in traces)] == []
    assert saver.get_tuple({"configurable": {"thread_id": sessions[0]}}) is None
    assert list(saver.list({"configurable": {"thread_id": sessions[0]}})) == []
    assert service.long_term().memories(user) == []
    assert service.short_term.user_events(user) == []
    # the other user keeps everything
    assert other_keys <= set(left)
    assert len(service.long_term().memories(other)) >= 4
    saver.close()


# -- faults -------------------------------------------------------------------------------
def test_redis_outage_degrades_then_recovers_without_restart(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", port=port).start()
    try:
        with Service(_settings(tmp_path / "data", redis_url=server.url)) as svc:
            healthy = run(svc, user_id=DEMO_USER_ID, count=5)
            assert healthy.output["degraded"] == []
            server.stop()

            down = run(svc, user_id=DEMO_USER_ID, count=5)
            assert down.error is None
            assert len(down.output["recommendations"]) == 5
            assert SHORT_TERM in down.output["degraded"]
            assert any(e["type"] == "error" and e["recoverable"] for e in down.events)
            with pytest.raises(MemoryUnavailable, match="unavailable"):
                svc.create_session(DEMO_USER_ID)
            item = svc.toolbox().dataset.items[0].item_id
            with pytest.raises(MemoryUnavailable):
                svc.record_events([EventIn("e", "like", item, user_id=DEMO_USER_ID)])

            server = EmbeddedRedis(tmp_path / "redis", port=port).start()
            back = run(svc, user_id=DEMO_USER_ID, count=5)
            assert back.output["degraded"] == []
            stored = svc.short_term.replay(back.run_id)  # its summary, once Redis is back
            assert [e["seq"] for e in stored] == [back.events[0]["seq"], back.events[-1]["seq"]]
            session_id, _ = svc.create_session(DEMO_USER_ID)
            assert svc.session_turns(session_id) == []
    finally:
        server.stop()


def test_a_memory_write_retried_while_redis_is_down_is_stored_once(tmp_path: Path) -> None:
    """Chroma up, Redis down: each attempt stores the memory in Chroma, then fails counting
    it in Redis, and the writer retries the whole write. The retries must not add copies."""
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", port=port).start()
    try:
        with Service(_settings(tmp_path / "data", redis_url=server.url)) as svc:
            item = svc.toolbox().dataset.items[0]
            record: MemoryRecord = (
                "retry-user",
                "feedback",
                f"Liked {item.title}",
                {"event_id": "ev-1"},
            )
            server.stop()
            for _ in range(3):
                with pytest.raises(MemoryUnavailable):
                    svc.memory.remember([record])
            server = EmbeddedRedis(tmp_path / "redis", port=port).start()
            svc.memory.remember([record])
            memories = svc.long_term().memories("retry-user")
            assert [m.text for m in memories] == [f"Liked {item.title}"]
            other: MemoryRecord = (
                "retry-user",
                "feedback",
                f"Liked {item.title}",
                {"event_id": "ev-2"},
            )
            svc.memory.remember([other])  # another event saying the same is another memory
            assert len(svc.long_term().memories("retry-user")) == 2
    finally:
        server.stop()


def test_chroma_outage_degrades_then_recovers_without_restart(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    if not CHROMA_CLI.exists() or shutil.which(str(CHROMA_CLI)) is None:
        pytest.skip(f"the chroma CLI is not installed at {CHROMA_CLI}")
    chroma = ChromaServer(tmp_path / "chroma", free_port())
    chroma.start()
    settings = _settings(
        tmp_path / "data",
        redis_url=redis_server.url,
        chroma_host="127.0.0.1",
        chroma_port=chroma.port,
    )
    try:
        with Service(settings) as svc:
            svc.memory.remember([("chroma-user", "stated_preference", "I like space operas", None)])
            request = {"task": "chat", "user_id": "chroma-user", "message": "space adventure"}
            healthy = run(svc, **request)
            assert healthy.output["degraded"] == []
            assert any(e.get("memories") for e in healthy.events)
            chroma.stop()

            down = run(svc, **request)
            assert down.error is None and down.output["recommendations"]
            assert down.output["degraded"] == [LONG_TERM]

            chroma.start()
            back = run(svc, **request)
            assert back.output["degraded"] == []
            assert any(e.get("memories") for e in back.events)
    finally:
        chroma.stop()


def test_an_anonymous_session_remembers_under_its_own_id(service: Service) -> None:
    session_id, owner = service.create_session(None)
    assert owner == f"session:{session_id}"
    item = service.toolbox().dataset.items[5].item_id
    service.record_events([EventIn("anon-1", "dislike", item, session_id=session_id)])
    assert service.short_term.user_state(owner).excluded == {item}


def test_a_cancelled_run_still_ends_with_error_and_run_finished(service: Service) -> None:
    """Cancelling a live run (app.runs) lets the run end itself: its readers get `error`
    (cancelled) and `run_finished`, even when the cancellation lands in the pump between
    two events rather than inside the graph run (tests/app/test_streaming.py cancels
    slow LLM runs in flight)."""
    where = "between two events"

    async def cancel_midway() -> list[dict[str, Any]]:
        registry = RunRegistry()
        request = RunRequest(user_id=DEMO_USER_ID)
        live = registry.start("cancel-" + where.replace(" ", "-"), service.stream_run(request))
        original = live._add

        async def slow_add(event: dict[str, Any]) -> None:
            await original(event)
            if event.get("agent") == "Ranker":
                await asyncio.sleep(10)  # the pump is here when the cancel comes

        live._add = slow_add  # type: ignore[method-assign]
        seen: list[dict[str, Any]] = []
        async for event in live.follow():
            seen.append(event)
            if event.get("agent") == "Ranker" and len(seen) < 1000:
                await asyncio.sleep(0.05)
                assert registry.cancel(live.run_id)
                seen.append({"type": "(cancel)"})
        return seen

    events = asyncio.run(cancel_midway())
    assert {"type": "(cancel)"} in events
    assert [e["type"] for e in events[-2:]] == ["error", "run_finished"]
    assert events[-2]["code"] == "cancelled" and events[-1]["status"] == "error"
    real = [e for e in events if "seq" in e]
    assert [e["seq"] for e in real] == list(range(1, len(real) + 1))
    stored = service.short_term.replay(real[0]["run_id"])
    assert [e["seq"] for e in stored] == [e["seq"] for e in real]


def test_a_chat_session_s_checkpoint_loads_back_every_state_type(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's checkpoints use the graph's one serializer (agents.state): a chat
    thread's state loads back as its schemas and messages, with no type left unregistered."""
    assert app.service.checkpoint_serde is agents.state.checkpoint_serde
    session_id, _ = service.create_session("checkpointed")

    async def chat(message: str) -> list[dict[str, Any]]:
        return [e async for e in service.stream_chat(session_id, message)]

    asyncio.run(chat("I loved Alien"))
    asyncio.run(chat("something lighter"))
    saver = service.checkpointer()
    try:
        with caplog.at_level(logging.WARNING):
            saved = saver.get_tuple({"configurable": {"thread_id": session_id}})
    finally:
        saver.close()
    assert saved is not None
    values = saved.checkpoint["channel_values"]
    assert [type(m) for m in values["messages"]] == [HumanMessage, AIMessage] * 2
    assert isinstance(values["conversation"], Conversation) and isinstance(values["intent"], Intent)
    assert values["conversation"].turns == 3
    assert not [r for r in caplog.records if "unregistered" in r.getMessage()]
