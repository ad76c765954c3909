"""Reflector: checks a ranked list before it leaves, and accepts it or sends a critique.

Offline brain: rule checks. Every item exists in the catalog and in the candidate pool, none
repeats, none was seen (when the request excludes seen items), none carries an excluded
attribute value, each carries a wanted one where the request asks for it, and the list is as
long as the pool allows.
"""

from __future__ import annotations

from agents.schemas import CandidatePool, Critique, RankedList
from agents.toolbox import Toolbox
from tools.base import History
from tools.candidates import CandidateFilters


def review(
    box: Toolbox,
    ranked: RankedList,
    pool: CandidatePool,
    filters: CandidateFilters,
    history: History,
    count: int,
) -> Critique:
    ds = box.dataset
    in_pool = {c.item_id for c in pool.candidates}
    seen = {int(i) for i in history.items.tolist()} if filters.exclude_seen else set()
    allowed = box.catalog.allowed(filters.model_copy(update={"exclude_seen": False}))
    problems: list[str] = []
    bad: list[str] = []
    listed: set[str] = set()
    for item in ranked.items:
        index = ds.item_index.get(item.item_id)
        reason = None
        if index is None:
            reason = "is not in the catalog"
        elif item.item_id not in in_pool:
            reason = "is not among the candidates"
        elif item.item_id in listed:
            reason = "is listed twice"
        elif index in seen:
            reason = "was already seen by the user"
        elif not allowed[index]:
            reason = "breaks the requested filters"
        listed.add(item.item_id)
        if reason is not None:
            problems.append(f"{item.item_id} {reason}")
            bad.append(item.item_id)
    expected = min(count, len(in_pool))
    if len(ranked.items) - len(bad) < expected and not bad:
        problems.append(f"the list has {len(ranked.items)} items; {expected} were asked for")
    if not problems:
        return Critique(accept=True)
    return Critique(
        accept=False,
        problems=problems,
        suggestions=["drop the listed items and refill from the candidate pool"],
        item_ids=bad,
    )
