"""Chroma long-term memory at scale: per-user recall and catalog search latency.

    .venv/bin/python -m benchmarks.long_term_memory
    .venv/bin/python -m benchmarks.long_term_memory --users 1000 --memories 10000 --items 10000

Builds, in a temporary directory with the embedded client (`chromadb.PersistentClient`),
`--memories` synthetic user memories spread over `--users` users (hashed n-gram vectors,
`--dims` dimensions) and a synthetic catalog of `--items` items, then times, for seeded
random users and queries:
- `ann_where`: one collection, HNSW `query(where={"user_id": u}, n_results=k)`;
- `get_numpy`: one collection, `get(where={"user_id": u})` of the user's vectors and an
  exact cosine top-k in numpy (what `LongTermMemory.recall` does);
- `sharded_N_ann_where` / `sharded_N_get_numpy`: the same over N collections (each N of
  `--shards`) chosen by a hash of the user id;
- `collection_per_user`: one collection per user (built for the first `--per-user-users`
  users only: creating collections is the cost being measured);
- `long_term_memory.recall`: the public API end to end (`--ltm-shards` shards, sharded
  get + numpy; embeds the query text and returns the texts and metadata too), timed on a
  fresh object after `warm_up()` (which opens every shard) as a service would;
- `catalog_search`: `LongTermMemory.search_catalog(text, k=10)` over the catalog (HNSW),
  and with a `$contains` genre filter.
Prints a table, writes JSON (benchmarks/results/long_term_memory.json).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from benchmarks.report import machine_info, write_json
from memory.long_term import LongTermMemory, MemoryKind
from recdata.dataset import Dataset, Interactions, Item
from tools.embeddings import HashedNgramEmbeddings

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "long_term_memory.json"

GENRES = [
    "comedy", "drama", "thriller", "horror", "romance", "documentary", "animation",
    "western", "sci-fi", "fantasy", "noir", "musical", "war", "crime", "mystery", "action",
]  # fmt: skip
MOODS = ["funny", "dark", "slow", "tense", "uplifting", "quiet", "violent", "clever", "sad"]
SUBJECTS = ["space", "heists", "families", "robots", "detectives", "sports", "history", "music"]
TEMPLATES = [
    "I love {m} {g} films about {s}",
    "please no more {g}, too {m}",
    "watched a {m} {g} about {s} and liked it",
    "prefers {g} and {g2}, avoids {s}",
    "session: asked for {m} {g} with {s}; picked two",
]
KINDS: list[MemoryKind] = ["stated_preference", "session_summary", "feedback"]


def synthetic_text(rng: np.random.Generator) -> str:
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return template.format(
        m=MOODS[int(rng.integers(len(MOODS)))],
        g=GENRES[int(rng.integers(len(GENRES)))],
        g2=GENRES[int(rng.integers(len(GENRES)))],
        s=SUBJECTS[int(rng.integers(len(SUBJECTS)))],
    )


def synthetic_catalog(n_items: int, rng: np.random.Generator) -> Dataset:
    items = []
    for i in range(n_items):
        genres = tuple(sorted({GENRES[int(g)] for g in rng.integers(len(GENRES), size=2)}))
        title = f"{MOODS[int(rng.integers(len(MOODS)))]} {SUBJECTS[int(rng.integers(8))]} {i}"
        items.append(Item(str(i), title.title(), {"genres": genres, "year": (str(1950 + i % 70),)}))
    empty = Interactions(
        user=np.zeros(0, np.int32),
        item=np.zeros(0, np.int32),
        rating=np.zeros(0, np.float32),
        timestamp=np.zeros(0, np.int64),
    )
    return Dataset("synthetic", items, [], empty)


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def timed(run: Callable[[int], object], n: int) -> list[float]:
    for i in range(min(20, n)):
        run(i)
    samples = []
    for i in range(n):
        start = time.perf_counter()
        run(i)
        samples.append(time.perf_counter() - start)
    return samples


def shard_of(user_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest()) % shards


def exact_top_k(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    scores = vectors @ query
    return np.argsort(-scores, kind="stable")[:k]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--shards", default="16,64", help="shard counts to compare, e.g. 16,64")
    parser.add_argument("--ltm-shards", type=int, default=64, help="LongTermMemory's shards")
    parser.add_argument("--per-user-users", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    embedder = HashedNgramEmbeddings(dims=args.dims)
    users = [f"user-{u:06d}" for u in range(args.users)]
    owner = rng.integers(args.users, size=args.memories)
    texts = [synthetic_text(rng) for _ in range(args.memories)]
    start = time.perf_counter()
    vectors = embedder.embed_matrix(texts)
    embed_s = time.perf_counter() - start
    ids = [f"m{i}" for i in range(args.memories)]
    metadatas: list[dict[str, Any]] = [
        {"user_id": users[int(owner[i])], "kind": KINDS[i % 3]} for i in range(args.memories)
    ]
    query_users = [users[int(u)] for u in rng.choice(owner, size=args.queries)]
    query_texts = [synthetic_text(rng) for _ in range(args.queries)]
    query_vectors = embedder.embed_matrix(query_texts)
    rows: dict[str, dict[str, Any]] = {}
    build: dict[str, float] = {"embed_memories_s": round(embed_s, 2)}

    with tempfile.TemporaryDirectory(prefix="ltm-bench-") as tmp:
        client = chromadb.PersistentClient(
            path=str(Path(tmp) / "raw"), settings=ChromaSettings(anonymized_telemetry=False)
        )
        batch = client.get_max_batch_size()

        def fill(collection: Any, rows_at: np.ndarray) -> None:
            for lo in range(0, len(rows_at), batch):
                part = rows_at[lo : lo + batch]
                collection.add(
                    ids=[ids[i] for i in part],
                    embeddings=vectors[part],
                    metadatas=[metadatas[i] for i in part],
                )

        space: Any = {"hnsw": {"space": "cosine"}}
        start = time.perf_counter()
        single = client.create_collection("single", configuration=space, embedding_function=None)
        fill(single, np.arange(args.memories))
        build["single_collection_s"] = round(time.perf_counter() - start, 2)
        print(f"single collection: {args.memories} memories in {build['single_collection_s']} s")

        def ann_where(collection_of: Callable[[str], Any]) -> Callable[[int], object]:
            def run(q: int) -> object:
                return collection_of(query_users[q]).query(
                    query_embeddings=query_vectors[q : q + 1],
                    n_results=args.k,
                    where={"user_id": query_users[q]},
                    include=["distances"],
                )

            return run

        def get_numpy(collection_of: Callable[[str], Any]) -> Callable[[int], object]:
            def run(q: int) -> object:
                got = collection_of(query_users[q]).get(
                    where={"user_id": query_users[q]}, include=["embeddings"]
                )
                found = np.asarray(got["embeddings"], dtype=np.float32)
                if found.size == 0:
                    return []
                return [got["ids"][i] for i in exact_top_k(found, query_vectors[q], args.k)]

            return run

        rows["ann_where"] = percentiles(timed(ann_where(lambda _: single), args.queries))
        rows["get_numpy"] = percentiles(timed(get_numpy(lambda _: single), args.queries))

        for n_shards in [int(n) for n in args.shards.split(",") if n]:
            start = time.perf_counter()
            shard_rows = np.asarray(
                [shard_of(metadatas[i]["user_id"], n_shards) for i in range(args.memories)]
            )
            shards = [
                client.create_collection(
                    f"shard-{s}-of-{n_shards}", configuration=space, embedding_function=None
                )
                for s in range(n_shards)
            ]
            for s, collection in enumerate(shards):
                fill(collection, np.flatnonzero(shard_rows == s))
            build[f"sharded_{n_shards}_s"] = round(time.perf_counter() - start, 2)

            def shard_for(user_id: str, shards: list[Any] = shards) -> Any:
                return shards[shard_of(user_id, len(shards))]

            rows[f"sharded_{n_shards}_ann_where"] = percentiles(
                timed(ann_where(shard_for), args.queries)
            )
            rows[f"sharded_{n_shards}_get_numpy"] = percentiles(
                timed(get_numpy(shard_for), args.queries)
            )

        per_user_n = min(args.per_user_users, args.users)
        start = time.perf_counter()
        per_user: dict[str, Any] = {}
        for u in range(per_user_n):
            per_user[users[u]] = client.create_collection(
                f"user-{u:06d}", configuration=space, embedding_function=None
            )
        for u in range(per_user_n):
            fill(per_user[users[u]], np.flatnonzero(owner == u))
        per_user_s = time.perf_counter() - start
        build["collection_per_user_s"] = round(per_user_s, 2)
        build["collection_per_user_users"] = per_user_n
        pu_users = [users[int(u)] for u in rng.integers(per_user_n, size=args.queries)]

        def per_user_query(q: int) -> object:
            collection = client.get_collection(pu_users[q])
            n = min(args.k, collection.count())
            if n == 0:
                return []
            return collection.query(
                query_embeddings=query_vectors[q : q + 1], n_results=n, include=["distances"]
            )

        rows["collection_per_user"] = percentiles(timed(per_user_query, args.queries))

        memory = LongTermMemory.embedded(
            Path(tmp) / "ltm", embeddings=embedder, memory_shards=args.ltm_shards
        )
        start = time.perf_counter()
        for lo in range(0, args.memories, batch):
            memory.remember_many(
                [
                    (metadatas[i]["user_id"], metadatas[i]["kind"], texts[i], None)
                    for i in range(lo, min(lo + batch, args.memories))
                ],
                vectors=vectors[lo : lo + batch],
            )
        build["long_term_memory_s"] = round(time.perf_counter() - start, 2)

        memory.close()
        memory = LongTermMemory.embedded(
            Path(tmp) / "ltm", embeddings=embedder, memory_shards=args.ltm_shards
        )
        start = time.perf_counter()
        memory.warm_up()
        build["long_term_memory_warm_up_s"] = round(time.perf_counter() - start, 2)

        def recall(q: int) -> object:
            return memory.recall(query_users[q], query_texts[q], k=args.k)

        rows[f"long_term_memory.recall ({args.ltm_shards} shards)"] = percentiles(
            timed(recall, args.queries)
        )

        catalog = synthetic_catalog(args.items, rng)
        start = time.perf_counter()
        memory.index_catalog(catalog)
        build["index_catalog_s"] = round(time.perf_counter() - start, 2)
        print(f"catalog: {args.items} items in {build['index_catalog_s']} s")

        def search(q: int) -> object:
            return memory.search_catalog(query_texts[q], k=10)

        rows["catalog_search"] = percentiles(timed(search, args.queries))

        def search_filtered(q: int) -> object:
            return memory.search_catalog(
                query_texts[q], k=10, where={"genres": {"$contains": GENRES[q % len(GENRES)]}}
            )

        rows["catalog_search_genre_filter"] = percentiles(timed(search_filtered, args.queries))
        memory.close()

    print(f"\n{'design':38s} {'p50 ms':>9s} {'p99 ms':>9s} {'mean ms':>9s}")
    for name, row in rows.items():
        print(f"{name:38s} {row['p50_ms']:9.2f} {row['p99_ms']:9.2f} {row['mean_ms']:9.2f}")
    print("build:", build)
    write_json(
        args.out,
        {
            "machine": machine_info(),
            "chromadb": chromadb.__version__,
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "build": build,
            "latency": rows,
        },
    )


if __name__ == "__main__":
    main()
