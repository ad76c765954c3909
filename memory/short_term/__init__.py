"""Short-term memory in Redis: session turns, the blackboard of a run, the replayable trace of
a run (a Redis Stream), response caches and evolving user profiles.

`ShortTermMemory` is one object over three parts: `memory.short_term.sessions` (sessions,
turns, claims), `memory.short_term.runs` (traces, followers, lost runs) and
`memory.short_term.users` (profile, feedback, exclusions, event log).

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
"""

from __future__ import annotations

import redis

from core.settings import Settings
from memory.connection import MemoryStoreError, MemoryUnavailable
from memory.short_term.base import decoded, max_block_ms, redis_errors_as_unavailable, server_name
from memory.short_term.runs import (
    APPEND_EVENT,
    APPEND_EVENTS,
    END_LOST_RUN,
    REQUEST_CANCEL,
    AsyncTraceReader,
    RunFinished,
    RunTraces,
    lost_run_events,
)
from memory.short_term.sessions import (
    APPEND_TURN,
    RELEASE_SESSION,
    TAKE_OVER_SESSION,
    SessionNotFound,
    Sessions,
    Turn,
)
from memory.short_term.users import (
    RECORD_FEEDBACK,
    UPDATE_PROFILE,
    FeedbackRecord,
    UserState,
    UserStore,
)

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


class ShortTermMemory(Sessions, RunTraces, UserStore):
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
        self._record_feedback = client.register_script(RECORD_FEEDBACK)
        self._append_events = client.register_script(APPEND_EVENTS)
        self._request_cancel = client.register_script(REQUEST_CANCEL)
        self._release_session = client.register_script(RELEASE_SESSION)
        self._take_over_session = client.register_script(TAKE_OVER_SESSION)
        self._end_lost_run = client.register_script(END_LOST_RUN)
        self._append_turn = client.register_script(APPEND_TURN)
        self._append_event = client.register_script(APPEND_EVENT)
        self._update_profile = client.register_script(UPDATE_PROFILE)
        self.server = server_name(client.connection_pool.connection_kwargs)
        self.max_block_ms = max_block_ms(client.connection_pool.connection_kwargs)

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

    # -- response cache ------------------------------------------------------------------
    @redis_errors_as_unavailable
    def cache_get(self, key: str) -> str | None:
        value = self.client.get(self.cache_key(key))
        return None if value is None else decoded(value)

    @redis_errors_as_unavailable
    def cache_set(self, key: str, value: str, ttl_s: int) -> None:
        if ttl_s < 1:
            raise ValueError("a cache entry needs a TTL of at least one second")
        self.client.set(self.cache_key(key), value, ex=ttl_s)
