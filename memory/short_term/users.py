"""What short-term memory holds about a user: the evolving profile, the feedback history,
exclusions, the event log (each feedback event applied exactly once by its `event_id`), the
count of long-term memories, and the right to be forgotten."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from redis.commands.core import Script

from memory.short_term.base import StoreBase, decoded, redis_errors_as_unavailable


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


# P(u, t+1) = clip(P(u, t) + eta * dP, -1, 1), field by field, in one atomic step.
UPDATE_PROFILE = """
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
RECORD_FEEDBACK = """
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


def _profile_field(facet: str, name: str) -> str:
    return json.dumps([facet, name], ensure_ascii=False)


class UserStore(StoreBase):
    """Users' profiles, feedback, exclusions, event logs and memory counts."""

    _update_profile: Script
    _record_feedback: Script

    @redis_errors_as_unavailable
    def get_profile(self, user_id: str) -> dict[str, dict[str, float]]:
        """The user's profile: facet (e.g. "genre") -> name -> weight in [-1, 1]."""
        raw = cast(dict[Any, Any], self.client.hgetall(self.profile_key(user_id)))
        profile: dict[str, dict[str, float]] = {}
        for packed, value in raw.items():
            facet, name = json.loads(decoded(packed))
            profile.setdefault(facet, {})[name] = float(decoded(value))
        return profile

    @redis_errors_as_unavailable
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
            facet, name = json.loads(decoded(packed))
            updated.setdefault(facet, {})[name] = float(decoded(value))
        return updated

    @redis_errors_as_unavailable
    def add_user_run(self, user_id: str, run_id: str) -> None:
        """Index a run under its user, so forgetting the user deletes its trace too."""
        index = self.user_runs_key(user_id)
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(index, {run_id: now})
        pipe.zremrangebyscore(index, "-inf", now - self.trace_ttl_s)
        pipe.expire(index, self.trace_ttl_s)
        pipe.execute()

    @redis_errors_as_unavailable
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

    @redis_errors_as_unavailable
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
            facet, name = json.loads(decoded(packed))
            profile.setdefault(facet, {})[name] = float(decoded(value))
        feedback = [(str(i), float(t)) for i, t in (json.loads(decoded(e)) for e in raw_feedback)]
        memories = int(decoded(raw_memories)) if raw_memories is not None else 0
        return UserState(profile, feedback, {decoded(i) for i in raw_excluded}, memories)

    @redis_errors_as_unavailable
    def count_memories(self, counts: Mapping[str, int]) -> None:
        """Add to users' long-term memory counts (user id -> memories written)."""
        pipe = self.client.pipeline(transaction=False)
        for user_id, n in counts.items():
            pipe.incrby(self.memories_key(user_id), n)
        pipe.execute()

    @redis_errors_as_unavailable
    def user_events(self, user_id: str) -> list[dict[str, Any]]:
        """The user's logged feedback events, oldest first (at most `max_user_events`)."""
        entries = cast(list[Any], self.client.xrange(self.user_events_key(user_id)))
        return [json.loads(fields.get("data", fields.get(b"data"))) for _, fields in entries]

    @redis_errors_as_unavailable
    def forget_user(self, user_id: str) -> int:
        """Delete every session (with its turns) the user owns, the user's profile, feedback
        history, exclusions, event log and the traces of the user's runs, by the per-user
        indexes (no SCAN). Returns the number of sessions deleted."""
        index = self.user_sessions_key(user_id)
        deleted = 0
        while True:
            session_ids = [decoded(s) for s in cast(list[Any], self.client.zrange(index, 0, 499))]
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
            run_ids = [decoded(r) for r in cast(list[Any], self.client.zrange(runs, 0, 499))]
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
