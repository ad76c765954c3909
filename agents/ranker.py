"""Ranker: orders the candidate pool into the final `RankedList`.

Offline brain: the pool's relevance order (the default model's fused score), re-ranked for
variety by maximal marginal relevance when `diversity` > 0 (similarity = shared attribute
values), with an explanation per item from the Item Analyst's evidence and the profile.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.schemas import (
    CandidatePool,
    Critique,
    ItemInsight,
    PoolCandidate,
    RankedItem,
    RankedList,
    UserProfile,
)
from agents.toolbox import Toolbox
from agents.user_analyst import profiled_attributes


def _item_values(box: Toolbox, item_id: str, attributes: Sequence[str]) -> set[str]:
    attrs = box.dataset.items[box.dataset.item_index[item_id]].attributes
    return {f"{name}={v}" for name in attributes for v in attrs.get(name, ())}


def rank(
    box: Toolbox,
    pool: CandidatePool,
    insights: Sequence[ItemInsight],
    profile: UserProfile | None,
    count: int,
    diversity: float = 0.0,
    critique: Critique | None = None,
) -> RankedList:
    banned = set(critique.item_ids) if critique is not None and not critique.accept else set()
    candidates = [c for c in pool.candidates if c.item_id not in banned]
    if not candidates:
        return RankedList()
    chosen = _mmr(box, candidates, count, diversity) if diversity > 0 else candidates[:count]
    by_id = {i.item_id: i for i in insights}
    items = [
        RankedItem(
            item_id=c.item_id,
            score=round(float(c.score), 6),
            explanation=_explanation(box, by_id.get(c.item_id), profile, c.sources),
            reasons=_reasons(box, by_id.get(c.item_id), profile, c.item_id),
        )
        for c in chosen
    ]
    return RankedList(items=items)


def _mmr(
    box: Toolbox, candidates: Sequence[PoolCandidate], count: int, diversity: float
) -> list[PoolCandidate]:
    attributes = profiled_attributes(box)
    values = [_item_values(box, c.item_id, attributes) for c in candidates]
    scores = np.asarray([c.score for c in candidates], dtype=np.float64)
    span = float(np.ptp(scores)) or 1.0
    relevance = (scores - scores.min()) / span
    # overlap[j]: the largest Jaccard similarity of candidate j to a picked one, updated
    # with each new pick (O(count * pool) set operations instead of O(count^2 * pool))
    overlap = np.zeros(len(candidates), dtype=np.float64)
    available = np.ones(len(candidates), dtype=bool)
    picked: list[int] = []
    while len(picked) < min(count, len(candidates)):
        value = (1 - diversity) * relevance - diversity * overlap
        value[~available | np.isnan(value)] = -np.inf
        best = int(np.argmax(value))  # the first of equal values, as a strict > scan
        picked.append(best)
        available[best] = False
        new = values[best]
        for j in np.flatnonzero(available).tolist():
            similarity = len(values[j] & new) / max(len(values[j] | new), 1)
            if similarity > overlap[j]:
                overlap[j] = similarity
    return [candidates[j] for j in picked]


def _explanation(
    box: Toolbox, insight: ItemInsight | None, profile: UserProfile | None, sources: list[str]
) -> str:
    ds = box.dataset
    if insight is not None and insight.similar_history_item_ids:
        titles = [ds.items[ds.item_index[s]].title for s in insight.similar_history_item_ids[:2]]
        return f"Because you watched {' and '.join(titles)}."
    if "fallback" in sources:
        return "Popular with viewers right now."
    if insight is not None and insight.summary:
        return insight.summary
    return "A strong match for your recent activity."


def _reasons(
    box: Toolbox, insight: ItemInsight | None, profile: UserProfile | None, item_id: str
) -> list[str]:
    reasons: list[str] = []
    if insight is not None:
        reasons.extend(insight.evidence)
    if profile is not None:
        attrs = box.dataset.items[box.dataset.item_index[item_id]].attributes
        liked = [
            v
            for name, values in profile.affinities.items()
            for v in attrs.get(name, ())
            if values.get(v, 0.0) > 0.3
        ]
        if liked:
            reasons.append(f"matches your taste for {', '.join(liked[:3])}")
    return reasons
