"""A LangGraph checkpointer on plain Redis (>= 6): no RediSearch or RedisJSON module needed,
so it runs on any Redis, Valkey or managed Redis.

Key layout (every key starts with `prefix`; thread ids and namespaces are percent-encoded so
`:`, `{` and `}` in them cannot make two keys collide, the checkpoint id is always the last
part; the thread id sits in a `{...}` hash tag so all keys of one thread share a Redis Cluster
slot, which the scripts below rely on):

    {prefix}:{T}:keys            SET   every key of thread T (for delete_thread)
    {prefix}:{T}:ns              SET   the thread's checkpoint namespaces
    {prefix}:{T}:{N}:ids         ZSET  checkpoint ids of (T, N), all score 0: lexical order
                                       is creation order (uuid6 ids)
    {prefix}:{T}:{N}:cp:{C}      HASH  checkpoint (without channel values), metadata, parent,
                                       the JSON list of its blob fields
    {prefix}:{T}:{N}:blobs       HASH  "channel\0version" -> serialised channel value (only
                                       channels that changed are written: incremental)
    {prefix}:{T}:{N}:w:{C}       HASH  "task_id\0idx" -> one pending write of checkpoint C

Every value is the saver's `serde.dumps_typed` output ("type\0bytes").

Cost per call: put, put_writes and get_tuple are one round trip each, an atomic Lua script
(EVALSHA; Lua is in every Redis >= 2.6, no module): put O(channels changed + log n),
put_writes O(writes), get_tuple O(log n + writes + channels). list: one ZREVRANGEBYLEX per
page of 64 ids, one pipeline for their checkpoints and writes, one for the blobs of those
kept (metadata filters run client side after deserialising, like InMemorySaver's).
delete_thread: WATCH + SMEMBERS of the key set, then one MULTI/EXEC deleting them, O(keys).

With `ttl_s`, every key written gets that expiry; the thread-level keys (key set, namespaces,
ids, blobs) are refreshed on every write, so an active conversation stays, and a checkpoint
written more than `ttl_s` ago disappears (readers skip it).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
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
from memory import redis_url

DEFAULT_PREFIX = "agentrec:ckpt"
LIST_PAGE = 64
_EMPTY = "empty"


# A checkpoint read for `list`: id, stored checkpoint, metadata, parent id, raw writes.
_Picked = tuple[str, dict[str, Any], Any, str, list[bytes]]
_PickedList = list[_Picked]
_BlobRows = list[list[Any]]


class _Lua:
    """A server-side script, run by its SHA1 (loaded on first use)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


# KEYS: checkpoint hash, ids zset, namespaces set, key set, blobs hash.
# ARGV: checkpoint, metadata, parent id, checkpoint id, namespace, ttl (0: none), the JSON
# list of the checkpoint's blob fields, then the new blobs' field/value pairs.
_PUT_LUA = _Lua("""
redis.call('HSET', KEYS[1], 'checkpoint', ARGV[1], 'metadata', ARGV[2], 'parent', ARGV[3],
  'fields', ARGV[7])
redis.call('ZADD', KEYS[2], 0, ARGV[4])
redis.call('SADD', KEYS[3], ARGV[5])
local touched = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
if #ARGV > 7 then
  redis.call('HSET', KEYS[5], unpack(ARGV, 8))
  touched[5] = KEYS[5]
end
redis.call('SADD', KEYS[4], unpack(touched))
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  for _, key in ipairs(touched) do redis.call('EXPIRE', key, ttl) end
end
return 1
""")

# KEYS: ids zset, blobs hash. ARGV: checkpoint id ("": the latest), the (thread, namespace)
# key prefix. Returns false or [id, checkpoint, metadata, parent, write values, blob values];
# the checkpoint and writes keys are built here from the prefix (same hash tag, same slot).
_GET_LUA = _Lua("""
local id = ARGV[1]
if id == '' then
  local latest = redis.call('ZREVRANGEBYLEX', KEYS[1], '+', '-', 'LIMIT', 0, 1)
  if #latest == 0 then return false end
  id = latest[1]
end
local cp_key = ARGV[2] .. ':cp:' .. id
local cp = redis.call('HMGET', cp_key, 'checkpoint', 'metadata', 'parent', 'fields')
if not cp[1] then return false end
local writes = redis.call('HVALS', ARGV[2] .. ':w:' .. id)
local blobs = {}
local fields = cjson.decode(cp[4])
if #fields > 0 then blobs = redis.call('HMGET', KEYS[2], unpack(fields)) end
return {id, cp[1], cp[2], cp[3], writes, blobs}
""")

