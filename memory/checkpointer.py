"""A LangGraph checkpointer on plain Redis (>= 6): no RediSearch or RedisJSON module needed,
so it runs on any Redis, Valkey or managed Redis.

Key layout (every key starts with `prefix`; thread ids, namespaces and checkpoint ids are
percent-encoded so `:`, `{` and `}` in them cannot make two keys collide; the thread id sits in
a `{...}` hash tag so all keys of one thread live in one Redis Cluster slot):

    {prefix}:{T}:keys            SET   every key of thread T (for delete_thread)
    {prefix}:{T}:ns              SET   the thread's checkpoint namespaces
    {prefix}:{T}:{N}:ids         ZSET  checkpoint ids of (T, N), all score 0: lexical order
                                       is creation order (uuid6 ids)
    {prefix}:{T}:{N}:cp:{C}      HASH  checkpoint (without channel values), metadata, parent
    {prefix}:{T}:{N}:blobs       HASH  "channel\\0version" -> serialised channel value
    {prefix}:{T}:{N}:w:{C}       HASH  "task_id\\0idx" -> one pending write of checkpoint C

Cost per call (round trips): put 1 (one MULTI/EXEC), put_writes 1 (MULTI/EXEC),
get_tuple 2 with a checkpoint id (checkpoint + writes in one pipeline, then the blobs),
3 for the latest one (+ one ZREVRANGEBYLEX, O(log n)); list 3 per page of 64 checkpoints;
delete_thread 2 (WATCH + read the key set, then one MULTI that deletes them).

With `ttl_s`, every key written gets that expiry; the thread-level keys (key set, namespaces,
ids, blobs) are refreshed on every write, so an active conversation stays, and a checkpoint
written more than `ttl_s` ago disappears (readers skip it).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio as aredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from core.errors import ConfigError

DEFAULT_PREFIX = "agentrec:ckpt"
LIST_PAGE = 64
_EMPTY = "empty"


# A checkpoint read for `list`: id, stored checkpoint, metadata, parent id, raw writes.
_Picked = tuple[str, dict[str, Any], Any, str, dict[bytes, bytes]]
_PickedList = list[_Picked]
_BlobRows = list[list[Any]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _q(text: str) -> str:
    """Percent-encode a key part (keeps ids like uuids readable)."""
    return quote(text, safe="-_.~")


def _encode_typed(typed: tuple[str, bytes]) -> bytes:
    kind, data = typed
    return kind.encode() + b"\x00" + data


def _decode_typed(raw: bytes) -> tuple[str, bytes]:
    kind, _, data = raw.partition(b"\x00")
    return kind.decode(), data


def _blob_field(channel: str, version: str | int | float) -> str:
    return f"{channel}\x00{version}"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _check_binary(client: Any) -> None:
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if kwargs.get("decode_responses"):
        raise ConfigError("RedisSaver needs a Redis client with decode_responses=False")


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def thread(self, thread_id: str) -> str:
        return f"{self.prefix}:{{{_q(thread_id)}}}"

    def keys(self, thread_id: str) -> str:
        return f"{self.thread(thread_id)}:keys"

    def namespaces(self, thread_id: str) -> str:
        return f"{self.thread(thread_id)}:ns"

    def ns(self, thread_id: str, ns: str) -> str:
        return f"{self.thread(thread_id)}:{_q(ns) or '-'}"

    def ids(self, thread_id: str, ns: str) -> str:
        return f"{self.ns(thread_id, ns)}:ids"

    def checkpoint(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{self.ns(thread_id, ns)}:cp:{_q(checkpoint_id)}"

    def blobs(self, thread_id: str, ns: str) -> str:
        return f"{self.ns(thread_id, ns)}:blobs"

    def writes(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{self.ns(thread_id, ns)}:w:{_q(checkpoint_id)}"

    def keys_pattern(self) -> str:
        return f"{_glob_escape(self.prefix)}:{{*}}:keys"


def _target(config: RunnableConfig) -> tuple[str, str, str | None]:
    configurable = config["configurable"]
    return (
        str(configurable["thread_id"]),
        str(configurable.get("checkpoint_ns", "")),
        get_checkpoint_id(config),
    )


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


class RedisSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints, pending writes and channel values in plain Redis structures.

    Give a `redis.Redis` for the sync methods (`graph.invoke`) and/or a `redis.asyncio.Redis`
    for the async ones (`graph.ainvoke`); `from_url` makes both. Clients must not decode
    responses (values are binary).
    """

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        aclient: aredis.Redis | None = None,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: int | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        if client is None and aclient is None:
            raise ConfigError("RedisSaver needs a sync client, an async client or both")
        for c in (client, aclient):
            if c is not None:
                _check_binary(c)
        if ttl_s is not None and ttl_s <= 0:
            raise ConfigError(f"ttl_s must be positive, got {ttl_s}")
        self.client = client
        self.aclient = aclient
        self.keys = _Keys(prefix)
        self.ttl_s = ttl_s

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: int | None = None,
        serde: SerializerProtocol | None = None,
    ) -> RedisSaver:
        """A saver with a sync and an async client on `url` (connections open lazily)."""
        return cls(
            redis.Redis.from_url(url),
            aclient=aredis.Redis.from_url(url),
            prefix=prefix,
            ttl_s=ttl_s,
            serde=serde,
        )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    async def aclose(self) -> None:
        if self.aclient is not None:
            await self.aclient.aclose()

    def _sync(self) -> redis.Redis:
        if self.client is None:
            raise ConfigError("this RedisSaver has no sync client: use the async methods")
        return self.client

    def _async(self) -> aredis.Redis:
        if self.aclient is None:
            raise ConfigError("this RedisSaver has no async client: use the sync methods")
        return self.aclient

    # ---- versions ----------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded counter plus a random fraction: increasing and unique across forks."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # ---- write commands (queued on a sync or async pipeline alike) ----------------------

    def _queue_put(
        self,
        pipe: Any,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, ns, parent_id = _target(config)
        stored: dict[str, Any] = {**checkpoint}
        values: dict[str, Any] = stored.pop("channel_values", {}) or {}
        checkpoint_id = checkpoint["id"]
        cp_key = self.keys.checkpoint(thread_id, ns, checkpoint_id)
        ids_key = self.keys.ids(thread_id, ns)
        blobs_key = self.keys.blobs(thread_id, ns)
        ns_key = self.keys.namespaces(thread_id)
        keys_key = self.keys.keys(thread_id)
        pipe.hset(
            cp_key,
            mapping={
                "checkpoint": _encode_typed(self.serde.dumps_typed(stored)),
                "metadata": _encode_typed(
                    self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))
                ),
                "parent": parent_id or "",
            },
        )
        pipe.zadd(ids_key, {checkpoint_id: 0})
        pipe.sadd(ns_key, ns)
        touched = [cp_key, ids_key, ns_key, keys_key]
        if new_versions:
            blobs = {
                _blob_field(channel, version): _encode_typed(
                    self.serde.dumps_typed(values[channel]) if channel in values else (_EMPTY, b"")
                )
                for channel, version in new_versions.items()
            }
            pipe.hset(blobs_key, mapping=blobs)
            touched.append(blobs_key)
        pipe.sadd(keys_key, *touched)
        self._queue_expire(pipe, touched)
        return _config(thread_id, ns, checkpoint_id)

    def _queue_put_writes(
        self,
        pipe: Any,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> None:
        thread_id, ns, checkpoint_id = _target(config)
        if checkpoint_id is None:
            raise ValueError("put_writes needs a checkpoint_id in the config")
        writes_key = self.keys.writes(thread_id, ns, checkpoint_id)
        keys_key = self.keys.keys(thread_id)
        for idx, (channel, value) in enumerate(writes):
            index = WRITES_IDX_MAP.get(channel, idx)
            kind, data = self.serde.dumps_typed(value)
            header = json.dumps([task_id, index, channel, task_path, kind]).encode()
            field = f"{task_id}\x00{index}"
            # Regular writes are kept once per (task, idx); special ones (errors, interrupts,
            # negative indices) are replaced.
            if index >= 0:
                pipe.hsetnx(writes_key, field, header + b"\n" + data)
            else:
                pipe.hset(writes_key, field, header + b"\n" + data)
        pipe.sadd(keys_key, writes_key)
        self._queue_expire(pipe, [writes_key, keys_key])

    def _queue_expire(self, pipe: Any, keys: list[str]) -> None:
        if self.ttl_s is not None:
            for key in keys:
                pipe.expire(key, self.ttl_s)

    # ---- decoding ----------------------------------------------------------------------

    def _decode_writes(self, raw: dict[bytes, bytes]) -> list[PendingWrite]:
        rows = []
        for value in raw.values():
            header, _, data = value.partition(b"\n")
            task_id, index, channel, task_path, kind = json.loads(header)
            rows.append((writes_sort_key(task_path, task_id, index), task_id, channel, kind, data))
        rows.sort(key=lambda row: row[0])
        return [
            (task_id, channel, self.serde.loads_typed((kind, data)))
            for _, task_id, channel, kind, data in rows
        ]

    def _blob_fields(self, checkpoint: dict[str, Any]) -> list[str]:
        return [_blob_field(ch, ver) for ch, ver in checkpoint["channel_versions"].items()]

    def _tuple(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        stored: dict[str, Any],
        metadata: Any,
        parent: str,
        writes: dict[bytes, bytes],
        blobs: Sequence[Any],
    ) -> CheckpointTuple:
        values: dict[str, Any] = {}
        for channel, raw in zip(stored["channel_versions"], blobs, strict=True):
            if raw is None:
                continue
            kind, data = _decode_typed(raw)
            if kind != _EMPTY:
                values[channel] = self.serde.loads_typed((kind, data))
        checkpoint: Any = {**stored, "channel_values": values}
        return CheckpointTuple(
            config=_config(thread_id, ns, checkpoint_id),
            checkpoint=checkpoint,
            metadata=metadata,
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=self._decode_writes(writes),
        )

    def _loaded(self, raw: dict[bytes, bytes]) -> tuple[dict[str, Any], Any, str]:
        stored = self.serde.loads_typed(_decode_typed(raw[b"checkpoint"]))
        metadata = self.serde.loads_typed(_decode_typed(raw[b"metadata"]))
        return stored, metadata, raw.get(b"parent", b"").decode()

    @staticmethod
    def _matches(metadata: Any, filter: dict[str, Any] | None) -> bool:
        return not filter or all(metadata.get(k) == v for k, v in filter.items())

    @staticmethod
    def _ids_range(before: RunnableConfig | None) -> str:
        before_id = get_checkpoint_id(before) if before else None
        return f"({before_id}" if before_id else "+"

    # ---- sync API ----------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        pipe = self._sync().pipeline(transaction=True)
        result = self._queue_put(pipe, config, checkpoint, metadata, new_versions)
        pipe.execute()
        return result

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not writes:
            return
        pipe = self._sync().pipeline(transaction=True)
        self._queue_put_writes(pipe, config, writes, task_id, task_path)
        pipe.execute()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        client = self._sync()
        thread_id, ns, checkpoint_id = _target(config)
        if checkpoint_id is None:
            latest = client.zrevrangebylex(self.keys.ids(thread_id, ns), "+", "-", 0, 1)
            if not latest:
                return None
            checkpoint_id = _text(latest[0])
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(self.keys.checkpoint(thread_id, ns, checkpoint_id))
        pipe.hgetall(self.keys.writes(thread_id, ns, checkpoint_id))
        raw, writes = pipe.execute()
        if not raw:
            return None
        stored, metadata, parent = self._loaded(raw)
        fields = self._blob_fields(stored)
        blobs = client.hmget(self.keys.blobs(thread_id, ns), fields) if fields else []
        return self._tuple(thread_id, ns, checkpoint_id, stored, metadata, parent, writes, blobs)

    def _namespaces_sync(self, thread_id: str, ns: str | None) -> list[str]:
        if ns is not None:
            return [ns]
        members = self._sync().smembers(self.keys.namespaces(thread_id))
        return sorted(_text(m) for m in members)

    def _threads_sync(self, config: RunnableConfig | None) -> list[str]:
        if config is not None:
            return [str(config["configurable"]["thread_id"])]
        return self._threads_from_keys(list(self._sync().scan_iter(self.keys.keys_pattern())))

    def _threads_from_keys(self, keys: list[bytes]) -> list[str]:
        from urllib.parse import unquote

        start = len(self.keys.prefix) + 2
        return sorted(unquote(k.decode()[start : -len("}:keys")]) for k in keys)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        client = self._sync()
        wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
        wanted_id = get_checkpoint_id(config) if config else None
        remaining = limit
        for thread_id in self._threads_sync(config):
            for ns in self._namespaces_sync(thread_id, wanted_ns):
                high = self._ids_range(before)
                while remaining is None or remaining > 0:
                    if wanted_id is not None:
                        ids = [wanted_id] if high == "+" or wanted_id < high[1:] else []
                        high = "-"
                    else:
                        page = LIST_PAGE if filter or remaining is None else remaining
                        raw_ids = client.zrevrangebylex(
                            self.keys.ids(thread_id, ns), high, "-", 0, page
                        )
                        ids = [_text(i) for i in raw_ids]
                        high = f"({ids[-1]}" if len(ids) == page else "-"
                    if not ids:
                        break
                    pipe = client.pipeline(transaction=False)
                    for cid in ids:
                        pipe.hgetall(self.keys.checkpoint(thread_id, ns, cid))
                        pipe.hgetall(self.keys.writes(thread_id, ns, cid))
                    fetched = pipe.execute()
                    picked = self._pick(ids, fetched, filter, remaining)
                    if picked:
                        blob_pipe = client.pipeline(transaction=False)
                        self._queue_blobs(blob_pipe, thread_id, ns, picked)
                        for (cid, stored, md, parent, writes), blobs in zip(
                            picked, self._blob_rows(picked, blob_pipe.execute()), strict=True
                        ):
                            yield self._tuple(thread_id, ns, cid, stored, md, parent, writes, blobs)
                    if remaining is not None:
                        remaining -= len(picked)
                    if high == "-":
                        break
                if remaining is not None and remaining <= 0:
                    return

    def _queue_blobs(self, pipe: Any, thread_id: str, ns: str, picked: _PickedList) -> None:
        for _, stored, *_ in picked:
            if fields := self._blob_fields(stored):
                pipe.hmget(self.keys.blobs(thread_id, ns), fields)

    def _blob_rows(self, picked: _PickedList, results: Sequence[Any]) -> _BlobRows:
        """The HMGET results of `_queue_blobs`, with [] for checkpoints without channels."""
        rows = iter(results)
        return [next(rows) if self._blob_fields(stored) else [] for _, stored, *_ in picked]

    def _pick(
        self,
        ids: Sequence[str],
        fetched: Sequence[Any],
        filter: dict[str, Any] | None,
        remaining: int | None,
    ) -> _PickedList:
        picked: _PickedList = []
        for n, cid in enumerate(ids):
            if remaining is not None and len(picked) >= remaining:
                break
            raw, writes = fetched[2 * n], fetched[2 * n + 1]
            if not raw:  # expired
                continue
            stored, metadata, parent = self._loaded(raw)
            if self._matches(metadata, filter):
                picked.append((cid, stored, metadata, parent, writes))
        return picked

    def delete_thread(self, thread_id: str) -> None:
        keys_key = self.keys.keys(thread_id)
        with self._sync().pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(keys_key)
                    members = pipe.smembers(keys_key)
                    pipe.multi()
                    pipe.delete(keys_key, *members)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    # ---- async API ---------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        pipe = self._async().pipeline(transaction=True)
        result = self._queue_put(pipe, config, checkpoint, metadata, new_versions)
        await pipe.execute()
        return result

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not writes:
            return
        pipe = self._async().pipeline(transaction=True)
        self._queue_put_writes(pipe, config, writes, task_id, task_path)
        await pipe.execute()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        client = self._async()
        thread_id, ns, checkpoint_id = _target(config)
        if checkpoint_id is None:
            latest = await client.zrevrangebylex(self.keys.ids(thread_id, ns), "+", "-", 0, 1)
            if not latest:
                return None
            checkpoint_id = _text(latest[0])
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(self.keys.checkpoint(thread_id, ns, checkpoint_id))
        pipe.hgetall(self.keys.writes(thread_id, ns, checkpoint_id))
        raw, writes = await pipe.execute()
        if not raw:
            return None
        stored, metadata, parent = self._loaded(raw)
        fields = self._blob_fields(stored)
        blobs = await client.hmget(self.keys.blobs(thread_id, ns), fields) if fields else []
        return self._tuple(thread_id, ns, checkpoint_id, stored, metadata, parent, writes, blobs)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        client = self._async()
        wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
        wanted_id = get_checkpoint_id(config) if config else None
        remaining = limit
        if config is not None:
            threads = [str(config["configurable"]["thread_id"])]
        else:
            found = [k async for k in client.scan_iter(self.keys.keys_pattern())]
            threads = self._threads_from_keys(found)
        for thread_id in threads:
            if wanted_ns is not None:
                namespaces = [wanted_ns]
            else:
                members = await client.smembers(self.keys.namespaces(thread_id))
                namespaces = sorted(_text(m) for m in members)
            for ns in namespaces:
                high = self._ids_range(before)
                while remaining is None or remaining > 0:
                    if wanted_id is not None:
                        ids = [wanted_id] if high == "+" or wanted_id < high[1:] else []
                        high = "-"
                    else:
                        page = LIST_PAGE if filter or remaining is None else remaining
                        raw_ids = await client.zrevrangebylex(
                            self.keys.ids(thread_id, ns), high, "-", 0, page
                        )
                        ids = [_text(i) for i in raw_ids]
                        high = f"({ids[-1]}" if len(ids) == page else "-"
                    if not ids:
                        break
                    pipe = client.pipeline(transaction=False)
                    for cid in ids:
                        pipe.hgetall(self.keys.checkpoint(thread_id, ns, cid))
                        pipe.hgetall(self.keys.writes(thread_id, ns, cid))
                    fetched = await pipe.execute()
                    picked = self._pick(ids, fetched, filter, remaining)
                    if picked:
                        blob_pipe = client.pipeline(transaction=False)
                        self._queue_blobs(blob_pipe, thread_id, ns, picked)
                        for (cid, stored, md, parent, writes), blobs in zip(
                            picked, self._blob_rows(picked, await blob_pipe.execute()), strict=True
                        ):
                            yield self._tuple(thread_id, ns, cid, stored, md, parent, writes, blobs)
                    if remaining is not None:
                        remaining -= len(picked)
                    if high == "-":
                        break
                if remaining is not None and remaining <= 0:
                    return

    async def adelete_thread(self, thread_id: str) -> None:
        keys_key = self.keys.keys(thread_id)
        async with self._async().pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(keys_key)
                    members = await pipe.smembers(keys_key)
                    pipe.multi()
                    pipe.delete(keys_key, *members)
                    await pipe.execute()
                    return
                except redis.WatchError:
                    continue
