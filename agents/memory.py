"""What the agents ask of memory, and where a run finds it.

The graph never talks to Redis or Chroma itself: a run names a registered `AgentMemory` in
its context (`Context.memory`; empty means none, as in evaluation and LangGraph Studio by
default). The service registers one backed by its Redis short-term and Chroma long-term
memory (`app.agent_memory.StoreMemory`). Methods raise `core.errors.Unavailable` when a
store is down; the nodes then carry on without it and mark the run degraded.
"""

from __future__ import annotations

import threading
from typing import Protocol

from agents.schemas import UserMemory
from core.errors import ConfigError

SHORT_TERM = "short_term_memory"
"""The name a run lists in `degraded` when short-term memory (Redis) was unavailable."""
LONG_TERM = "long_term_memory"
"""The name a run lists in `degraded` when long-term memory (Chroma) was unavailable."""


class AgentMemory(Protocol):
    def load_user(self, user_id: str) -> UserMemory:
        """The user's evolving preferences, recent feedback and exclusions."""
        ...

    def recall(self, user_id: str, query: str, k: int) -> list[str]:
        """Up to `k` of this user's own memories closest to `query`, best first."""
        ...

    def search_catalog(self, catalog: str, query: str, k: int) -> list[tuple[str, float]]:
        """The `k` items of `catalog` closest to a text, best first, as (item_id, score)."""
        ...


_lock = threading.Lock()
_memories: dict[str, AgentMemory] = {}


def register_memory(name: str, memory: AgentMemory) -> None:
    """Make `memory` available to runs whose context names it."""
    if not name:
        raise ConfigError("a memory needs a non-empty name")
    with _lock:
        _memories[name] = memory


def unregister_memory(name: str) -> None:
    with _lock:
        _memories.pop(name, None)


def get_memory(name: str) -> AgentMemory | None:
    """The memory registered as `name`; None for ""."""
    if not name:
        return None
    with _lock:
        memory = _memories.get(name)
    if memory is None:
        known = ", ".join(sorted(_memories)) or "none"
        raise ConfigError(f"unknown memory {name!r}; registered: {known}")
    return memory
