"""LongTermMemory on the real embedded Chroma client, and on a real Chroma server for faults."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.errors import AgentrecError
from core.settings import Settings
from memory.long_term import (
    ChromaUnavailable,
    LongTermMemory,
    catalog_metadata,
)
from recdata.dataset import Dataset, Interactions, Item
from tests.servers import CHROMA_CLI, ChromaServer, free_port
from tools.embeddings import HashedNgramEmbeddings


def _dataset(items: list[Item]) -> Dataset:
    empty = Interactions(
        user=np.zeros(0, np.int32),
        item=np.zeros(0, np.int32),
        rating=np.zeros(0, np.float32),
        timestamp=np.zeros(0, np.int64),
    )
    return Dataset("test", items, [], empty)


CATALOG = [
    Item("m1", "Space Robots", {"genres": ("Sci-Fi", "Action"), "year": ("1999",)}),
    Item("m2", "Quiet Family Drama", {"genres": ("Drama",), "year": ("2004",)}),
    Item("m3", "Laughing Detectives", {"genres": ("Comedy", "Crime"), "year": ("1988",)}),
    Item("m4", "Haunted Lighthouse", {"genres": ("Horror",), "year": ()}),
    Item("m5", "Robots in Love", {"genres": ("Romance", "Sci-Fi")}, text="a gentle comedy"),
]


@pytest.fixture()
def memory(tmp_path: Path) -> Iterator[LongTermMemory]:
    with LongTermMemory.embedded(tmp_path / "chroma", HashedNgramEmbeddings(dims=64)) as ltm:
        yield ltm


def test_from_settings_embeds_chroma_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    settings.chroma_host = None
    with LongTermMemory.from_settings(settings) as ltm:
        ltm.remember("u1", "feedback", "liked it")
    assert (tmp_path / "data" / "chroma" / "chroma.sqlite3").exists()
    with LongTermMemory.from_settings(settings) as again:
        assert [m.text for m in again.memories("u1")] == ["liked it"]


def test_catalog_index_search_and_filters(memory: LongTermMemory) -> None:
    calls: list[tuple[int, int]] = []
    written = memory.index_catalog(
        _dataset(CATALOG), batch_size=2, progress=lambda done, total: calls.append((done, total))
    )
    assert written == 5
    assert memory.catalog_size() == 5
    assert calls == [(2, 5), (4, 5), (5, 5)]
    hits = memory.search_catalog("space robots", k=2)
    assert hits[0][0] == "m1"
    assert hits[0][1] >= hits[1][1]
    assert 0.99 <= memory.search_catalog("Space Robots Sci-Fi Action 1999", k=1)[0][1] <= 1.0001
    sci_fi = memory.search_catalog("robots", k=5, where={"genres": {"$contains": "Sci-Fi"}})
    assert {item for item, _ in sci_fi} == {"m1", "m5"}
    # re-indexing upserts: no duplicates
    memory.index_catalog(_dataset(CATALOG))
    assert memory.catalog_size() == 5


def test_catalog_with_caller_vectors_and_vector_query(memory: LongTermMemory) -> None:
    vectors = np.eye(5, 8, dtype=np.float32)
    memory.catalog_collection = "catalog_cf"
    memory.index_catalog(_dataset(CATALOG), vectors=vectors)
    hits = memory.search_catalog(vectors[2] + 0.1 * vectors[3], k=2)
    assert [item for item, _ in hits] == ["m3", "m4"]
    with pytest.raises(ValueError, match="rows"):
        memory.index_catalog(_dataset(CATALOG), vectors=vectors[:3])


def test_catalog_metadata_is_what_chroma_accepts() -> None:
    meta = catalog_metadata("T", {"genres": ("A", "B"), "year": (), "title": ("x",)})
    assert meta == {"title": "T", "genres": ["A", "B"], "attr_title": ["x"]}


def test_remember_recall_memories_forget(memory: LongTermMemory) -> None:
    memory.remember(
        "alice", "stated_preference", "I love dark sci-fi thrillers", {"source": "chat"}
    )
    memory.remember("alice", "feedback", "disliked the romantic comedy")
    memory.remember("alice", "session_summary", "asked for space films, picked two")
    recalled = memory.recall("alice", "sci-fi thriller", k=2)
    assert recalled[0].memory.text == "I love dark sci-fi thrillers"
    assert recalled[0].memory.meta == {"source": "chat"}
    assert recalled[0].score >= recalled[1].score
    feedback = memory.recall("alice", "sci-fi thriller", k=5, kinds=["feedback"])
    assert [r.memory.kind for r in feedback] == ["feedback"]
    assert [m.kind for m in memory.memories("alice")] == [
        "stated_preference",
        "feedback",
        "session_summary",
    ]
    assert memory.forget_user("alice") == 3
    assert memory.memories("alice") == []
    assert memory.recall("alice", "sci-fi", k=5) == []


def test_a_user_id_is_required(memory: LongTermMemory) -> None:
    for bad in ("", "   "):
        with pytest.raises(ValueError, match="user id"):
            memory.recall(bad, "anything")
        with pytest.raises(ValueError, match="user id"):
            memory.remember(bad, "feedback", "x")
        with pytest.raises(ValueError, match="user id"):
            memory.forget_user(bad)
    with pytest.raises(TypeError):
        memory.recall(query="anything")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="reserved"):
        memory.remember("bob", "feedback", "x", {"user_id": "alice"})
    with pytest.raises(ValueError, match="kind"):
        memory.remember("bob", "gossip", "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("shards", [1, 4])
def test_users_never_see_each_others_memories(tmp_path: Path, shards: int) -> None:
    memory = LongTermMemory.embedded(
        tmp_path / "chroma", HashedNgramEmbeddings(dims=64), memory_shards=shards
    )
    assert len({memory.memory_shard(f"user-{u}") for u in range(60)}) == shards
    rng = np.random.default_rng(7)
    users = [f"user-{u}" for u in range(60)]
    records = []
    for u, user in enumerate(users):
        for j in range(4):
            # near-identical texts across users: only the user number differs
            records.append(
                (user, "stated_preference", f"I like dark thrillers number {j} {u}", None)
            )
    memory.remember_many(records)  # type: ignore[arg-type]
    memory.remember("mallory", "feedback", "I like dark thrillers number 0")
    for user in rng.permutation(users)[:30]:
        recalled = memory.recall(str(user), "I like dark thrillers number 0", k=10)
        assert len(recalled) == 4
        assert {r.memory.user_id for r in recalled} == {user}
        assert all(r.memory.text.endswith(f" {user.split('-')[1]}") for r in recalled)
        assert {m.user_id for m in memory.memories(str(user))} == {user}
    assert memory.forget_user("user-0") == 4
    assert len(memory.recall("user-1", "dark thrillers", k=10)) == 4
    assert [m.text for m in memory.memories("mallory")] == ["I like dark thrillers number 0"]
    memory.close()


def test_filtered_ann_fallback_stays_within_the_user(tmp_path: Path) -> None:
    memory = LongTermMemory.embedded(
        tmp_path / "chroma", HashedNgramEmbeddings(dims=64), memory_shards=1, exact_recall_limit=3
    )
    memory.remember_many([("carol", "feedback", f"liked horror film {i}", None) for i in range(6)])
    memory.remember_many([("dave", "feedback", f"liked horror film {i}", None) for i in range(6)])
    recalled = memory.recall("carol", "liked horror film 2", k=4)
    assert len(recalled) == 4
    assert {r.memory.user_id for r in recalled} == {"carol"}
    assert recalled[0].memory.text == "liked horror film 2"
    memory.close()


def test_the_filter_is_checked_again_on_results(memory: LongTermMemory) -> None:
    from memory.long_term import _memory

    with pytest.raises(AgentrecError, match="another user"):
        _memory("x", "t", {"user_id": "eve", "kind": "feedback"}, "alice")


# a real Chroma server ---------------------------------------------------------------


@pytest.fixture()
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    if not CHROMA_CLI.exists() or shutil.which(str(CHROMA_CLI)) is None:
        pytest.skip(f"the chroma CLI is not installed at {CHROMA_CLI}")
    server = ChromaServer(tmp_path / "server", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_server_outage_raises_chroma_unavailable_and_recovers(chroma_server: ChromaServer) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    settings.chroma_host = "127.0.0.1"
    settings.chroma_port = chroma_server.port
    ltm = LongTermMemory.from_settings(settings, HashedNgramEmbeddings(dims=32))
    assert ltm.where == f"127.0.0.1:{chroma_server.port}"
    ltm.index_catalog(_dataset(CATALOG))
    ltm.remember("alice", "stated_preference", "loves haunted lighthouses")
    ltm.remember("bob", "stated_preference", "loves haunted lighthouses")
    assert [r.memory.user_id for r in ltm.recall("alice", "lighthouse")] == ["alice"]

    chroma_server.stop()
    calls = [
        lambda: ltm.recall("alice", "lighthouse"),
        lambda: ltm.search_catalog("robots", k=2),
        lambda: ltm.remember("alice", "feedback", "x"),
        lambda: ltm.memories("alice"),
        lambda: ltm.forget_user("alice"),
        ltm.heartbeat,
    ]
    for call in calls:
        start = time.monotonic()
        with pytest.raises(ChromaUnavailable, match=str(chroma_server.port)):
            call()
        assert time.monotonic() - start < 5
    with pytest.raises(ChromaUnavailable):
        LongTermMemory.from_settings(settings)

    chroma_server.start()
    assert [r.memory.text for r in ltm.recall("alice", "lighthouse")] == [
        "loves haunted lighthouses"
    ]
    assert ltm.search_catalog("haunted lighthouse horror", k=1)[0][0] == "m4"
    ltm.remember("alice", "feedback", "back again")
    assert len(ltm.memories("alice")) == 2
    ltm.close()


def test_warm_up_opens_the_catalog_and_every_shard(tmp_path: Path) -> None:
    with LongTermMemory.embedded(tmp_path / "c", memory_shards=3) as memory:
        memory.warm_up()
        names = {c.name for c in memory.client.list_collections()}
        assert names == {"catalog"} | {memory._shard_name(s) for s in range(3)}
        assert memory.recall("nobody", "anything") == []
