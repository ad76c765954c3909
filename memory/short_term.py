"""Short-term memory in Redis: session turns, the blackboard of a run, the replayable trace of
a run (a Redis Stream), response caches and evolving user profiles.

Key layout (`P` is the prefix; braces are Redis Cluster hash tags, so the keys a script
touches together always live in one slot):

    P:session:{sid}              hash    user_id, created_at             TTL session_ttl_s
    P:session:{sid}:turns        list    JSON turns, oldest first        TTL session_ttl_s
    P:user:{uid}:sessions        zset    sid -> expiry (unix s)          TTL session_ttl_s
    P:user:{uid}:profile         hash    JSON [facet, name] -> weight    no TTL
    P:user:{uid}:feedback        list    JSON [item_id, ts] of positive feedback, capped
    P:user:{uid}:excluded        set     item ids never to recommend (dislikes)
    P:user:{uid}:events          stream  field data=JSON event (MAXLEN)
    P:user:{uid}:event_ids       hash    event_id -> 1 (idempotency)    TTL event_id_ttl_s
    P:user:{uid}:runs            zset    run id -> start (unix s)        TTL trace_ttl_s
    P:user:{uid}:memories        string  how many long-term memories     no TTL
    P:run:{rid}:blackboard       hash    key -> JSON value               TTL trace_ttl_s *
    P:run:{rid}:trace            stream  id 0-<seq>, field data=JSON     TTL trace_ttl_s *, MAXLEN
    P:run:{rid}:state            hash    finished_at, alive_at, cancel_requested   TTL *
    P:run:{rid}:summary          string  JSON events of a one-shot run   TTL finished_trace_ttl_s
    P:cache:<key>                string  cached value                    TTL given per entry

* While the run goes on, every write refreshes the TTL (`trace_ttl_s`); once the run is
finished its keys live `finished_trace_ttl_s` (long enough to resume or follow it).

Every write of a session refreshes the TTL of the session, its turns and the owner's index.
Feedback events are recorded by one script per user and batch: an event id seen before is
reported as a duplicate and changes nothing, so the event log, the profile, the feedback
history and the exclusions count every event exactly once.

A one-shot run that nobody follows live keeps its (usually summarised) events in one string
instead of a stream: a Redis stream costs at least 4.7 KB (a preallocated node), a string
the size of its text. Readers see both the same way.

The trace uses explicit stream ids `0-<seq>` so "everything after sequence n" is one XRANGE
and a blocking XREAD, with no lookup table.
"""

from __future__ import annotations

import functools
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import redis
import redis.asyncio

from core.settings import Settings
from memory.connection import MemoryStoreError, MemoryUnavailable

__all__ = [
    "AsyncTraceReader",
    "FeedbackRecord",
    "MemoryStoreError",
    "MemoryUnavailable",
    "RunFinished",
    "SessionNotFound",
    "ShortTermMemory",
    "Turn",
    "UserState",
    "lost_run_events",
]

P = ParamSpec("P")
R = TypeVar("R")


class SessionNotFound(MemoryStoreError):
    """The session does not exist (never created, expired or forgotten)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session {session_id!r} not found (it may have expired)")


class RunFinished(MemoryStoreError):
    """An event was appended to the trace of a run already marked finished."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id!r} is finished; its trace takes no more events")


@dataclass(frozen=True)
class FeedbackRecord:
    """One feedback event as the store applies it: logged once by `event_id`, then its
    profile change, history entry and exclusion change."""

    event_id: str
    event: Mapping[str, Any]
    """The event as received (JSON-able); kept in the user's event log."""
    item_id: str
    profile_delta: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """dP: facet -> name -> change, applied as P + eta * dP."""
    positive: bool = False
    """Whether the item joins the user's feedback history (what they engaged with)."""
    exclude: bool | None = None
    """True: never recommend the item again; False: lift an earlier exclusion."""
    ts: float | None = None


@dataclass(frozen=True)
class UserState:
    """What short-term memory holds about a user, read in one round trip."""

    profile: dict[str, dict[str, float]]
    feedback: list[tuple[str, float]]
    """(item_id, timestamp) of positive feedback, oldest first."""
    excluded: set[str]
    memories: int = 0
    """How many long-term memories the user has (so runs skip recalling from none)."""


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0


