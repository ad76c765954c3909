"""The agents' memory port (`agents.memory.AgentMemory`) on the service's stores: Redis
short-term memory for what a user did lately, Chroma long-term memory for what they said
and for the catalog's text search. It lives in the app, which wires agents to stores, so
that `memory` (the stores) never imports `agents`.

Long-term memory is opened lazily and retried after a failure, so a Chroma server that is
down when the service starts (or later) only degrades runs until it is back. Each catalog is
indexed into its own Chroma collection (`catalog.<name>`) once per process, the first time a
run searches it.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable

from agents.schemas import UserMemory
from agents.toolbox import Toolbox
from core.errors import Unavailable
from memory.long_term import (
    ChromaUnavailable,
    LongTermMemory,
    MemoryKind,
    MetaValue,
    memory_id,
)
from memory.short_term import ShortTermMemory


def catalog_collection(catalog: str) -> str:
    """The Chroma collection of a catalog (names limited to Chroma's character set)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", catalog).strip("-_") or "default"
    return f"catalog.{safe}"[:60]


class StoreMemory:
    """`AgentMemory` over a `ShortTermMemory` and a (lazily opened) `LongTermMemory`."""

    def __init__(
        self,
        short_term: ShortTermMemory,
        long_term: Callable[[], LongTermMemory],
        toolbox: Callable[[str], Toolbox],
    ) -> None:
        self.short_term = short_term
        self._open_long_term = long_term
        self._long_term: LongTermMemory | None = None
        self._toolbox = toolbox
        self._indexed: set[str] = set()
        self._lock = threading.Lock()

    # -- long-term memory, opened on demand -----------------------------------------------
    def long_term(self) -> LongTermMemory:
        """The long-term memory; raises `ChromaUnavailable` while it cannot be opened."""
        with self._lock:
            if self._long_term is None:
                self._long_term = self._open_long_term()
            return self._long_term

    def close(self) -> None:
        """Close the long-term memory if it was opened."""
        with self._lock:
            if self._long_term is not None:
                self._long_term.close()
                self._long_term = None

    def ensure_catalog(self, catalog: str, force: bool = False) -> None:
        """Index `catalog` into its collection unless it already holds every item (`force`:
        upsert every item anyway, after the catalog changed)."""
        if catalog in self._indexed:
            return
        box = self._toolbox(catalog)
        long_term = self.long_term()
        name = catalog_collection(catalog)
        if force or long_term.catalog_size(name) != box.dataset.n_items:
            long_term.index_catalog(box.dataset, collection=name)
        self._indexed.add(catalog)

    def forget_catalog_index(self, catalog: str) -> None:
        """Mark `catalog` as changed: the next search re-indexes it."""
        self._indexed.discard(catalog)

    # -- AgentMemory ------------------------------------------------------------------------
    def load_user(self, user_id: str) -> UserMemory:
        state = self.short_term.user_state(user_id)
        return UserMemory(
            preferences=state.profile,
            feedback_item_ids=[item for item, _ in state.feedback],
            feedback_timestamps=[int(ts) for _, ts in state.feedback],
            excluded_item_ids=sorted(state.excluded),
            memory_count=state.memories,
        )

    def remember(
        self,
        records: list[tuple[str, MemoryKind, str, dict[str, MetaValue] | None]],
    ) -> list[str]:
        """Store (user_id, kind, text, meta) memories and count them per user in short-term
        memory (runs recall only for users who have some). Idempotent in Chroma: each
        memory's id comes from its content (`memory_id`), so a write retried after the count
        failed (Redis down) replaces what the first attempt stored instead of copying it."""
        ids = [memory_id(*record) for record in records]
        self.long_term().remember_many(records, ids=ids)
        counts = Counter(user_id for user_id, _, _, _ in records)
        self.short_term.count_memories(counts)
        return ids

    def recall(self, user_id: str, query: str, k: int) -> list[str]:
        recalled = self.long_term().recall(user_id, query, k)
        return [r.memory.text for r in recalled]

    def search_catalog(self, catalog: str, query: str, k: int) -> list[tuple[str, float]]:
        self.ensure_catalog(catalog)
        return self.long_term().search_catalog(query, k, collection=catalog_collection(catalog))


__all__ = ["ChromaUnavailable", "StoreMemory", "Unavailable", "catalog_collection"]
