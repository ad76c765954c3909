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


def analyse_items(box: Toolbox, history: History, item_ids: Sequence[str]) -> list[ItemInsight]:
    ds = box.dataset
    means, counts = box.rating_stats
    popularity = box.catalog.popularity
    order = np.argsort(np.argsort(popularity, kind="stable"), kind="stable")
    percentile = order / max(len(order) - 1, 1)
    known = [(item_id, ds.item_index[item_id]) for item_id in item_ids if item_id in ds.item_index]
    reasons = _explanations(box, history, [i for _, i in known])
    insights: list[ItemInsight] = []
    for (item_id, i), drivers in zip(known, reasons, strict=True):
        similar: list[str] = []
        if drivers:
            for source, weight, _kind in drivers:
                sid = ds.items[int(source)].item_id
                if weight > 0 and sid not in similar:
                    similar.append(sid)
                if len(similar) == 3:
                    break
        evidence: list[str] = []
        if similar:
            titles = [ds.items[ds.item_index[s]].title for s in similar[:2]]
            evidence.append(f"people who watched {' and '.join(titles)} went on to this")
        n = int(counts[i])
        mean = None if np.isnan(means[i]) else round(float(means[i]), 2)
        if n and mean is not None:
            evidence.append(f"rated {mean:.1f} on average by {n} users")
        pct = float(percentile[i])
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


def _explanations(
    box: Toolbox, history: History, items: list[int]
) -> list[list[tuple[int, float, str]]]:
    """The model's `explain` of each item (empty lists when it cannot explain), batched
    through `explain_many` when the model has it (one score row per history, not per item)."""
    if not items or not len(history):
        return [[] for _ in items]
    explain_many = getattr(box.model, "explain_many", None)
    if explain_many is not None:
        return list(explain_many(history, items))
    explain = getattr(box.model, "explain", None)
    if explain is None:
        return [[] for _ in items]
    return [explain(history, i) for i in items]
