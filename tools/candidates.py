"""Candidate generation: model scores, hard filters, and a popularity fallback.

Filters are hard: an item that fails one never becomes a candidate, whatever its score.
Only catalog items can come out (scores are indexed by item), and when the filters leave
fewer than `k` items the answer is shorter; nothing is made up to fill it.

Attribute values match case-insensitively ("comedy" matches "Comedy").
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recdata.dataset import Dataset
from tools.base import History

Source = Literal["collaborative", "content", "hybrid", "fallback"]


class CandidateFilters(BaseModel):
    """Hard constraints on candidates.

    - `exclude_seen`: drop items in the user's history.
    - `exclude_item_ids`: drop these items (ids not in the catalog are ignored).
    - `include`: {attribute: [values]}; an item must have at least one listed value for every
      listed attribute (OR within an attribute, AND across attributes).
    - `exclude`: {attribute: [values]}; an item with any listed value is dropped.
    """

    model_config = ConfigDict(extra="forbid")

    exclude_seen: bool = True
    exclude_item_ids: list[str] = Field(default_factory=list)
    include: dict[str, list[str]] = Field(default_factory=dict)
    exclude: dict[str, list[str]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Candidate:
    item_index: int
    item_id: str
    title: str
    score: float
    source: Source


class CatalogIndex:
    """Per-dataset lookups that filtering needs, computed once.

    Holds the item indices of every (attribute, value) pair (values case-folded); a boolean
    mask is built from them on first use and cached. Also holds item popularity (distinct
    users) for the fallback.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.n_items = dataset.n_items
        postings: dict[tuple[str, str], list[int]] = {}
        for index, item in enumerate(dataset.items):
            for attribute, values in item.attributes.items():
                for value in values:
                    postings.setdefault((attribute, value.casefold()), []).append(index)
        self._postings = {key: np.asarray(v, dtype=np.int64) for key, v in postings.items()}
        self._masks: dict[tuple[str, str], np.ndarray] = {}
        self.item_index = dataset.item_index
        inter = dataset.interactions
        width = max(self.n_items, 1)
        pairs = np.unique(inter.user.astype(np.int64) * width + inter.item.astype(np.int64))
        self.popularity = np.bincount(pairs % width, minlength=self.n_items).astype(np.float64)
        self._nothing = np.zeros(self.n_items, dtype=bool)
        self._nothing.flags.writeable = False

    def mask(self, attribute: str, value: str) -> np.ndarray:
        """Boolean mask of the items having `value` for `attribute` (read-only, cached)."""
        key = (attribute, value.casefold())
        mask = self._masks.get(key)
        if mask is None:
            postings = self._postings.get(key)
            if postings is None:
                return self._nothing  # unknown pairs are not cached: callers may send anything
            mask = np.zeros(self.n_items, dtype=bool)
            mask[postings] = True
            mask.flags.writeable = False
            self._masks[key] = mask
        return mask

    def any_of(self, attribute: str, values: Iterable[str]) -> np.ndarray:
        out = np.zeros(self.n_items, dtype=bool)
        for value in values:
            out |= self.mask(attribute, value)
        return out

    def allowed(self, filters: CandidateFilters, history: History | None = None) -> np.ndarray:
        """Boolean mask of the items that pass every filter."""
        keep = np.ones(self.n_items, dtype=bool)
        for attribute, values in filters.include.items():
            keep &= self.any_of(attribute, values)
        for attribute, values in filters.exclude.items():
            keep &= ~self.any_of(attribute, values)
        if filters.exclude_item_ids:
            known = [self.item_index[i] for i in filters.exclude_item_ids if i in self.item_index]
            keep[np.asarray(known, dtype=np.int64)] = False
        if filters.exclude_seen and history is not None and len(history):
            seen = np.asarray(history.items, dtype=np.int64)
            keep[seen[(seen >= 0) & (seen < self.n_items)]] = False
        return keep


_indexes: weakref.WeakKeyDictionary[Dataset, CatalogIndex] = weakref.WeakKeyDictionary()


def catalog_index(dataset: Dataset) -> CatalogIndex:
    """The `CatalogIndex` of `dataset`, built on first use and kept while the dataset lives."""
    index = _indexes.get(dataset)
    if index is None:
        index = _indexes[dataset] = CatalogIndex(dataset)
    return index


def generate_candidates(
    scores: np.ndarray | None,
    dataset: Dataset,
    history: History,
    filters: CandidateFilters | None = None,
    k: int = 50,
    source: Source = "collaborative",
) -> list[Candidate]:
    """The `k` best-scoring items that pass `filters`, best first.

    `scores` has one value per catalog item (higher is better; NaN and -inf never qualify).
    When there is no signal (empty history, no scores, or every allowed item scored the
    same) the candidates are the most popular allowed items, with source "fallback".
    Ties break by popularity, then by the lower item index.
    """
    return _generate(scores, dataset, history, filters, k, source, history_is_signal=True)


