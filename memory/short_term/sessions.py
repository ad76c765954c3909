"""Sessions in short-term memory: who owns a session, its turns, and the claim of the run
answering its current message (one at a time), taken over when that run is lost."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from redis.commands.core import Script

from memory.connection import MemoryStoreError
from memory.short_term.base import StoreBase, decoded, redis_errors_as_unavailable


class SessionNotFound(MemoryStoreError):
    """The session does not exist (never created, expired or forgotten)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"session {session_id!r} not found (it may have expired)")


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0


APPEND_TURN = """
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

# KEYS: busy. ARGV: lost run id, new run id, TTL. Moves the claim if the lost run holds it.
TAKE_OVER_SESSION = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

RELEASE_SESSION = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"


class Sessions(StoreBase):
    """Sessions, their turns and their claims."""

    _append_turn: Script
    _take_over_session: Script
    _release_session: Script

    @redis_errors_as_unavailable
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

    @redis_errors_as_unavailable
    def session_exists(self, session_id: str) -> bool:
        return bool(self.client.exists(self.session_key(session_id)))

    @redis_errors_as_unavailable
    def claim_session(self, session_id: str, run_id: str, ttl_s: int = 300) -> str | None:
        """Mark the session as answering `run_id` (one message at a time); returns None, or
        the run already answering. The claim expires after `ttl_s` if never released."""
        key = self.busy_key(session_id)
        if self.client.set(key, run_id, nx=True, ex=ttl_s):
            return None
        current = self.client.get(key)
        return decoded(current) if current is not None else None

    @redis_errors_as_unavailable
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
            return time.time() - float(decoded(alive_at)) > lost_after_s
        return int(ttl) >= 0 and claim_ttl_s - int(ttl) > lost_after_s

    @redis_errors_as_unavailable
    def take_over_session(
        self, session_id: str, lost_run_id: str, run_id: str, ttl_s: int = 300
    ) -> bool:
        """Move the session's claim from a lost run to `run_id`, if the lost run still holds
        it (another replica may have taken it over first)."""
        taken = self._take_over_session(
            keys=[self.busy_key(session_id)], args=[lost_run_id, run_id, ttl_s]
        )
        return bool(taken)

    @redis_errors_as_unavailable
    def release_session(self, session_id: str, run_id: str) -> None:
        """End the claim of `run_id` (a claim by another run is left alone)."""
        self._release_session(keys=[self.busy_key(session_id)], args=[run_id])

    @redis_errors_as_unavailable
    def session_owner(self, session_id: str) -> str:
        owner = self.client.hget(self.session_key(session_id), "user_id")
        if owner is None:
            raise SessionNotFound(session_id)
        return decoded(owner)

    @redis_errors_as_unavailable
    def sessions_of(self, user_id: str) -> list[str]:
        """The user's sessions that have not expired, oldest expiry first."""
        ids = self.client.zrangebyscore(self.user_sessions_key(user_id), time.time(), "+inf")
        return [decoded(i) for i in cast(list[Any], ids)]

    @redis_errors_as_unavailable
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
        owner, count = decoded(result[0]), int(result[1])
        index = self.user_sessions_key(owner)
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(index, {session_id: time.time() + self.session_ttl_s}, xx=True)
        pipe.expire(index, self.session_ttl_s)
        pipe.execute()
        return count

    @redis_errors_as_unavailable
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