_APPEND_TURN = """
local owner = redis.call('HGET', KEYS[1], 'user_id')
if not owner then return false end
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
local cap = tonumber(ARGV[3])
if n > cap then
  redis.call('LTRIM', KEYS[2], -cap, -1)
  n = cap
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {owner, n}
"""

_APPEND_EVENT = """
if redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then return false end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 1
if #last > 0 then seq = tonumber(string.match(last[1][1], '%-(%d+)$')) + 1 end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. seq, 'data', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return id
"""

# P(u, t+1) = clip(P(u, t) + eta * dP, -1, 1), field by field, in one atomic step.
_UPDATE_PROFILE = """
local eta = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local value = current + eta * tonumber(ARGV[i + 1])
  if value > 1 then value = 1 elseif value < -1 then value = -1 end
  local text = string.format('%.17g', value)
  redis.call('HSET', KEYS[1], ARGV[i], text)
  out[#out + 1] = ARGV[i]
  out[#out + 1] = text
end
return out
"""

# Events of one user and batch, exactly once by event id. KEYS: event ids hash, event log,
# profile, feedback list, excluded set. ARGV: eta, id TTL, log MAXLEN, feedback cap, then per
# event: id, JSON, item id, feedback entry ('' for none), exclusion ('add', 'remove' or ''),
# n, and n (field, change) pairs. Returns 1 (stored) or 0 (duplicate) per event.
_RECORD_FEEDBACK = """
local eta = tonumber(ARGV[1])
local cap = tonumber(ARGV[4])
local out = {}
local i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i + 5])
  if redis.call('HSETNX', KEYS[1], ARGV[i], '1') == 1 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[i + 1])
    for j = 0, n - 1 do
      local f = ARGV[i + 6 + 2 * j]
      local value = tonumber(redis.call('HGET', KEYS[3], f) or '0')
        + eta * tonumber(ARGV[i + 7 + 2 * j])
      if value > 1 then value = 1 elseif value < -1 then value = -1 end
      redis.call('HSET', KEYS[3], f, string.format('%.17g', value))
    end
    if ARGV[i + 3] ~= '' then
      redis.call('RPUSH', KEYS[4], ARGV[i + 3])
      redis.call('LTRIM', KEYS[4], -cap, -1)
    end
    if ARGV[i + 4] == 'add' then
      redis.call('SADD', KEYS[5], ARGV[i + 2])
    elseif ARGV[i + 4] == 'remove' then
      redis.call('SREM', KEYS[5], ARGV[i + 2])
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  i = i + 6 + 2 * n
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return out
"""

# Several trace events in one step, with the seqs their producer gave them. KEYS: trace
# stream, run state. ARGV: TTL, MAXLEN, then (seq, JSON) pairs in increasing seq. A seq the
# stream already holds is skipped (a retried flush). Returns the stream's last seq, or false
# if the run is finished.
_APPEND_EVENTS = """
if redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then return false end
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
redis.call('EXPIRE', KEYS[1], ARGV[1])
return seq
"""


# The closing events of a lost run, only if nothing finished it: KEYS trace, state, summary; ARGV as
# _APPEND_EVENTS. Marks the run finished. Returns 1, or 0 if it was finished already.
_END_LOST_RUN = """
if redis.call('HEXISTS', KEYS[2], 'finished_at') == 1 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
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
redis.call('HSET', KEYS[2], 'finished_at', redis.call('TIME')[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""


# KEYS: busy. ARGV: lost run id, new run id, TTL. Moves the claim if the lost run holds it.
_TAKE_OVER_SESSION = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


# KEYS: trace, state, summary. ARGV: TTL. Flags a cancel for the run's process to see.
_REQUEST_CANCEL = """
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _seq_of(stream_id: Any) -> int:
    return int(_text(stream_id).rpartition("-")[2])


def _profile_field(facet: str, name: str) -> str:
    return json.dumps([facet, name], ensure_ascii=False)


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


def trace_key(prefix: str, run_id: str) -> str:
    return f"{prefix}:run:{{{run_id}}}:trace"


def run_state_key(prefix: str, run_id: str) -> str:
    return f"{prefix}:run:{{{run_id}}}:state"


def run_summary_key(prefix: str, run_id: str) -> str:
    return f"{prefix}:run:{{{run_id}}}:summary"


