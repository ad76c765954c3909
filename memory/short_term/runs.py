"""Runs in short-term memory: each run's replayable trace (a Redis Stream, or one string for a
finished one-shot run nobody follows), its blackboard and its state (alive, cancel asked,
finished); followers read it live, and a run whose process died is closed as lost.

A one-shot run that nobody follows live keeps its (usually summarised) events in one string
instead of a stream: a Redis stream costs at least 4.7 KB (a preallocated node), a string
the size of its text. Readers see both the same way.

The trace uses explicit stream ids `0-<seq>` so "everything after sequence n" is one XRANGE
and a blocking XREAD, with no lookup table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis
import redis.asyncio
from redis.commands.core import Script

from memory.connection import MemoryStoreError, MemoryUnavailable
from memory.short_term.base import (
    StoreBase,
    decoded,
    max_block_ms,
    redis_errors_as_unavailable,
    run_state_key,
    run_summary_key,
    server_name,
    trace_key,
)


class RunFinished(MemoryStoreError):
    """An event was appended to the trace of a run already marked finished."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id!r} is finished; its trace takes no more events")


APPEND_EVENT = """
if redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then return false end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 1
if #last > 0 then seq = tonumber(string.match(last[1][1], '%-(%d+)$')) + 1 end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. seq, 'data', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return id
"""

# Several trace events in one step, with the seqs their producer gave them. KEYS: trace
# stream, run state. ARGV: TTL, MAXLEN, then (seq, JSON) pairs in increasing seq. A seq the
# stream already holds is skipped (a retried flush). Returns the stream's last seq, or false
# if the run is finished.
# Appends the (seq, JSON) pairs of ARGV above the stream's last seq; leaves `seq` the last.
_APPEND_PAIRS = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 0
if #last > 0 then seq = tonumber(string.match(last[1][1], '%-(%d+)$')) end
for i = 3, #ARGV, 2 do
  local n = tonumber(ARGV[i])
  if n > seq then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. n, 'data', ARGV[i + 1])
    seq = n
  end
end
"""

APPEND_EVENTS = (
    """
if redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then return false end"""
    + _APPEND_PAIRS
    + """redis.call('EXPIRE', KEYS[1], ARGV[1])
return seq
"""
)


# The closing events of a lost run, only if nothing finished it: KEYS trace, state, summary; ARGV as
# APPEND_EVENTS. Marks the run finished. Returns 1, or 0 if it was finished already.
END_LOST_RUN = (
    """
if redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end"""
    + _APPEND_PAIRS
    + """redis.call('HSET', KEYS[2], 'finished_at', redis.call('TIME')[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""
)

# KEYS: trace, state, summary. ARGV: TTL. Flags a cancel for the run's process to see.
REQUEST_CANCEL = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 'finished' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then return 'finished' end
redis.call('HSET', KEYS[2], 'cancel_requested', '1')
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 'cancelling'
"""


def lost_run_events(
    run_id: str, last_seq: int, recommendation_id: str | None = None
) -> list[dict[str, Any]]:
    """The closing events of a run whose process died after its event `last_seq`; the
    `run_finished` carries the run's `recommendation_id` (from its `run_started`) if known."""
    now = time.time()
    message = "the server running this run stopped before it finished; start a new run"
    error = {"type": "error", "run_id": run_id, "seq": last_seq + 1, "ts": now,
             "code": "run_lost", "message": message, "recoverable": False}  # fmt: skip
    finished = {"type": "run_finished", "run_id": run_id, "seq": last_seq + 2, "ts": now,
                "status": "error", "output": {"recommendations": [], "degraded": []}}  # fmt: skip
    if recommendation_id:
        finished["recommendation_id"] = recommendation_id
    return [error, finished]


def _started_recommendation_id(entries: Any) -> str | None:
    """The `recommendation_id` of a trace's first entry if it is the run's `run_started`
    (a trace trimmed to `max_events` has lost it)."""
    events = _events(entries)
    if not events or events[0].get("type") != "run_started" or events[0]["seq"] != 1:
        return None
    value = events[0].get("recommendation_id")
    return value if isinstance(value, str) and value else None


def _with_recommendation_id(events: list[dict[str, Any]], recommendation_id: str | None) -> None:
    """Give the `run_finished` among `events` the run's recommendation id, if it has none."""
    if recommendation_id is None:
        return
    for event in events:
        if event.get("type") == "run_finished" and not event.get("recommendation_id"):
            event["recommendation_id"] = recommendation_id


def _seq_of(stream_id: Any) -> int:
    return int(decoded(stream_id).rpartition("-")[2])


def _events(entries: Any) -> list[dict[str, Any]]:
    events = []
    for stream_id, fields in entries or []:
        event = json.loads(fields.get("data", fields.get(b"data")))
        event["seq"] = _seq_of(stream_id)
        events.append(event)
    return events


def _xread_events(reply: Any) -> list[dict[str, Any]]:
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3 replies map stream -> [entries]
        return _events(next(iter(reply.values()))[0])
    return _events(reply[0][1])


def _stored_events(entries: Any, summary: Any, after_seq: int) -> list[dict[str, Any]]:
    """A run's events after `after_seq` from its trace stream, else from its summary."""
    if entries or summary is None:
        return _events(entries)
    return [e for e in json.loads(summary) if e["seq"] > after_seq]


class RunTraces(StoreBase):
    """The traces, blackboards and states of runs."""

    _append_event: Script
    _append_events: Script
    _end_lost_run: Script
    _request_cancel: Script

    @redis_errors_as_unavailable
    def put_blackboard(self, run_id: str, key: str, value_json: str) -> None:
        """Store one JSON-encoded entry on the run's blackboard (refreshes its TTL)."""
        json.loads(value_json)  # refuse what other agents could not read back
        name = self.blackboard_key(run_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(name, key, value_json)
        pipe.expire(name, self.trace_ttl_s)
        pipe.execute()

    @redis_errors_as_unavailable
    def get_blackboard(self, run_id: str) -> dict[str, str]:
        """Every entry of the run's blackboard, as the JSON strings that were put."""
        raw = cast(dict[Any, Any], self.client.hgetall(self.blackboard_key(run_id)))
        return {decoded(k): decoded(v) for k, v in raw.items()}

    @redis_errors_as_unavailable
    def append_event(self, run_id: str, event: Mapping[str, Any]) -> str:
        """Append an event (a JSON-able dict with a `type`) to the run's trace; it gets the
        next `seq` (1, 2, ...), `run_id` and, unless given, `ts`. Returns the stream id."""
        if not isinstance(event.get("type"), str):
            raise ValueError("a trace event needs a string 'type'")
        payload = {k: v for k, v in event.items() if k != "seq"}
        payload["run_id"] = run_id
        payload.setdefault("ts", time.time())
        result = self._append_event(
            keys=[self.trace_key(run_id), self.run_state_key(run_id)],
            args=[json.dumps(payload, ensure_ascii=False), self.trace_ttl_s, self.max_events],
        )
        if result is None:
            raise RunFinished(run_id)
        return decoded(result)

    @redis_errors_as_unavailable
    def append_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        """Append events numbered by their producer (each has an int `seq`, increasing) in
        one round trip; seqs already stored are skipped, so a retried flush never doubles an
        event. Returns the last stored seq."""
        args: list[Any] = [self.trace_ttl_s, self.max_events]
        now = time.time()
        previous = 0
        for event in events:
            if not isinstance(event.get("type"), str):
                raise ValueError("a trace event needs a string 'type'")
            seq = event.get("seq")
            if not isinstance(seq, int) or seq <= previous:
                raise ValueError("events need increasing positive int seqs")
            previous = seq
            payload = {k: v for k, v in event.items() if k != "seq"}
            payload["run_id"] = run_id
            payload.setdefault("ts", now)
            args += [seq, json.dumps(payload, ensure_ascii=False)]
        result = self._append_events(
            keys=[self.trace_key(run_id), self.run_state_key(run_id)], args=args
        )
        if result is None:
            raise RunFinished(run_id)
        return int(result)

    @redis_errors_as_unavailable
    def store_run(
        self, run_id: str, events: Sequence[Mapping[str, Any]], user_id: str | None
    ) -> None:
        """Keep a finished one-shot run's events (each with its int `seq`) in one string for
        `finished_trace_ttl_s`, indexed under `user_id`; one round trip."""
        now = time.time()
        payload = [{**event, "run_id": run_id, "ts": event.get("ts", now)} for event in events]
        pipe = self.client.pipeline(transaction=False)
        pipe.set(
            self.run_summary_key(run_id),
            json.dumps(payload, ensure_ascii=False),
            ex=self.finished_trace_ttl_s,
        )
        if user_id is not None:
            index = self.user_runs_key(user_id)
            pipe.zadd(index, {run_id: now})
            pipe.zremrangebyscore(index, "-inf", now - self.trace_ttl_s)
            pipe.expire(index, self.trace_ttl_s)
        pipe.execute()

    @redis_errors_as_unavailable
    def replay(self, run_id: str, after_seq: int | None = None) -> list[dict[str, Any]]:
        """The run's events with seq > `after_seq` (all when None), in order."""
        start = f"0-{(after_seq or 0) + 1}"
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(self.trace_key(run_id), min=start)
        pipe.get(self.run_summary_key(run_id))
        entries, summary = pipe.execute()
        return _stored_events(entries, summary, after_seq or 0)

    @redis_errors_as_unavailable
    def read_new(
        self, run_id: str, after_seq: int = 0, block_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Events with seq > `after_seq`; when there are none yet, waits up to `block_ms`
        (capped below the client's socket timeout) and returns [] on timeout."""
        block = None if block_ms is None else max(1, min(block_ms, self.max_block_ms))
        reply = self.client.xread({self.trace_key(run_id): f"0-{after_seq}"}, block=block)
        return _xread_events(reply)

    @redis_errors_as_unavailable
    def finish_run(self, run_id: str) -> None:
        """Mark the run finished: later `append_event` calls raise `RunFinished`. Its trace,
        state and blackboard now live `finished_trace_ttl_s` (replay, resume, followers)."""
        state = self.run_state_key(run_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(state, "finished_at", time.time())
        for key in (state, self.trace_key(run_id), self.blackboard_key(run_id)):
            pipe.expire(key, self.finished_trace_ttl_s)
        pipe.execute()

    @redis_errors_as_unavailable
    def touch_run(self, run_id: str) -> bool:
        """Say the run is alive (its process writes this while it runs; followers on other
        processes declare a run lost when it stops). Returns whether a cancel was asked."""
        state = self.run_state_key(run_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(state, "alive_at", time.time())
        pipe.expire(state, self.trace_ttl_s)
        pipe.hexists(state, "cancel_requested")
        return bool(pipe.execute()[-1])

    @redis_errors_as_unavailable
    def request_cancel(self, run_id: str) -> str:
        """Ask the process running `run_id` to cancel it (it checks while it says it is
        alive): "cancelling", "finished", or "unknown" when no such run is stored."""
        keys = [self.trace_key(run_id), self.run_state_key(run_id), self.run_summary_key(run_id)]
        result = self._request_cancel(keys=keys, args=[self.trace_ttl_s])
        return decoded(result)

    @redis_errors_as_unavailable
    def run_finished(self, run_id: str) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.hexists(self.run_state_key(run_id), "finished_at")
        pipe.exists(self.run_summary_key(run_id))
        return any(pipe.execute())

    @redis_errors_as_unavailable
    def end_lost_run(self, run_id: str) -> bool:
        """Close the trace of a run whose process died (an `error` run_lost and a
        `run_finished`, for every reader) unless something finished it; True if closed."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(self.trace_key(run_id), count=1)
        pipe.xrevrange(self.trace_key(run_id), count=1)
        first, last = pipe.execute()
        last_seq = _seq_of(last[0][0]) if last else 0
        args: list[Any] = [self.finished_trace_ttl_s, self.max_events]
        for event in lost_run_events(run_id, last_seq, _started_recommendation_id(first)):
            args += [event["seq"], json.dumps({k: v for k, v in event.items() if k != "seq"})]
        keys = [self.trace_key(run_id), self.run_state_key(run_id), self.run_summary_key(run_id)]
        return bool(self._end_lost_run(keys=keys, args=args))


class AsyncTraceReader:
    """The read side of run traces on an asyncio client, for the SSE endpoint: replay from
    a Last-Event-ID and tail live events without blocking the event loop. Same keys and
    event shape as `ShortTermMemory`."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "agentrec") -> None:
        self.client = client
        self.prefix = prefix
        self.server = server_name(client.connection_pool.connection_kwargs)
        self.max_block_ms = max_block_ms(client.connection_pool.connection_kwargs)

    async def replay(self, run_id: str, after_seq: int | None = None) -> list[dict[str, Any]]:
        """The run's events with seq > `after_seq` (all when None), in order."""
        start = f"0-{(after_seq or 0) + 1}"
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xrange(trace_key(self.prefix, run_id), min=start)
            pipe.get(run_summary_key(self.prefix, run_id))
            entries, summary = await pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc
        return _stored_events(entries, summary, after_seq or 0)

    async def read_new(
        self, run_id: str, after_seq: int = 0, block_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Events with seq > `after_seq`; when there are none yet, waits up to `block_ms`
        (capped below the client's socket timeout) and returns [] on timeout."""
        block = None if block_ms is None else max(1, min(block_ms, self.max_block_ms))
        try:
            reply = await self.client.xread(
                {trace_key(self.prefix, run_id): f"0-{after_seq}"}, block=block
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc
        return _xread_events(reply)

    async def run_finished(self, run_id: str) -> bool:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hexists(run_state_key(self.prefix, run_id), "finished_at")
            pipe.exists(run_summary_key(self.prefix, run_id))
            return any(await pipe.execute())
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc

    async def alive_at(self, run_id: str) -> float | None:
        """When the run's process last said it was alive (None: never)."""
        try:
            value = await self.client.hget(run_state_key(self.prefix, run_id), "alive_at")
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc
        return None if value is None else float(decoded(value))

    async def end_lost_run(
        self, run_id: str, events: list[dict[str, Any]], ttl_s: int, max_events: int
    ) -> bool:
        """Append the closing events of a run whose process died and mark it finished, in
        one step; False if the run finished (or was ended) meanwhile. The `run_finished`
        among `events` is given the run's recommendation id (from its `run_started`) when
        it has none, in place: what the caller delivers is what is stored."""
        try:
            first = await self.client.xrange(trace_key(self.prefix, run_id), count=1)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc
        _with_recommendation_id(events, _started_recommendation_id(first))
        args: list[Any] = [ttl_s, max_events]
        for event in events:
            args += [event["seq"], json.dumps({k: v for k, v in event.items() if k != "seq"})]
        keys = [
            trace_key(self.prefix, run_id),
            run_state_key(self.prefix, run_id),
            run_summary_key(self.prefix, run_id),
        ]
        try:
            script = self.client.register_script(END_LOST_RUN)
            done = await script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc
        return bool(done)
