"""Searcher: fills the blackboard with a candidate pool.

Offline brain: the default model's scores for the history (collaborative + sequential),
blended with the scores of any reference items the user named ("like Alien") and with text
search over the catalog for the remaining keywords; hard filters from the request and the
intent (wanted / unwanted attribute values, year range, seen and excluded items). With no
signal at all it falls back to what is popular within the filters.
"""

from __future__ import annotations

import numpy as np

from agents.schemas import CandidatePool, Intent, PoolCandidate
from agents.toolbox import Toolbox
from tools.base import History
from tools.candidates import CandidateFilters, generate_candidates, hybrid_candidates

REFERENCE_WEIGHT = 1.0
KEYWORD_WEIGHT = 0.5


def merged_filters(filters: CandidateFilters, intent: Intent | None) -> CandidateFilters:
    """The request's filters plus the intent's wanted (include) and unwanted (exclude) values."""
    if intent is None:
        return filters
    include = {k: list(v) for k, v in filters.include.items()}
    exclude = {k: list(v) for k, v in filters.exclude.items()}
    for name, values in intent.wanted.items():
        include[name] = sorted({*include.get(name, []), *values})
    for name, values in intent.unwanted.items():
        exclude[name] = sorted({*exclude.get(name, []), *values})
    return filters.model_copy(update={"include": include, "exclude": exclude})


def _year_mask(box: Toolbox, intent: Intent | None) -> np.ndarray | None:
    if intent is None or (intent.year_min is None and intent.year_max is None):
        return None
    years = box.years
    keep = ~np.isnan(years)
    if intent.year_min is not None:
        keep &= years >= intent.year_min
    if intent.year_max is not None:
        keep &= years <= intent.year_max
    return keep


def search(
    box: Toolbox,
    history: History,
    intent: Intent | None,
    filters: CandidateFilters,
    pool_size: int,
) -> CandidatePool:
    ds = box.dataset
    filters = merged_filters(filters, intent)
    collaborative = box.model.score([history])[0].astype(np.float64) if len(history) else None
    others: list[tuple[np.ndarray, float]] = []
    refs = box.indices(intent.reference_item_ids if intent is not None else [])
    if len(refs):
        others.append((box.model.score([History(refs)])[0].astype(np.float64), REFERENCE_WEIGHT))
    query = " ".join(intent.keywords) if intent is not None else ""
    if query.strip():
        others.append((box.content.query_scores(query).astype(np.float64), KEYWORD_WEIGHT))
    blocked = np.zeros(ds.n_items, dtype=bool)
    blocked[refs] = True  # the examples themselves are not news to the user
    years = _year_mask(box, intent)
    if years is not None:
        blocked |= ~years

    def masked(scores: np.ndarray) -> np.ndarray:
        out = scores.copy()
        out[blocked] = -np.inf
        return out

    if collaborative is None and not others:
        found = generate_candidates(
            masked(box.catalog.popularity), ds, history, filters, pool_size, "fallback"
        )
    else:
        extra = None
        if others:
            extra = sum(
                (w * _standardised(s) for s, w in others[1:]),
                others[0][1] * _standardised(others[0][0]),
            )
        found = hybrid_candidates(
            ds,
            history,
            filters,
            pool_size,
            collaborative=None if collaborative is None else masked(collaborative),
            content=None if extra is None else masked(np.asarray(extra)),
            content_weight=1.0 if collaborative is None else 0.5,
        )
    return CandidatePool(
        candidates=[
            PoolCandidate(item_id=c.item_id, score=round(c.score, 6), sources=[c.source])
            for c in found
        ],
        query=query or None,
    )


def _standardised(scores: np.ndarray) -> np.ndarray:
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros_like(scores)
    mu, sd = scores[finite].mean(), scores[finite].std()
    return (scores - mu) / sd if sd > 0 else np.zeros_like(scores)


def score_given(box: Toolbox, history: History, item_ids: list[str]) -> CandidatePool:
    """The rank task's pool: exactly the given catalog items, scored by the default model."""
    idx = box.indices(item_ids)
    if len(history):
        scores = box.model.score([history])[0][idx].astype(np.float64)
        source = "collaborative"
    else:
        scores = box.catalog.popularity[idx]
        source = "fallback"
    seen: set[int] = set()
    candidates = []
    for i, s in zip(idx.tolist(), scores.tolist(), strict=True):
        if i not in seen:
            seen.add(i)
            candidates.append(
                PoolCandidate(item_id=box.dataset.items[i].item_id, score=s, sources=[source])
            )
    candidates.sort(key=lambda c: -c.score)
    return CandidatePool(candidates=candidates)
