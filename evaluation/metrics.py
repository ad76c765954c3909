"""Ranking and rating metrics as small named classes.

Ranking metrics take a ranked list of item ids (best first) and the set of relevant ids, and
return a value for that one list; the harness averages over test cases.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from tools.base import ndcg_gains


@dataclass(frozen=True)
class Hit:
    """HR@n = 1 if any relevant item is among the first n of the list, else 0."""

    n: int

    @property
    def name(self) -> str:
        return f"HR@{self.n}"

    def __call__(self, ranked: Sequence[object], relevant: Collection[object]) -> float:
        return 1.0 if any(x in relevant for x in ranked[: self.n]) else 0.0


@dataclass(frozen=True)
class NDCG:
    """NDCG@n with binary gains: DCG = sum over relevant items at 0-based rank r < n of
    1 / log2(r + 2), divided by the ideal DCG = sum_{r < min(n, |relevant|)} 1 / log2(r + 2).
    """

    n: int

    @property
    def name(self) -> str:
        return f"NDCG@{self.n}"

    def __call__(self, ranked: Sequence[object], relevant: Collection[object]) -> float:
        if not relevant:
            return 0.0
        found = [r for r, x in enumerate(ranked[: self.n]) if x in relevant]
        dcg = ndcg_gains(np.asarray(found), self.n).sum()
        ideal = ndcg_gains(np.arange(min(self.n, len(relevant))), self.n).sum()
        return float(dcg / ideal)


@dataclass(frozen=True)
class Recall:
    """Recall@n = |relevant among the first n| / |relevant|."""

    n: int

    @property
    def name(self) -> str:
        return f"Recall@{self.n}"

    def __call__(self, ranked: Sequence[object], relevant: Collection[object]) -> float:
        if not relevant:
            return 0.0
        return sum(1 for x in ranked[: self.n] if x in relevant) / len(relevant)


@dataclass(frozen=True)
class MRR:
    """Reciprocal rank: 1 / (1 + r) for the 0-based rank r of the first relevant item, else 0.

    Over the whole given list (no cut-off), so pass the full ranking for an exact MRR.
    """

    @property
    def name(self) -> str:
        return "MRR"

    def __call__(self, ranked: Sequence[object], relevant: Collection[object]) -> float:
        for r, x in enumerate(ranked):
            if x in relevant:
                return 1.0 / (r + 1)
        return 0.0


def rank_of_target(scores: np.ndarray, target: int, exclude: np.ndarray | None = None) -> int:
    """0-based rank of `target` among the scored items, `exclude` removed.

    Items scoring exactly as high as the target count as ahead of it only if their index is
    lower (the same tie-break as `tools.base.top_k`), so the rank is what a top-k list shows.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = s[target]
    ahead = s > t
    ties = s == t
    ties[target:] = False
    mask = ahead | ties
    if exclude is not None and len(exclude):
        ex = np.asarray(exclude, dtype=np.int64)
        ex = ex[ex != target]
        mask[ex] = False
    return int(mask.sum())


def hit_at(rank: int, n: int) -> float:
    """HR@n for a single target at 0-based `rank`."""
    return 1.0 if rank < n else 0.0


def ndcg_at(rank: int, n: int) -> float:
    """NDCG@n for a single target at 0-based `rank`: 1 / log2(rank + 2) if rank < n."""
    return float(ndcg_gains(np.asarray(rank), n))


def rmse(predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Root mean squared error: sqrt(mean((p - a)^2))."""
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean((p - a) ** 2))) if len(a) else float("nan")


def mae(predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Mean absolute error: mean(|p - a|)."""
    p, a = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(p - a))) if len(a) else float("nan")


# Vectorised forms for single-target cases: `ranks` holds the 0-based rank of each case's
# one relevant item, so HR@n = mean(rank < n) and NDCG@n's ideal DCG is 1.


def ranks_of_targets(
    scores: np.ndarray, targets: np.ndarray, exclude: np.ndarray | None = None
) -> np.ndarray:
    """`rank_of_target` for a batch: row b of `scores` ranks `targets[b]`.

    `exclude` is an optional boolean mask of the same shape as `scores` (True = not ranked);
    a target is never excluded from its own row. NaN scores rank last.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    rows = np.arange(s.shape[0])
    t = s[rows, targets][:, np.newaxis]
    lower_index = np.arange(s.shape[1])[np.newaxis, :] < targets[:, np.newaxis]
    ahead = (s > t) | ((s == t) & lower_index)
    if exclude is not None:
        ahead &= ~exclude
    return ahead.sum(axis=1).astype(np.int64)


def hit_rate(ranks: np.ndarray, n: int) -> float:
    """Mean HR@n over single-target cases at 0-based `ranks`."""
    return float(np.mean(ranks < n)) if len(ranks) else float("nan")


def mean_ndcg(ranks: np.ndarray, n: int) -> float:
    """Mean NDCG@n over single-target cases: 1 / log2(rank + 2) where rank < n, else 0."""
    return float(np.mean(ndcg_gains(ranks, n))) if len(ranks) else float("nan")


def mean_reciprocal_rank(ranks: np.ndarray) -> float:
    """MRR over single-target cases: mean of 1 / (rank + 1) over the full rankings."""
    return (
        float(np.mean(1.0 / (np.asarray(ranks, dtype=np.float64) + 1.0)))
        if len(ranks)
        else float("nan")
    )


def paired_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Mean of the per-case differences a - b of two models on the same cases, and its
    standard error: sd(a - b) / sqrt(n), with the sample sd (n - 1). Pairing removes what
    the cases share (an easy target is easy for both), so the error is smaller than the
    two means' errors combined. (nan, nan) for no case; the error is nan for one case."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not len(d):
        return float("nan"), float("nan")
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se