# KEYS: writes hash, key set. ARGV: ttl (0: none), then (field, value, replace) triples:
# HSET when replace is 1, else HSETNX.
_PUT_WRITES_LUA = _Lua("""
for i = 2, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('SADD', KEYS[2], KEYS[1])
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 1
""")


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
        # "%root" cannot come out of _q, so the root namespace meets no other
        return f"{self.thread(thread_id)}:{_q(ns) or '%root'}"

    def ids(self, thread_id: str, ns: str) -> str:
        return f"{self.ns(thread_id, ns)}:ids"

    def checkpoint(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{self.ns(thread_id, ns)}:cp:{checkpoint_id}"  # the last part: no escaping

    def blobs(self, thread_id: str, ns: str) -> str:
        return f"{self.ns(thread_id, ns)}:blobs"

    def writes(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{self.ns(thread_id, ns)}:w:{checkpoint_id}"

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
            redis_url.sync_client(url),
            aclient=redis_url.async_client(url),
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

    # ---- writes: one atomic Lua call each (one command, one reply, one round trip) ------

    def _eval(self, script: _Lua, keys: list[str], args: list[Any]) -> Any:
        client = self._sync()
        try:
            return client.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            client.script_load(script.source)
            return client.evalsha(script.sha, len(keys), *keys, *args)

    async def _aeval(self, script: _Lua, keys: list[str], args: list[Any]) -> Any:
        client = self._async()
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await client.script_load(script.source)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    def _get_call(
        self, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> tuple[list[str], list[Any]]:
        keys = [self.keys.ids(thread_id, ns), self.keys.blobs(thread_id, ns)]
        return keys, [checkpoint_id or "", self.keys.ns(thread_id, ns)]

    def _got(self, thread_id: str, ns: str, reply: Any) -> CheckpointTuple | None:
        """The tuple from a `_GET_LUA` reply."""
        if not reply:
            return None
        checkpoint_id, raw_checkpoint, raw_metadata, parent, writes, blobs = reply
        stored = self.serde.loads_typed(_decode_typed(raw_checkpoint))
        metadata = self.serde.loads_typed(_decode_typed(raw_metadata))
        return self._tuple(
            thread_id, ns, _text(checkpoint_id), stored, metadata, _text(parent), writes, blobs
        )

    def _put_call(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[list[str], list[Any], RunnableConfig]:
        thread_id, ns, parent_id = _target(config)
        stored: dict[str, Any] = {**checkpoint}
        values: dict[str, Any] = stored.pop("channel_values", {}) or {}
        checkpoint_id = checkpoint["id"]
        keys = [
            self.keys.checkpoint(thread_id, ns, checkpoint_id),
            self.keys.ids(thread_id, ns),
            self.keys.namespaces(thread_id),
            self.keys.keys(thread_id),
            self.keys.blobs(thread_id, ns),
        ]
        args: list[Any] = [
            _encode_typed(self.serde.dumps_typed(stored)),
            _encode_typed(self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))),
            parent_id or "",
            checkpoint_id,
            ns,
            self.ttl_s or 0,
            json.dumps(self._blob_fields(stored)),
        ]
        for channel, version in new_versions.items():
            typed = self.serde.dumps_typed(values[channel]) if channel in values else (_EMPTY, b"")
            args += [_blob_field(channel, version), _encode_typed(typed)]
        return keys, args, _config(thread_id, ns, checkpoint_id)

    def _put_writes_call(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> tuple[list[str], list[Any]]:
        thread_id, ns, checkpoint_id = _target(config)
        if checkpoint_id is None:
            raise ValueError("put_writes needs a checkpoint_id in the config")
        keys = [self.keys.writes(thread_id, ns, checkpoint_id), self.keys.keys(thread_id)]
        args: list[Any] = [self.ttl_s or 0]
        for idx, (channel, value) in enumerate(writes):
            index = WRITES_IDX_MAP.get(channel, idx)
            kind, data = self.serde.dumps_typed(value)
            header = json.dumps([task_id, index, channel, task_path, kind]).encode()
            # Regular writes are kept once per (task, idx); special ones (errors, interrupts:
            # negative indices) are replaced.
            args += [f"{task_id}\x00{index}", header + b"\n" + data, 1 if index < 0 else 0]
        return keys, args

    # ---- decoding ----------------------------------------------------------------------

    def _decode_writes(self, raw: Iterable[bytes]) -> list[PendingWrite]:
        rows = []
        for value in raw:
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
        writes: Iterable[bytes],
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
        keys, args, result = self._put_call(config, checkpoint, metadata, new_versions)
        self._eval(_PUT_LUA, keys, args)
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
        keys, args = self._put_writes_call(config, writes, task_id, task_path)
        self._eval(_PUT_WRITES_LUA, keys, args)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = _target(config)
        keys, args = self._get_call(thread_id, ns, checkpoint_id)
        return self._got(thread_id, ns, self._eval(_GET_LUA, keys, args))

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
                picked.append((cid, stored, metadata, parent, list(writes.values())))
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
        keys, args, result = self._put_call(config, checkpoint, metadata, new_versions)
        await self._aeval(_PUT_LUA, keys, args)
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
        keys, args = self._put_writes_call(config, writes, task_id, task_path)
        await self._aeval(_PUT_WRITES_LUA, keys, args)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = _target(config)
        keys, args = self._get_call(thread_id, ns, checkpoint_id)
        return self._got(thread_id, ns, await self._aeval(_GET_LUA, keys, args))

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
