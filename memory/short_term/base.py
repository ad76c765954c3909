"""What every part of short-term memory shares: its settings, the key layout (see
`memory.short_term`), decoding of Redis replies and connection errors as `MemoryUnavailable`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import redis

from memory.connection import MemoryUnavailable

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="StoreBase")


def decoded(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def trace_key(prefix: str, run_id: str) -> str:
    return f"{prefix}:run:{{{run_id}}}:trace"


def run_state_key(prefix: str, run_id: str) -> str:
    return f"{prefix}:run:{{{run_id}}}:state"


def run_summary_key(prefix: str, run_id: str) -> str:
    return f"{prefix}:run:{{{run_id}}}:summary"


def max_block_ms(connection_kwargs: Mapping[str, Any]) -> int:
    # A blocking read must return before the socket times out, or it reads as an outage.
    socket_timeout = connection_kwargs.get("socket_timeout")
    return int(socket_timeout * 1000) - 250 if socket_timeout else 60_000


def server_name(connection_kwargs: Mapping[str, Any]) -> str:
    if "path" in connection_kwargs:
        return str(connection_kwargs["path"])
    return f"{connection_kwargs.get('host')}:{connection_kwargs.get('port')}"


def redis_errors_as_unavailable(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailable(self.server, exc) from exc

    return wrapper


class StoreBase:
    """The settings and keys the parts of `ShortTermMemory` share (it sets them)."""

    client: redis.Redis
    prefix: str
    session_ttl_s: int
    trace_ttl_s: int
    finished_trace_ttl_s: int
    max_turns: int
    max_events: int
    max_feedback: int
    max_user_events: int
    event_id_ttl_s: int
    server: str
    max_block_ms: int

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

    def busy_key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{{{session_id}}}:busy"
