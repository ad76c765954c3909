"""Long-term memory in Chroma: the item catalog's vectors and every user's memories.

Two collections, both with cosine distance and no Chroma embedding function (Chroma's
default one downloads a model at first use): vectors are always computed here, by any
LangChain `Embeddings` (default `HashedNgramEmbeddings`), or passed by the caller.

- The catalog collection holds one record per item: id = item id, document = the item's
  text, metadata = its title and each attribute's values as a list of strings (filter with
  `{"genres": {"$contains": "Comedy"}}`). `search_catalog` is Chroma's HNSW query.
- User memories (stated preferences, session summaries, feedback) live in `memory_shards`
  collections; a hash of the user id picks the user's one, and every record carries the user
  id in its metadata. Every read goes through `_user_filter`, which needs a non-empty user
  id, so no call can reach another user's memories (results are checked again on the way
  out). `recall` fetches the user's own records with a metadata-filtered `get` and ranks
  them by exact cosine in numpy: a user has few memories. Why (benchmarks/long_term_memory.py,
  100,000 memories of 10,000 users, 2 cores, p50): on one collection a filtered HNSW
  `query` took 55 ms and a filtered `get` + numpy 9.6 ms, both growing with the
  collection's size; on 16 hash shards 4.0 and 1.7 ms, on 64 shards 1.5 and 0.8 ms; one
  collection per user 10 ms (the collection lookup dominates). `recall` end to end on 64
  shards: 1.3 ms p50, 2.4 ms p99. Users with more than `exact_recall_limit` memories fall
  back to the filtered HNSW query of their shard.

Embedded by default (`chromadb.PersistentClient` in `<data_dir>/chroma`); a Chroma server
when `CHROMA_HOST` is set. Connection failures of the server client raise
`ChromaUnavailable`; the same object works again once the server is back.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

import chromadb
import httpx
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from langchain_core.embeddings import Embeddings

from core.errors import AgentrecError, Unavailable
from core.settings import Settings
from recdata.dataset import Dataset
from tools.embeddings import HashedNgramEmbeddings, item_text

MemoryKind = Literal["stated_preference", "session_summary", "feedback"]
MEMORY_KINDS: tuple[MemoryKind, ...] = get_args(MemoryKind)
MetaValue = str | int | float | bool

CATALOG_COLLECTION = "catalog"
MEMORY_COLLECTION = "user_memories"
_RESERVED_META = frozenset({"user_id", "kind", "created_at"})
_COSINE = {"hnsw": {"space": "cosine"}}
_T = TypeVar("_T")


class ChromaUnavailable(Unavailable):
    """The Chroma server cannot be reached (down, restarting, wrong host or port)."""

    def __init__(self, where: str, cause: BaseException) -> None:
        self.where = where
        super().__init__(f"Chroma at {where} is unavailable ({type(cause).__name__}: {cause})")


@dataclass(frozen=True, slots=True)
class Memory:
    """One thing remembered about a user."""

    memory_id: str
    user_id: str
    kind: MemoryKind
    text: str
    created_at: float
    meta: Mapping[str, MetaValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecalledMemory:
    """A memory and its cosine similarity to the recall query."""

    memory: Memory
    score: float


ProgressCallback = Callable[[int, int], None]
"""Called as `progress(done, total)` after each batch written."""


def _check_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValueError(f"a non-empty user id is required, got {user_id!r}")
    return user_id


def _check_kind(kind: str) -> MemoryKind:
    if kind not in MEMORY_KINDS:
        raise ValueError(f"memory kind must be one of {', '.join(MEMORY_KINDS)}, got {kind!r}")
    return cast(MemoryKind, kind)


def _user_filter(user_id: str, kinds: Sequence[str] | None = None) -> dict[str, Any]:
    """The `where` of every read of the memories collection: always the user's id."""
    only_user: dict[str, Any] = {"user_id": _check_user_id(user_id)}
    if kinds is None:
        return only_user
    checked = [_check_kind(k) for k in kinds]
    if not checked:
        raise ValueError("kinds must name at least one memory kind (or be None for all)")
    return {"$and": [only_user, {"kind": {"$in": checked}}]}


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(matrix / norms, dtype=np.float32)


