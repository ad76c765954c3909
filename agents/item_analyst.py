"""Item Analyst: gathers evidence on the top candidates, one `ItemInsight` per item.

Offline brain: the history items that drove the default model's score (its `explain`), how
popular the item is (percentile) and how it is rated across users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.schemas import ItemInsight
from agents.toolbox import Toolbox
from tools.base import History

SIMILAR_ITEMS = 3
"""History items named as an item's drivers."""
EXPLAIN_LIMIT = 16
"""Drivers read per item at first (each history item appears once per kind, at most four
times); an item whose first drivers hold too few positive ones is read in full."""


def analyse_items(box: Toolbox, history: History, item_ids: Sequence[str]) -> list[ItemInsight]:
    ds = box.dataset
    means, counts = box.rating_stats
    known = [(item_id, ds.item_index[item_id]) for item_id in item_ids if item_id in ds.item_index]
    indices = [i for _, i in known]
    percentiles = _popularity_percentiles(box.catalog.popularity, indices)
    reasons = _explanations(box, history, indices, EXPLAIN_LIMIT)
    insights: list[ItemInsight] = []
    for (item_id, i), drivers, pct in zip(known, reasons, percentiles, strict=True):
        similar = _similar_history_items(box, drivers)
        if len(similar) < SIMILAR_ITEMS and len(drivers) == EXPLAIN_LIMIT:
            # the cut-off list ran out before enough positive drivers: read all of them
            similar = _similar_history_items(box, _explanations(box, history, [i], None)[0])
        evidence: list[str] = []
        if similar:
            titles = [ds.items[ds.item_index[s]].title for s in similar[:2]]
            evidence.append(f"people who watched {' and '.join(titles)} went on to this")
        n = int(counts[i])
        mean = None if np.isnan(means[i]) else round(float(means[i]), 2)
        if n and mean is not None:
            evidence.append(f"rated {mean:.1f} on average by {n} users")
        if pct >= 0.9:
            evidence.append("among the most popular titles")
        summary = evidence[0][:1].upper() + evidence[0][1:] + "." if evidence else ""
        insights.append(
            ItemInsight(
                item_id=item_id,
                summary=summary,
                evidence=evidence,
                similar_history_item_ids=similar,
                popularity=round(pct, 3),
                mean_rating=mean,
                n_ratings=n,
            )
        )
    return insights


def _popularity_percentiles(popularity: np.ndarray, items: list[int]) -> list[float]:
    """Each item's position in the catalog's stable popularity order, scaled to [0, 1]
    (ties: lower index first); O(len(items) n) rather than sorting the catalog per run."""
    if not items:
        return []
    idx = np.asarray(items, dtype=np.int64)
    values = popularity[idx][:, None]
    below = (popularity[None, :] < values).sum(axis=1)
    tied_before = (popularity[None, :] == values) & (np.arange(len(popularity)) < idx[:, None])
    position = below + tied_before.sum(axis=1)
    return [float(p) for p in position / max(len(popularity) - 1, 1)]


def _similar_history_items(box: Toolbox, drivers: list[tuple[int, float, str]]) -> list[str]:
    """The first `SIMILAR_ITEMS` distinct history items that raised the score."""
    similar: list[str] = []
    for source, weight, _kind in drivers:
        sid = box.dataset.items[int(source)].item_id
        if weight > 0 and sid not in similar:
            similar.append(sid)
        if len(similar) == SIMILAR_ITEMS:
            break
    return similar


def _explanations(
    box: Toolbox, history: History, items: list[int], limit: int | None
) -> list[list[tuple[int, float, str]]]:
    """The model's `explain` of each item (empty lists when it cannot explain), batched
    through `explain_many` when the model has it (one score row per history, not per item);
    the first `limit` entries of each are enough when the model can cut them."""
    if not items or not len(history):
        return [[] for _ in items]
    explain_many = getattr(box.model, "explain_many", None)
    if explain_many is not None:
        return list(explain_many(history, items, limit=limit))
    explain = getattr(box.model, "explain", None)
    if explain is None:
        return [[] for _ in items]
    return [explain(history, i) for i in items]
