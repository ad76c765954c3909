"""RedisSaver on a real redis-server: a conversation resumed by another process, list
filters, deletion, TTL, pending writes, and no Redis modules needed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, empty_checkpoint
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT

from agents.context import Context
from agents.state import InputState
from core.errors import ConfigError
from graphs.recommend import build_graph
from memory.checkpointer import RedisSaver
from memory.redis_server import EmbeddedRedis
from recdata.demo import DEMO_USER_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "test-ckpt"

# Runs in a fresh interpreter: reads thread X's state from Redis, then chats on it again.
RESUME_SCRIPT = """
import json, sys
from agents.context import Context
from agents.state import InputState
from graphs.recommend import build_graph
from memory.checkpointer import RedisSaver

url, prefix, thread_id, user_id = sys.argv[1:5]
saver = RedisSaver.from_url(url, prefix=prefix)
graph = build_graph().compile(checkpointer=saver)
config = {"configurable": {"thread_id": thread_id}}
before = graph.get_state(config).values
out = graph.invoke(
    InputState(task="chat", user_id=user_id, message="now something scary", count=2),
    config,
    context=Context(),
)
print(json.dumps({
    "turns": [[m.type, m.content] for m in before["messages"]],
    "user_id": before["user_id"],
    "recommendations": [r.item_id for r in before["recommendations"]],
    "second_run": [r.item_id for r in out["recommendations"]],
    "history": len(list(graph.get_state_history(config))),
}))
"""


def _saver(url: str, **options: Any) -> RedisSaver:
    return RedisSaver.from_url(url, prefix=PREFIX, **options)


def _put_chain(
    saver: RedisSaver, thread_id: str, n: int, ns: str = ""
) -> tuple[list[str], RunnableConfig]:
    """`n` checkpoints on (thread, ns), each the child of the previous; metadata step = i,
    source alternating input/loop; channel "count" = i."""
    ids: list[str] = []
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
    for i in range(n):
        checkpoint: Checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"count": i}
        checkpoint["channel_versions"] = {"count": saver.get_next_version(None, None)}
        metadata: CheckpointMetadata = {"source": "input" if i % 2 == 0 else "loop", "step": i}
        config = saver.put(config, checkpoint, metadata, checkpoint["channel_versions"])
        ids.append(checkpoint["id"])
        time.sleep(0.001)  # distinct uuid6 timestamps
    return ids, config


def _ids(tuples: Any) -> list[str]:
    return [t.checkpoint["id"] for t in tuples]


def test_a_new_process_resumes_the_thread(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    saver = _saver(redis_server.url)
    graph = build_graph().compile(checkpointer=saver)
    thread_id = f"chat-{uuid.uuid4()}"
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    first = graph.invoke(
        InputState(task="chat", user_id=DEMO_USER_ID, message="something funny", count=3),
        config,
        context=Context(),
    )
    mine = [r.item_id for r in first["recommendations"]]
    assert len(mine) == 3
    history_before = len(list(graph.get_state_history(config)))

    done = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, redis_server.url, PREFIX, thread_id, DEMO_USER_ID],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    # the other process saw this process's conversation (the run's inputs are reset when it
    # ends; the conversation stays in the thread's messages)
    assert theirs["turns"][0] == ["human", "something funny"]
    assert [kind for kind, _ in theirs["turns"]] == ["human", "ai"]
    assert theirs["user_id"] is None  # an input: the next run sends its own
    assert theirs["recommendations"] == mine
    # and its second run went on from it, on the same thread
    assert len(theirs["second_run"]) == 2
    assert theirs["history"] > history_before
    state = graph.get_state(config)
    turns = [(m.type, m.content) for m in state.values["messages"]]
    assert [kind for kind, _ in turns] == ["human", "ai", "human", "ai"]
    assert turns[2] == ("human", "now something scary")
    assert [r.item_id for r in state.values["recommendations"]] == theirs["second_run"]
    assert len(list(graph.get_state_history(config))) == theirs["history"]


def test_works_on_a_server_without_modules(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    assert redis_client.execute_command("MODULE LIST") == []
    version = redis_client.info("server")["redis_version"]
    assert int(version.split(".")[0]) >= 6
    saver = _saver(redis_server.url)
    ids, _ = _put_chain(saver, "t", 2)
    got = saver.get_tuple({"configurable": {"thread_id": "t"}})
    assert got is not None and got.checkpoint["id"] == ids[-1]
    assert got.checkpoint["channel_values"] == {"count": 1}
    assert got.parent_config is not None
    assert got.parent_config["configurable"]["checkpoint_id"] == ids[0]


def test_list_is_newest_first_with_filters_limit_and_before(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    saver = _saver(redis_server.url)
    ids, _ = _put_chain(saver, "t1", 5)
    other, _ = _put_chain(saver, "t2", 2)
    child, _ = _put_chain(saver, "t1", 1, ns="child:a")
    thread: RunnableConfig = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}

    assert _ids(saver.list(thread)) == ids[::-1]
    assert _ids(saver.list(thread, limit=2)) == ids[:-3:-1]
    before: RunnableConfig = {"configurable": {"thread_id": "t1", "checkpoint_id": ids[3]}}
    assert _ids(saver.list(thread, before=before)) == ids[2::-1]
    assert _ids(saver.list(thread, before=before, limit=1)) == [ids[2]]
    assert _ids(saver.list(thread, filter={"source": "input"})) == [ids[4], ids[2], ids[0]]
    assert _ids(saver.list(thread, filter={"source": "loop", "step": 3})) == [ids[3]]
    assert _ids(saver.list(thread, filter={"source": "input"}, limit=2)) == [ids[4], ids[2]]
    assert _ids(saver.list(thread, filter={"step": 99})) == []
    one: RunnableConfig = {
        "configurable": {"thread_id": "t1", "checkpoint_ns": "", "checkpoint_id": ids[1]}
    }
    assert _ids(saver.list(one)) == [ids[1]]
    # no namespace in the config: every namespace of the thread
    assert set(_ids(saver.list({"configurable": {"thread_id": "t1"}}))) == {*ids, *child}
    # no config: every thread
    assert set(_ids(saver.list(None))) == {*ids, *other, *child}
    assert len(_ids(saver.list(None, limit=3))) == 3
    values = [t.checkpoint["channel_values"]["count"] for t in saver.list(thread)]
    assert values == [4, 3, 2, 1, 0]


def test_list_pages_through_long_threads(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    saver = _saver(redis_server.url)
    ids, _ = _put_chain(saver, "long", 150)
    thread: RunnableConfig = {"configurable": {"thread_id": "long", "checkpoint_ns": ""}}
    assert _ids(saver.list(thread)) == ids[::-1]
    assert _ids(saver.list(thread, filter={"source": "loop"})) == ids[1::2][::-1]
    assert _ids(saver.list(thread, limit=70)) == ids[::-1][:70]


def test_pending_writes_keep_regular_writes_once_and_replace_special_ones(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    saver = _saver(redis_server.url)
    _, config = _put_chain(saver, "w", 1)
    saver.put_writes(config, [("a", 1), ("b", 2)], "task-2", task_path="p2")
    saver.put_writes(config, [("a", 100)], "task-2", task_path="p2")  # same (task, idx): kept
    saver.put_writes(config, [("c", 3)], "task-1", task_path="p1")
    saver.put_writes(config, [(ERROR, "first")], "task-3", task_path="p3")
    saver.put_writes(config, [(ERROR, "second"), (INTERRUPT, {"why": "ask"})], "task-3", "p3")
    got = saver.get_tuple(config)
    assert got is not None
    assert got.pending_writes == [
        ("task-1", "c", 3),
        ("task-2", "a", 1),
        ("task-2", "b", 2),
        ("task-3", INTERRUPT, {"why": "ask"}),
        ("task-3", ERROR, "second"),
    ]


def test_delete_thread_removes_every_key_of_that_thread_only(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    saver = _saver(redis_server.url)
    _, config = _put_chain(saver, "gone", 3)
    _put_chain(saver, "gone", 2, ns="child:x")
    saver.put_writes(config, [("a", 1)], "task")
    kept, _ = _put_chain(saver, "kept", 2)
    assert redis_client.keys(f"{PREFIX}:{{gone}}*")
    saver.delete_thread("gone")
    assert redis_client.keys(f"{PREFIX}:{{gone}}*") == []
    assert saver.get_tuple({"configurable": {"thread_id": "gone"}}) is None
    assert list(saver.list({"configurable": {"thread_id": "gone"}})) == []
    got = saver.get_tuple({"configurable": {"thread_id": "kept"}})
    assert got is not None and got.checkpoint["id"] == kept[-1]
    saver.delete_thread("never-existed")


def test_ttl_applies_to_every_key_and_expires_the_thread(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    saver = _saver(redis_server.url, ttl_s=60)
    _, config = _put_chain(saver, "ttl", 2)
    saver.put_writes(config, [("a", 1)], "task")
    keys = redis_client.keys(f"{PREFIX}:*")
    assert len(keys) >= 6
    assert all(0 < redis_client.ttl(k) <= 60 for k in keys)

    short = _saver(redis_server.url, ttl_s=1)
    _put_chain(short, "brief", 2)
    assert short.get_tuple({"configurable": {"thread_id": "brief"}}) is not None
    time.sleep(1.2)
    assert short.get_tuple({"configurable": {"thread_id": "brief"}}) is None
    assert redis_client.keys(f"{PREFIX}:{{brief}}*") == []
    # without a TTL nothing expires
    plain = _saver(redis_server.url)
    _put_chain(plain, "forever", 1)
    assert all(redis_client.ttl(k) == -1 for k in redis_client.keys(f"{PREFIX}:{{forever}}*"))


def test_odd_thread_ids_and_namespaces_do_not_collide(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    saver = _saver(redis_server.url)
    a, _ = _put_chain(saver, "a:b", 1, ns="")
    b, _ = _put_chain(saver, "a", 1, ns="b:")
    c, _ = _put_chain(saver, "x}{y", 1, ns="n")
    assert _ids(saver.list({"configurable": {"thread_id": "a:b"}})) == a
    assert _ids(saver.list({"configurable": {"thread_id": "a"}})) == b
    assert _ids(saver.list({"configurable": {"thread_id": "x}{y"}})) == c
    assert set(_ids(saver.list(None))) == {*a, *b, *c}


def test_rejects_clients_that_decode_responses(redis_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ConfigError):
        RedisSaver(client)
    client.close()


def test_versions_increase(redis_server: EmbeddedRedis) -> None:
    saver = _saver(redis_server.url)
    first = saver.get_next_version(None, None)
    second = saver.get_next_version(first, None)
    assert first < second and int(second.split(".")[0]) == 2
