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
    explain = getattr(box.model, "explain", None)
    insights: list[ItemInsight] = []
    for item_id in item_ids:
        i = ds.item_index.get(item_id)
        if i is None:
            continue
        similar: list[str] = []
        if explain is not None and len(history):
            for source, weight, _kind in explain(history, i):
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