def _generate(
    scores: np.ndarray | None,
    dataset: Dataset,
    history: History,
    filters: CandidateFilters | None,
    k: int,
    source: Source,
    history_is_signal: bool,
) -> list[Candidate]:
    filters = filters if filters is not None else CandidateFilters()
    index = catalog_index(dataset)
    allowed = index.allowed(filters, history)
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if scores.shape[0] != dataset.n_items:
            raise ValueError(
                f"scores cover {scores.shape[0]} items but the catalog has {dataset.n_items}"
            )
        allowed &= ~np.isnan(scores) & (scores > -np.inf)
    pool = np.flatnonzero(allowed)
    if pool.shape[0] == 0 or k <= 0:
        return []
    no_signal = (
        scores is None or (history_is_signal and len(history) == 0) or np.ptp(scores[pool]) == 0
    )
    if no_signal:
        return _ranked(index.popularity, pool, index.popularity, dataset, k, "fallback")
    assert scores is not None
    return _ranked(scores, pool, index.popularity, dataset, k, source)


def _ranked(
    scores: np.ndarray,
    pool: np.ndarray,
    popularity: np.ndarray,
    dataset: Dataset,
    k: int,
    source: Source,
) -> list[Candidate]:
    pool_scores = scores[pool]
    if pool.shape[0] > k:
        kth = np.partition(pool_scores, pool.shape[0] - k)[pool.shape[0] - k]
        keep = pool_scores >= kth
        pool, pool_scores = pool[keep], pool_scores[keep]
    order = np.lexsort((pool, -popularity[pool], -pool_scores))[:k]
    return [
        Candidate(
            item_index=int(i),
            item_id=dataset.items[i].item_id,
            title=dataset.items[i].title,
            score=float(scores[i]),
            source=source,
        )
        for i in pool[order]
    ]


def normalise_scores(scores: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """Min-max scale scores so the finite ones in `within` (a mask; default all) span [0, 1].

    Constant scores become 0; NaN and infinities stay as they are.
    """
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    reference = finite & within if within is not None else finite
    out = s.copy()
    if not reference.any():
        out[finite] = 0.0
        return out
    lo, hi = s[reference].min(), s[reference].max()
    out[finite] = (s[finite] - lo) / (hi - lo) if hi > lo else 0.0
    return out


def blend_scores(
    collaborative: np.ndarray | None,
    content: np.ndarray | None,
    collaborative_weight: float = 1.0,
    content_weight: float = 0.5,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted sum of min-max normalised collaborative and content scores.

    Each source is scaled to [0, 1] over the items in `within` (e.g. the items that pass
    the filters, so that excluded items do not set the scale) since their raw scales are
    unrelated. A missing source (None) contributes nothing.
    """
    parts = [
        weight * normalise_scores(s, within)
        for s, weight in ((collaborative, collaborative_weight), (content, content_weight))
        if s is not None
    ]
    if not parts:
        raise ValueError("blend_scores needs at least one of collaborative or content scores")
    return np.asarray(sum(parts[1:], parts[0]))


def hybrid_candidates(
    dataset: Dataset,
    history: History,
    filters: CandidateFilters | None = None,
    k: int = 50,
    *,
    collaborative: np.ndarray | None = None,
    content: np.ndarray | None = None,
    collaborative_weight: float = 1.0,
    content_weight: float = 0.5,
) -> list[Candidate]:
    """Candidates from blended collaborative and content scores (see `blend_scores`).

    `content` is typically `ItemContentIndex.query_scores(query)` for a stated request or
    `ItemContentIndex.content_scores(history)` for a profile. A query gives signal even for
    an empty history, so the popularity fallback applies only when neither source
    discriminates between the allowed items.
    """
    if len(history) == 0:
        collaborative = None  # a model has nothing to say without a history
    if collaborative is None and content is None:
        return generate_candidates(None, dataset, history, filters, k)
    if collaborative is not None and content is not None:
        source: Source = "hybrid"
    else:
        source = "content" if content is not None else "collaborative"
    allowed = catalog_index(dataset).allowed(filters or CandidateFilters(), history)
    blended = blend_scores(collaborative, content, collaborative_weight, content_weight, allowed)
    # a query gives signal without a history, so only the scores decide "no signal" here
    return _generate(blended, dataset, history, filters, k, source, history_is_signal=False)