def catalog_metadata(title: str, attributes: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """An item's metadata as Chroma stores it: the title, each attribute as a string list.

    Empty attributes are left out (Chroma rejects empty lists); an attribute named like the
    title, empty or like a Chroma-reserved key (leading `#` or `$`) is stored with an
    `attr_` prefix.
    """
    metadata: dict[str, Any] = {"title": title}
    for name, values in attributes.items():
        strings = [str(v) for v in values if str(v)]
        if not strings:
            continue
        reserved = name in ("", "title") or name.startswith(("#", "$"))
        key = f"attr_{name}" if reserved else name
        metadata[key] = strings
    return metadata


class LongTermMemory:
    """The catalog and user memories in one Chroma database (embedded or a server)."""

    def __init__(
        self,
        client: ClientAPI,
        embeddings: Embeddings | None = None,
        *,
        where: str = "embedded",
        catalog_collection: str = CATALOG_COLLECTION,
        memory_collection: str = MEMORY_COLLECTION,
        memory_shards: int = 64,
        exact_recall_limit: int = 2000,
    ) -> None:
        if memory_shards < 1:
            raise ValueError(f"memory_shards must be at least 1, got {memory_shards}")
        self.client = client
        self.embeddings = embeddings if embeddings is not None else HashedNgramEmbeddings()
        self.where = where
        self.catalog_collection = catalog_collection
        self.memory_collection = memory_collection
        self.memory_shards = memory_shards
        self.exact_recall_limit = exact_recall_limit
        self._collections: dict[str, Collection] = {}

    # construction -------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, settings: Settings, embeddings: Embeddings | None = None, **options: Any
    ) -> LongTermMemory:
        """A Chroma server when `settings.chroma_host` is set, else embedded in data_dir.

        `options` go to the constructor (`memory_shards`, `exact_recall_limit`, ...)."""
        if settings.chroma_host:
            return cls.remote(settings.chroma_host, settings.chroma_port, embeddings, **options)
        return cls.embedded(Path(settings.data_dir) / "chroma", embeddings, **options)

    @classmethod
    def embedded(
        cls, path: Path, embeddings: Embeddings | None = None, **options: Any
    ) -> LongTermMemory:
        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
        return cls(client, embeddings, where=str(path), **options)

    @classmethod
    def remote(
        cls,
        host: str,
        port: int,
        embeddings: Embeddings | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 2.0,
        **options: Any,
    ) -> LongTermMemory:
        """A client of the Chroma server at host:port (which must be up now)."""
        where = f"{host}:{port}"
        try:
            client = chromadb.HttpClient(
                host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False)
            )
        except (httpx.TransportError, ConnectionError) as error:
            raise ChromaUnavailable(where, error) from error
        except ValueError as error:
            # chromadb turns the first request's connection error into a ValueError
            if isinstance(error.__context__, httpx.TransportError):
                raise ChromaUnavailable(where, error.__context__) from error
            raise
        # chromadb's HTTP client waits forever by default; bound it so an outage fails fast.
        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        return cls(client, embeddings, where=where, **options)

    def close(self) -> None:
        self._collections.clear()
        close = getattr(self.client, "close", None)  # not on the ClientAPI protocol
        if callable(close):
            close()

    def __enter__(self) -> LongTermMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # plumbing -----------------------------------------------------------------------

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except (httpx.TransportError, ConnectionError) as error:
            raise ChromaUnavailable(self.where, error) from error

    def _run(self, name: str, action: Callable[[Collection], _T]) -> _T:
        """Run `action` on collection `name`; a collection that vanished (a server restarted
        on an empty directory) is looked up again once."""
        with self._reachable():
            try:
                return action(self._collection(name))
            except NotFoundError:
                self._collections.pop(name, None)
                return action(self._collection(name))

    def _collection(self, name: str) -> Collection:
        collection = self._collections.get(name)
        if collection is None:
            collection = self.client.get_or_create_collection(
                name, configuration=cast(Any, _COSINE), embedding_function=None
            )
            self._collections[name] = collection
        return collection

    def _embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(self.embeddings, HashedNgramEmbeddings):
            return self.embeddings.embed_matrix(texts)
        return np.asarray(self.embeddings.embed_documents(list(texts)), dtype=np.float32)

    def _embed_query(self, text: str) -> np.ndarray:
        if isinstance(self.embeddings, HashedNgramEmbeddings):
            return self.embeddings.embed_matrix([text])[0]
        return np.asarray(self.embeddings.embed_query(text), dtype=np.float32)

    def warm_up(self) -> None:
        """Open the catalog and every memory shard now, so that no request pays for the
        first access to a collection (tens of ms each in the embedded client)."""
        names = [self.catalog_collection]
        names.extend(self._shard_name(shard) for shard in range(self.memory_shards))
        for name in names:
            self._run(name, lambda c: c.get(limit=1, include=[]))

    def heartbeat(self) -> int:
        """Chroma's clock in nanoseconds; raises `ChromaUnavailable` when the server is down."""
        with self._reachable():
            return int(self.client.heartbeat())

    # catalog ------------------------------------------------------------------------

    def index_catalog(
        self,
        dataset: Dataset,
        vectors: np.ndarray | None = None,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
        collection: str | None = None,
    ) -> int:
        """Upsert every item of `dataset` into `collection` (the default catalog collection
        when None); returns the number of items written.

        `vectors` (one row per item, in catalog order) replaces the text embeddings, e.g.
        collaborative item vectors; the collection keeps the dimension it was first given.
        """
        items = dataset.items
        if vectors is not None and vectors.shape[0] != len(items):
            raise ValueError(f"vectors has {vectors.shape[0]} rows for {len(items)} items")
        with self._reachable():
            limit = self.client.get_max_batch_size()
        size = min(batch_size or limit, limit)
        total = len(items)
        for lo in range(0, total, size):
            part = items[lo : lo + size]
            texts = [item_text(item) for item in part]
            block = vectors[lo : lo + size] if vectors is not None else self._embed_texts(texts)
            ids = [item.item_id for item in part]
            metadatas = [catalog_metadata(it.title, it.attributes) for it in part]
            embeddings = np.asarray(block, dtype=np.float32)

            def upsert(
                c: Collection,
                ids: list[str] = ids,
                texts: list[str] = texts,
                embeddings: np.ndarray = embeddings,
                metadatas: list[Any] = metadatas,
            ) -> None:
                c.upsert(ids=ids, embeddings=embeddings, documents=texts, metadatas=metadatas)

            self._run(collection or self.catalog_collection, upsert)
            if progress is not None:
                progress(min(lo + size, total), total)
        return total

    def search_catalog(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int = 10,
        where: Mapping[str, Any] | None = None,
        collection: str | None = None,
    ) -> list[tuple[str, float]]:
        """The `k` items closest to a text or a vector, best first, as (item_id, cosine)."""
        vector = self._embed_query(query) if isinstance(query, str) else np.asarray(query)
        result = self._run(
            collection or self.catalog_collection,
            lambda c: c.query(
                query_embeddings=np.asarray(vector, dtype=np.float32)[np.newaxis, :],
                n_results=k,
                where=cast(Any, dict(where)) if where else None,
                include=["distances"],
            ),
        )
        distances = (result["distances"] or [[]])[0]
        return [
            (item_id, 1.0 - float(d))
            for item_id, d in zip(result["ids"][0], distances, strict=True)
        ]

    def catalog_size(self, collection: str | None = None) -> int:
        return self._run(collection or self.catalog_collection, lambda c: c.count())

    # user memories ------------------------------------------------------------------

    def memory_shard(self, user_id: str) -> str:
        """The collection holding `user_id`'s memories: a BLAKE2b hash of the id picks one of
        `memory_shards` (the count is in the name, so another count never misroutes)."""
        digest = hashlib.blake2b(_check_user_id(user_id).encode(), digest_size=8).digest()
        shard = int.from_bytes(digest, "little") % self.memory_shards
        return self._shard_name(shard)

    def _shard_name(self, shard: int) -> str:
        return f"{self.memory_collection}.{shard:03d}-of-{self.memory_shards:03d}"

    def remember(
        self,
        user_id: str,
        kind: MemoryKind,
        text: str,
        meta: Mapping[str, MetaValue] | None = None,
        vector: np.ndarray | None = None,
    ) -> str:
        """Store one memory of `user_id`; returns its id."""
        vectors = None if vector is None else np.asarray(vector)[np.newaxis, :]
        return self.remember_many([(user_id, kind, text, meta)], vectors)[0]

    def remember_many(
        self,
        records: Sequence[tuple[str, MemoryKind, str, Mapping[str, MetaValue] | None]],
        vectors: np.ndarray | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Store (user_id, kind, text, meta) records in one write; returns their ids. With
        `ids` (one per record) the write is idempotent: writing the same ids again replaces
        those memories instead of adding copies (a retried write)."""
        if not records:
            return []
        if ids is not None and len(ids) != len(records):
            raise ValueError(f"{len(ids)} ids for {len(records)} records")
        given = list(ids) if ids is not None else None
        now = time.time()
        ids = []
        metadatas: list[dict[str, Any]] = []
        for user_id, kind, _text, meta in records:
            extra = dict(meta or {})
            clash = _RESERVED_META.intersection(extra)
            if clash:
                raise ValueError(f"meta may not set the reserved keys {sorted(clash)}")
            for key, value in extra.items():
                if not isinstance(value, str | int | float | bool):
                    raise ValueError(f"meta[{key!r}] must be a str, int, float or bool")
            ids.append(given[len(ids)] if given is not None else uuid.uuid4().hex)
            metadatas.append(
                {
                    **extra,
                    "user_id": _check_user_id(user_id),
                    "kind": _check_kind(kind),
                    "created_at": now,
                }
            )
        texts = [text for _, _, text, _ in records]
        block = self._embed_texts(texts) if vectors is None else np.asarray(vectors, np.float32)
        if block.shape[0] != len(records):
            raise ValueError(f"vectors has {block.shape[0]} rows for {len(records)} records")
        by_shard: dict[str, list[int]] = {}
        for row, metadata in enumerate(metadatas):
            by_shard.setdefault(self.memory_shard(metadata["user_id"]), []).append(row)
        for name, rows in by_shard.items():

            def add(c: Collection, rows: list[int] = rows) -> None:
                c.upsert(
                    ids=[ids[r] for r in rows],
                    embeddings=block[rows],
                    documents=[texts[r] for r in rows],
                    metadatas=cast(Any, [metadatas[r] for r in rows]),
                )

            self._run(name, add)
        return list(ids)

    def recall(
        self,
        user_id: str,
        query: str | np.ndarray,
        k: int = 5,
        kinds: Sequence[MemoryKind] | None = None,
    ) -> list[RecalledMemory]:
        """The `k` memories of `user_id` (and only theirs) closest to `query`, best first."""
        where = _user_filter(user_id, kinds)
        vector = _normalised(
            self._embed_query(query) if isinstance(query, str) else np.asarray(query, np.float32)
        )
        shard = self.memory_shard(user_id)
        got = self._run(
            shard,
            lambda c: c.get(
                where=cast(Any, where),
                limit=self.exact_recall_limit + 1,
                include=["embeddings", "documents", "metadatas"],
            ),
        )
        if len(got["ids"]) > self.exact_recall_limit:
            return self._recall_ann(shard, where, vector, k)
        if not got["ids"] or k <= 0:
            return []
        scores = _normalised(np.asarray(got["embeddings"], dtype=np.float32)) @ vector
        order = np.argsort(-scores, kind="stable")[:k]
        documents = got["documents"] or []
        metadatas = got["metadatas"] or []
        return [
            RecalledMemory(
                _memory(got["ids"][i], documents[i], metadatas[i], user_id), float(scores[i])
            )
            for i in order
        ]

    def _recall_ann(
        self, shard: str, where: dict[str, Any], vector: np.ndarray, k: int
    ) -> list[RecalledMemory]:
        result = self._run(
            shard,
            lambda c: c.query(
                query_embeddings=vector[np.newaxis, :],
                n_results=k,
                where=cast(Any, where),
                include=["documents", "metadatas", "distances"],
            ),
        )
        user_id = where.get("user_id") or where["$and"][0]["user_id"]
        ids = result["ids"][0]
        documents = (result["documents"] or [[]])[0]
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            RecalledMemory(_memory(ids[i], documents[i], metadatas[i], user_id), 1.0 - distances[i])
            for i in range(len(ids))
        ]

    def memories(self, user_id: str, kinds: Sequence[MemoryKind] | None = None) -> list[Memory]:
        """Every memory of `user_id`, oldest first."""
        where = _user_filter(user_id, kinds)
        got = self._run(
            self.memory_shard(user_id),
            lambda c: c.get(where=cast(Any, where), include=["documents", "metadatas"]),
        )
        documents = got["documents"] or []
        metadatas = got["metadatas"] or []
        found = [
            _memory(memory_id, documents[i], metadatas[i], user_id)
            for i, memory_id in enumerate(got["ids"])
        ]
        return sorted(found, key=lambda m: (m.created_at, m.memory_id))

    def forget_user(self, user_id: str) -> int:
        """Delete every memory of `user_id`; returns how many were deleted."""
        where = _user_filter(user_id)
        shard = self.memory_shard(user_id)
        ids = self._run(shard, lambda c: c.get(where=cast(Any, where), include=[]))["ids"]
        if ids:
            self._run(shard, lambda c: c.delete(ids=ids))
        return len(ids)


def memory_id(
    user_id: str, kind: str, text: str, meta: Mapping[str, MetaValue] | None = None
) -> str:
    """A memory's id derived from what it says (user, kind, text, meta): writing it twice
    keeps one memory."""
    payload = json.dumps([user_id, kind, text, sorted((meta or {}).items())], ensure_ascii=False)
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def _memory(memory_id: str, text: str | None, metadata: Mapping[str, Any], user_id: str) -> Memory:
    stored_user = metadata.get("user_id")
    if stored_user != user_id:  # the filter guarantees this; never hand out another's memory
        raise AgentrecError(f"memory {memory_id} belongs to another user")
    meta = {k: v for k, v in metadata.items() if k not in _RESERVED_META}
    return Memory(
        memory_id=memory_id,
        user_id=user_id,
        kind=_check_kind(str(metadata.get("kind"))),
        text=text or "",
        created_at=float(metadata.get("created_at", 0.0)),
        meta=meta,
    )