def _stored_events(entries: Any, summary: Any, after_seq: int) -> list[dict[str, Any]]:
    """A run's events after `after_seq` from its trace stream, else from its summary."""
    if entries or summary is None:
        return _events(entries)
    return [e for e in json.loads(summary) if e["seq"] > after_seq]


def _max_block_ms(connection_kwargs: Mapping[str, Any]) -> int:
    # A blocking read must return before the socket times out, or it reads as an outage.
    socket_timeout = connection_kwargs.get("socket_timeout")
    return int(socket_timeout * 1000) - 250 if socket_timeout else 60_000


def _server_name(connection_kwargs: Mapping[str, Any]) -> str:
    if "path" in connection_kwargs:
        return str(connection_kwargs["path"])
    return f"{connection_kwargs.get('host')}:{connection_kwargs.get('port')}"


def _redis_errors_as_unavailable(
    method: Callable[Concatenate[ShortTermMemory, P], R],
) -> Callable[Concatenate[ShortTermMemory, P], R]:
    @functools.wraps(method)
    def wrapper(self: ShortTermMemory, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc

    return wrapper


class ShortTermMemory:
    """Session, run and user state in Redis. Thread-safe (it only holds a redis-py client).

    `client` may decode responses or not. Connection and timeout errors surface as
    `MemoryUnavailable`; the same object keeps working once Redis is back.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "agentrec",
        session_ttl_s: int = 7 * 24 * 3600,
        trace_ttl_s: int = 3600,
        finished_trace_ttl_s: int = 600,
        max_turns: int = 1000,
        max_events: int = 10_000,
        max_feedback: int = 200,
        max_user_events: int = 10_000,
        event_id_ttl_s: int = 30 * 24 * 3600,
    ) -> None:
        if session_ttl_s < 1 or trace_ttl_s < 1 or finished_trace_ttl_s < 1:
            raise ValueError("TTLs must be at least one second")
        if max_turns < 1 or max_events < 1:
            raise ValueError("max_turns and max_events must be at least 1")
        self.client = client
        self.prefix = prefix
        self.session_ttl_s = session_ttl_s
        self.trace_ttl_s = trace_ttl_s
        self.finished_trace_ttl_s = finished_trace_ttl_s
        self.max_turns = max_turns
        self.max_events = max_events
        self.max_feedback = max_feedback
        self.max_user_events = max_user_events
        self.event_id_ttl_s = event_id_ttl_s
        self._record_feedback = client.register_script(_RECORD_FEEDBACK)
        self._append_events = client.register_script(_APPEND_EVENTS)
        self._request_cancel = client.register_script(_REQUEST_CANCEL)
        self._release_session = client.register_script(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"
        )
        self._take_over_session = client.register_script(_TAKE_OVER_SESSION)
        self._end_lost_run = client.register_script(_END_LOST_RUN)
        self._append_turn = client.register_script(_APPEND_TURN)
        self._append_event = client.register_script(_APPEND_EVENT)
        self._update_profile = client.register_script(_UPDATE_PROFILE)
        self.server = _server_name(client.connection_pool.connection_kwargs)
        self.max_block_ms = _max_block_ms(client.connection_pool.connection_kwargs)

    @classmethod
    def from_settings(
        cls, client: redis.Redis, settings: Settings, prefix: str = "agentrec"
    ) -> ShortTermMemory:
        """TTLs and bounds from the service settings."""
        return cls(
            client,
            prefix=prefix,
            session_ttl_s=settings.session_ttl_s,
            trace_ttl_s=settings.trace_ttl_s,
            finished_trace_ttl_s=settings.finished_trace_ttl_s,
            max_events=settings.trace_max_events,
        )

    # -- keys ----------------------------------------------------------------------------
    def session_key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}"

    def turns_key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}:turns"

    def user_sessions_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:sessions"

    def profile_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:profile"

    def feedback_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:feedback"

    def excluded_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:excluded"

    def user_events_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:events"

    def event_ids_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:event_ids"

    def memories_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:memories"

    def user_runs_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{{{user_id}}}:runs"

    def blackboard_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{{{run_id}}}:blackboard"

    def trace_key(self, run_id: str) -> str:
        return trace_key(self.prefix, run_id)

    def run_state_key(self, run_id: str) -> str:
        return run_state_key(self.prefix, run_id)

    def run_summary_key(self, run_id: str) -> str:
        return run_summary_key(self.prefix, run_id)

    def cache_key(self, key: str) -> str:
        return f"{self.prefix}:cache:{key}"

    # -- sessions ------------------------------------------------------------------------
    @_redis_errors_as_unavailable
    def create_session(self, user_id: str, session_id: str | None = None) -> str:
        """A new session owned by `user_id` (with the given id, or a new one); returns its
        id."""
        if not user_id:
            raise ValueError("user_id must not be empty")
        session_id = session_id or uuid.uuid4().hex
        now = time.time()
        index = self.user_sessions_key(user_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.session_key(session_id), mapping={"user_id": user_id, "created_at": now})
        pipe.expire(self.session_key(session_id), self.session_ttl_s)
        pipe.zremrangebyscore(index, "-inf", now)  # sessions that expired since
        pipe.zadd(index, {session_id: now + self.session_ttl_s})
        pipe.expire(index, self.session_ttl_s)
        pipe.execute()
        return session_id

    @_redis_errors_as_unavailable
    def session_exists(self, session_id: str) -> bool:
        return bool(self.client.exists(self.session_key(session_id)))

    def busy_key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}:busy"

    @_redis_errors_as_unavailable
    def claim_session(self, session_id: str, run_id: str, ttl_s: int = 300) -> str | None:
        """Mark the session as answering `run_id` (one message at a time); returns None, or
        the run already answering. The claim expires after `ttl_s` if never released."""
        key = self.busy_key(session_id)
        if self.client.set(key, run_id, nx=True, ex=ttl_s):
            return None
        current = self.client.get(key)
        return _text(current) if current is not None else None

    @_redis_errors_as_unavailable
    def lost_claim(
        self, session_id: str, run_id: str, claim_ttl_s: int = 300, lost_after_s: float = 5.0
    ) -> bool:
        """Whether the session's claim by `run_id` belongs to a run that will never release
        it: the run is finished (its process died before releasing), its process has not
        said it is alive for `lost_after_s`, or it never did and the claim is older than
        that (the process died before the run's first write)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.ttl(self.busy_key(session_id))
        pipe.hmget(self.run_state_key(run_id), ["finished_at", "alive_at"])
        ttl, (finished_at, alive_at) = pipe.execute()
        if finished_at is not None:
            return True
        if alive_at is not None:
            return time.time() - float(_text(alive_at)) > lost_after_s
        return int(ttl) >= 0 and claim_ttl_s - int(ttl) > lost_after_s

    @_redis_errors_as_unavailable
    def take_over_session(
        self, session_id: str, lost_run_id: str, run_id: str, ttl_s: int = 300
    ) -> bool:
        """Move the session's claim from a lost run to `run_id`, if the lost run still holds
        it (another replica may have taken it over first)."""
        taken = self._take_over_session(
            keys=[self.busy_key(session_id)], args=[lost_run_id, run_id, ttl_s]
        )
        return bool(taken)

    @_redis_errors_as_unavailable
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

    @_redis_errors_as_unavailable
    def release_session(self, session_id: str, run_id: str) -> None:
        """End the claim of `run_id` (a claim by another run is left alone)."""
        self._release_session(keys=[self.busy_key(session_id)], args=[run_id])

    @_redis_errors_as_unavailable
    def session_owner(self, session_id: str) -> str:
        owner = self.client.hget(self.session_key(session_id), "user_id")
        if owner is None:
            raise SessionNotFound(session_id)
        return _text(owner)

    @_redis_errors_as_unavailable
    def sessions_of(self, user_id: str) -> list[str]:
        """The user's sessions that have not expired, oldest expiry first."""
        ids = self.client.zrangebyscore(self.user_sessions_key(user_id), time.time(), "+inf")
        return [_text(i) for i in cast(list[Any], ids)]

    @_redis_errors_as_unavailable
    def append_turn(
        self, session_id: str, role: str, text: str, meta: Mapping[str, Any] | None = None
    ) -> int:
        """Append a turn and refresh the session's TTL; returns the number of turns kept
        (at most `max_turns`, the oldest are dropped)."""
        turn = {"role": role, "text": text, "meta": dict(meta or {}), "ts": time.time()}
        result = self._append_turn(
            keys=[self.session_key(session_id), self.turns_key(session_id)],
            args=[json.dumps(turn, ensure_ascii=False), self.session_ttl_s, self.max_turns],
        )
        if result is None:
            raise SessionNotFound(session_id)
        owner, count = _text(result[0]), int(result[1])
        index = self.user_sessions_key(owner)
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(index, {session_id: time.time() + self.session_ttl_s}, xx=True)
        pipe.expire(index, self.session_ttl_s)
        pipe.execute()
        return count

    @_redis_errors_as_unavailable
    def turns(self, session_id: str, limit: int | None = None) -> list[Turn]:
        """The last `limit` turns (all when None), oldest first."""
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1 (or None for every turn)")
        start = -limit if limit else 0
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self.session_key(session_id))
        pipe.lrange(self.turns_key(session_id), start, -1)
        exists, raw = pipe.execute()
        if not exists:
            raise SessionNotFound(session_id)
        return [Turn(**json.loads(item)) for item in raw]

    # -- blackboard ----------------------------------------------------------------------
    @_redis_errors_as_unavailable
    def put_blackboard(self, run_id: str, key: str, value_json: str) -> None:
        """Store one JSON-encoded entry on the run's blackboard (refreshes its TTL)."""
        json.loads(value_json)  # refuse what other agents could not read back
        name = self.blackboard_key(run_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(name, key, value_json)
        pipe.expire(name, self.trace_ttl_s)
        pipe.execute()

    @_redis_errors_as_unavailable
    def get_blackboard(self, run_id: str) -> dict[str, str]:
        """Every entry of the run's blackboard, as the JSON strings that were put."""
        raw = cast(dict[Any, Any], self.client.hgetall(self.blackboard_key(run_id)))
        return {_text(k): _text(v) for k, v in raw.items()}

    # -- trace ---------------------------------------------------------------------------
    @_redis_errors_as_unavailable
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
        return _text(result)

    @_redis_errors_as_unavailable
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

    @_redis_errors_as_unavailable
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

    @_redis_errors_as_unavailable
    def replay(self, run_id: str, after_seq: int | None = None) -> list[dict[str, Any]]:
        """The run's events with seq > `after_seq` (all when None), in order."""
        start = f"0-{(after_seq or 0) + 1}"
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(self.trace_key(run_id), min=start)
        pipe.get(self.run_summary_key(run_id))
        entries, summary = pipe.execute()
        return _stored_events(entries, summary, after_seq or 0)

    @_redis_errors_as_unavailable
    def read_new(
        self, run_id: str, after_seq: int = 0, block_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Events with seq > `after_seq`; when there are none yet, waits up to `block_ms`
        (capped below the client's socket timeout) and returns [] on timeout."""
        block = None if block_ms is None else max(1, min(block_ms, self.max_block_ms))
        reply = self.client.xread({self.trace_key(run_id): f"0-{after_seq}"}, block=block)
        return _xread_events(reply)

    @_redis_errors_as_unavailable
    def finish_run(self, run_id: str) -> None:
        """Mark the run finished: later `append_event` calls raise `RunFinished`. Its trace,
        state and blackboard now live `finished_trace_ttl_s` (replay, resume, followers)."""
        state = self.run_state_key(run_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(state, "finished_at", time.time())
        for key in (state, self.trace_key(run_id), self.blackboard_key(run_id)):
            pipe.expire(key, self.finished_trace_ttl_s)
        pipe.execute()

    @_redis_errors_as_unavailable
    def touch_run(self, run_id: str) -> bool:
        """Say the run is alive (its process writes this while it runs; followers on other
        processes declare a run lost when it stops). Returns whether a cancel was asked."""
        state = self.run_state_key(run_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(state, "alive_at", time.time())
        pipe.expire(state, self.trace_ttl_s)
        pipe.hexists(state, "cancel_requested")
        return bool(pipe.execute()[-1])

    @_redis_errors_as_unavailable
    def request_cancel(self, run_id: str) -> str:
        """Ask the process running `run_id` to cancel it (it checks while it says it is
        alive): "cancelling", "finished", or "unknown" when no such run is stored."""
        keys = [self.trace_key(run_id), self.run_state_key(run_id), self.run_summary_key(run_id)]
        result = self._request_cancel(keys=keys, args=[self.trace_ttl_s])
        return _text(result)

    @_redis_errors_as_unavailable
    def run_finished(self, run_id: str) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.hexists(self.run_state_key(run_id), "finished_at")
        pipe.exists(self.run_summary_key(run_id))
        return any(pipe.execute())

    # -- response cache ------------------------------------------------------------------
    @_redis_errors_as_unavailable
    def cache_get(self, key: str) -> str | None:
        value = self.client.get(self.cache_key(key))
        return None if value is None else _text(value)

    @_redis_errors_as_unavailable
    def cache_set(self, key: str, value: str, ttl_s: int) -> None:
        if ttl_s < 1:
            raise ValueError("a cache entry needs a TTL of at least one second")
        self.client.set(self.cache_key(key), value, ex=ttl_s)

    # -- user profiles -------------------------------------------------------------------
    @_redis_errors_as_unavailable
    def get_profile(self, user_id: str) -> dict[str, dict[str, float]]:
        """The user's profile: facet (e.g. "genre") -> name -> weight in [-1, 1]."""
        raw = cast(dict[Any, Any], self.client.hgetall(self.profile_key(user_id)))
        profile: dict[str, dict[str, float]] = {}
        for packed, value in raw.items():
            facet, name = json.loads(_text(packed))
            profile.setdefault(facet, {})[name] = float(_text(value))
        return profile

    @_redis_errors_as_unavailable
    def update_profile(
        self, user_id: str, delta: Mapping[str, Mapping[str, float]], eta: float
    ) -> dict[str, dict[str, float]]:
        """P(u, t+1) = P(u, t) + eta * dP, clipped to [-1, 1], atomically (concurrent updates
        all count). Returns the new values of the entries in `delta`."""
        if not math.isfinite(eta):
            raise ValueError("eta must be finite")
        args: list[Any] = [repr(float(eta))]
        for facet, weights in delta.items():
            for name, change in weights.items():
                if not math.isfinite(change):
                    raise ValueError(f"profile change for {facet}/{name} is not finite")
                args += [_profile_field(facet, name), repr(float(change))]
        if len(args) == 1:
            return {}
        result = cast(list[Any], self._update_profile(keys=[self.profile_key(user_id)], args=args))
        updated: dict[str, dict[str, float]] = {}
        for packed, value in zip(result[::2], result[1::2], strict=True):
            facet, name = json.loads(_text(packed))
            updated.setdefault(facet, {})[name] = float(_text(value))
        return updated

    @_redis_errors_as_unavailable
    def add_user_run(self, user_id: str, run_id: str) -> None:
        """Index a run under its user, so forgetting the user deletes its trace too."""
        index = self.user_runs_key(user_id)
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(index, {run_id: now})
        pipe.zremrangebyscore(index, "-inf", now - self.trace_ttl_s)
        pipe.expire(index, self.trace_ttl_s)
        pipe.execute()

    # -- feedback ------------------------------------------------------------------------
    @_redis_errors_as_unavailable
    def record_feedback(
        self, user_id: str, records: list[FeedbackRecord], eta: float
    ) -> list[bool]:
        """Apply the events of one user atomically; True for each stored event, False for a
        duplicate `event_id` (seen in the last `event_id_ttl_s`), which changes nothing."""
        if not math.isfinite(eta):
            raise ValueError("eta must be finite")
        if not records:
            return []
        args: list[Any] = [
            repr(float(eta)),
            self.event_id_ttl_s,
            self.max_user_events,
            self.max_feedback,
        ]
        now = time.time()
        for record in records:
            if not record.event_id:
                raise ValueError("every event needs an event_id")
            pairs: list[Any] = []
            for facet, weights in record.profile_delta.items():
                for name, change in weights.items():
                    if not math.isfinite(change):
                        raise ValueError(f"profile change for {facet}/{name} is not finite")
                    pairs += [_profile_field(facet, name), repr(float(change))]
            ts = record.ts if record.ts is not None else now
            entry = json.dumps([record.item_id, ts]) if record.positive else ""
            exclusion = {True: "add", False: "remove", None: ""}[record.exclude]
            args += [
                record.event_id,
                json.dumps(dict(record.event), ensure_ascii=False),
                record.item_id,
                entry,
                exclusion,
                len(pairs) // 2,
                *pairs,
            ]
        keys = [
            self.event_ids_key(user_id),
            self.user_events_key(user_id),
            self.profile_key(user_id),
            self.feedback_key(user_id),
            self.excluded_key(user_id),
        ]
        result = cast(list[Any], self._record_feedback(keys=keys, args=args))
        return [bool(int(flag)) for flag in result]

    @_redis_errors_as_unavailable
    def user_state(self, user_id: str) -> UserState:
        """The user's profile, feedback history and exclusions, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.profile_key(user_id))
        pipe.lrange(self.feedback_key(user_id), 0, -1)
        pipe.smembers(self.excluded_key(user_id))
        pipe.get(self.memories_key(user_id))
        raw_profile, raw_feedback, raw_excluded, raw_memories = pipe.execute()
        profile: dict[str, dict[str, float]] = {}
        for packed, value in raw_profile.items():
            facet, name = json.loads(_text(packed))
            profile.setdefault(facet, {})[name] = float(_text(value))
        feedback = [(str(i), float(t)) for i, t in (json.loads(_text(e)) for e in raw_feedback)]
        memories = int(_text(raw_memories)) if raw_memories is not None else 0
        return UserState(profile, feedback, {_text(i) for i in raw_excluded}, memories)

    @_redis_errors_as_unavailable
    def count_memories(self, counts: Mapping[str, int]) -> None:
        """Add to users' long-term memory counts (user id -> memories written)."""
        pipe = self.client.pipeline(transaction=False)
        for user_id, n in counts.items():
            pipe.incrby(self.memories_key(user_id), n)
        pipe.execute()

    @_redis_errors_as_unavailable
    def user_events(self, user_id: str) -> list[dict[str, Any]]:
        """The user's logged feedback events, oldest first (at most `max_user_events`)."""
        entries = cast(list[Any], self.client.xrange(self.user_events_key(user_id)))
        return [json.loads(fields.get("data", fields.get(b"data"))) for _, fields in entries]

    # -- right to be forgotten -----------------------------------------------------------
    @_redis_errors_as_unavailable
    def forget_user(self, user_id: str) -> int:
        """Delete every session (with its turns) the user owns, the user's profile, feedback
        history, exclusions, event log and the traces of the user's runs, by the per-user
        indexes (no SCAN). Returns the number of sessions deleted."""
        index = self.user_sessions_key(user_id)
        deleted = 0
        while True:
            session_ids = [_text(s) for s in cast(list[Any], self.client.zrange(index, 0, 499))]
            if not session_ids:
                break
            pipe = self.client.pipeline(transaction=False)
            for session_id in session_ids:
                pipe.delete(self.session_key(session_id), self.turns_key(session_id))
            pipe.zrem(index, *session_ids)
            results = pipe.execute()
            deleted += sum(1 for n in results[:-1] if n)
        runs = self.user_runs_key(user_id)
        while True:
            run_ids = [_text(r) for r in cast(list[Any], self.client.zrange(runs, 0, 499))]
            if not run_ids:
                break
            pipe = self.client.pipeline(transaction=False)
            for run_id in run_ids:
                pipe.delete(
                    self.trace_key(run_id),
                    self.blackboard_key(run_id),
                    self.run_state_key(run_id),
                    self.run_summary_key(run_id),
                )
            pipe.zrem(runs, *run_ids)
            pipe.execute()
        self.client.delete(
            self.profile_key(user_id),
            self.feedback_key(user_id),
            self.excluded_key(user_id),
            self.user_events_key(user_id),
            self.event_ids_key(user_id),
            self.memories_key(user_id),
            index,
        )
        return deleted


class AsyncTraceReader:
    """The read side of run traces on an asyncio client, for the SSE endpoint: replay from
    a Last-Event-ID and tail live events without blocking the event loop. Same keys and
    event shape as `ShortTermMemory`."""

    def __init__(self, client: redis.asyncio.Redis, *, prefix: str = "agentrec") -> None:
        self.client = client
        self.prefix = prefix
        self.server = _server_name(client.connection_pool.connection_kwargs)
        self.max_block_ms = _max_block_ms(client.connection_pool.connection_kwargs)

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
        return None if value is None else float(_text(value))

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
            script = self.client.register_script(_END_LOST_RUN)
            done = await script(keys=keys, args=args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc
        return bool(done)
