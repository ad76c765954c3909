"""Searcher: fills the blackboard with a candidate pool.

Offline brain: the default model's scores for the history (collaborative + sequential),
blended with the scores of any reference items the user named ("like Alien") and with text
search over the catalog for the remaining keywords, and with the preferences the user's
feedback taught (attribute value weights, see `agents.feedback`); hard filters from the
request and the intent (wanted / unwanted attribute values, year range, seen and excluded
items). With no signal at all it falls back to what is popular within the filters.
"""

from __future__ import annotations

import weakref

import numpy as np

from agents.schemas import CandidatePool, Intent, PoolCandidate
from agents.toolbox import Toolbox
from agents.user_analyst import profiled_attributes
from recdata.dataset import Dataset
from tools.base import History
from tools.candidates import CandidateFilters, generate_candidates, hybrid_candidates

REFERENCE_WEIGHT = 1.0
KEYWORD_WEIGHT = 0.5
PREFERENCE_WEIGHT = 1.5
"""Standard deviations of collaborative score that a full (+1) preference adds."""

_value_counts: weakref.WeakKeyDictionary[Dataset, dict[str, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def preference_scores(box: Toolbox, preferences: dict[str, dict[str, float]]) -> np.ndarray:
    """Per item: for each profiled attribute, the mean preference weight of its values,
    summed over attributes; 0 where nothing is known. O(values in `preferences` x items)."""
    ds = box.dataset
    counts = _value_counts.get(ds)
    if counts is None:
        counts = {
            name: np.asarray([len(item.attributes.get(name, ())) for item in ds.items], float)
            for name in profiled_attributes(box)
        }
        _value_counts[ds] = counts
    scores = np.zeros(ds.n_items, dtype=np.float64)
    for name, weights in preferences.items():
        n_values = counts.get(name)
        if n_values is None:  # not a profiled attribute of this catalog
            continue
        part = np.zeros(ds.n_items, dtype=np.float64)
        for value, weight in weights.items():
            if weight:
                part[box.catalog.mask(name, value)] += weight
        scores += np.divide(part, n_values, out=np.zeros_like(part), where=n_values > 0)
    return scores


def text_scores_from_hits(box: Toolbox, hits: list[tuple[str, float]]) -> np.ndarray:
    """A full score vector from the top hits of a text search: the hits keep their scores,
    every other item gets the lowest hit's score (below the hits, above nothing)."""
    index = box.dataset.item_index
    known = [(index[i], s) for i, s in hits if i in index]
    floor = min((s for _, s in known), default=0.0)
    scores = np.full(box.dataset.n_items, floor - 1e-6, dtype=np.float64)
    for row, score in known:
        scores[row] = score
    return scores


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
    preferences: dict[str, dict[str, float]] | None = None,
    text_scores: np.ndarray | None = None,
) -> CandidatePool:
    """`text_scores` replaces the in-process text search for the keywords (e.g. scores from
    the Chroma catalog); `preferences` are the user's learnt attribute value weights."""
    ds = box.dataset
    filters = merged_filters(filters, intent)
    collaborative = box.model.score([history])[0].astype(np.float64) if len(history) else None
    liked = preference_scores(box, preferences) if preferences else None
    if liked is not None and not liked.any():
        liked = None
    others: list[tuple[np.ndarray, float]] = []
    refs = box.indices(intent.reference_item_ids if intent is not None else [])
    if len(refs):
        others.append((box.model.score([History(refs)])[0].astype(np.float64), REFERENCE_WEIGHT))
    query = " ".join(intent.keywords) if intent is not None else ""
    if query.strip():
        text = text_scores if text_scores is not None else box.content.query_scores(query)
        others.append((np.asarray(text, dtype=np.float64), KEYWORD_WEIGHT))
    if liked is not None:
        if collaborative is not None:  # in units of the collaborative score's spread
            collaborative = _standardised(collaborative) + PREFERENCE_WEIGHT * liked
        else:
            others.append((liked, PREFERENCE_WEIGHT))
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
