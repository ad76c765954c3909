"""The contract every recommender tool implements, and the training data they learn from.

Every model scores items from a user's *history* (item indices ordered oldest first, with
optional timestamps), so it serves known users, anonymous sessions and evaluation splits
the same way and never needs per-user parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Self

import numpy as np
import scipy.sparse as sp

from recdata.dataset import Interactions


@dataclass(frozen=True, slots=True)
class History:
    """What a user did, oldest first. `timestamps` is None when the source has no times."""

    items: np.ndarray  # int item indices
    timestamps: np.ndarray | None = None
    ratings: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @classmethod
    def of(cls, items: Sequence[int]) -> History:
        return cls(np.asarray(items, dtype=np.int64))


@dataclass(frozen=True)
class TrainSet:
    """Training interactions grouped per user and ordered by time (stable), CSR-style.

    User `u`'s history is `items[indptr[u]:indptr[u+1]]`, oldest first.
    """

    n_users: int
    n_items: int
    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray

    @classmethod
    def from_interactions(cls, inter: Interactions, n_users: int, n_items: int) -> TrainSet:
        order = inter.time_order()
        users = inter.user[order]
        counts = np.bincount(users, minlength=n_users)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            n_users=n_users,
            n_items=n_items,
            indptr=indptr,
            items=inter.item[order].astype(np.int64),
            ratings=inter.rating[order].astype(np.float32),
            timestamps=inter.timestamp[order].astype(np.int64),
        )

    @property
    def n_interactions(self) -> int:
        return int(self.items.shape[0])

    def history(self, user: int) -> History:
        lo, hi = self.indptr[user], self.indptr[user + 1]
        return History(self.items[lo:hi], self.timestamps[lo:hi], self.ratings[lo:hi])

    def histories(self, users: Sequence[int] | np.ndarray) -> list[History]:
        return [self.history(int(u)) for u in users]

    @cached_property
    def user_of_row(self) -> np.ndarray:
        """The user index of every row of `items`."""
        return np.repeat(np.arange(self.n_users), np.diff(self.indptr))

    @cached_property
    def binary_matrix(self) -> sp.csr_matrix:
        """users x items, 1.0 where the user interacted with the item (repeats collapse)."""
        m = sp.csr_matrix(
            (np.ones(self.n_interactions, dtype=np.float32), self.items, self.indptr),
            shape=(self.n_users, self.n_items),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @cached_property
    def item_popularity(self) -> np.ndarray:
        """Number of distinct users per item."""
        return np.asarray(self.binary_matrix.sum(axis=0)).ravel()


def histories_matrix(histories: Sequence[History], n_items: int) -> sp.csr_matrix:
    """Stack histories into a binary len(histories) x n_items sparse matrix."""
    indptr = np.zeros(len(histories) + 1, dtype=np.int64)
    np.cumsum([len(h) for h in histories], out=indptr[1:])
    cols = (
        np.concatenate([h.items for h in histories]).astype(np.int64)
        if histories
        else np.zeros(0, dtype=np.int64)
    )
    m = sp.csr_matrix(
        (np.ones(cols.shape[0], dtype=np.float32), cols, indptr), shape=(len(histories), n_items)
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `k` highest scores, best first, skipping `exclude` (item indices).

    Ties are broken by the lower index, so results are deterministic.
    """
    s = np.asarray(scores, dtype=np.float64)
    if exclude is not None and len(exclude):
        s = s.copy()
        s[np.asarray(exclude, dtype=np.int64)] = -np.inf
    k = min(k, int(np.isfinite(s).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < s.shape[0]:
        kth = s[np.argpartition(-s, k - 1)[k - 1]]
        above = np.flatnonzero(s > kth)
        # items tied with the k-th score fill the rest, lowest indices first
        tied = np.flatnonzero(s == kth)[: k - above.shape[0]]
        cand = np.concatenate((above, tied))
    else:
        cand = np.flatnonzero(np.isfinite(s))
    order = np.lexsort((cand, -s[cand]))[:k]
    return cand[order].astype(np.int64)


class Recommender(ABC):
    """A recommender algorithm: fit on a `TrainSet`, then score every item for histories."""

    name: str = "recommender"

    @abstractmethod
    def fit(self, train: TrainSet) -> Self:
        """Learn from the training interactions; returns self."""

    @abstractmethod
    def score(self, histories: Sequence[History]) -> np.ndarray:
        """A float32 array of shape (len(histories), n_items); higher is better."""

    def recommend(
        self, history: History, k: int = 10, exclude: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-`k` (item index, score) pairs for one history, best first."""
        scores = self.score([history])[0]
        idx = top_k(scores, k, exclude)
        return [(int(i), float(scores[i])) for i in idx]


def ndcg_gains(ranks: np.ndarray, n: int) -> np.ndarray:
    """NDCG@n of single-target cases whose target sits at 0-based `ranks`: 1 / log2(rank + 2)
    where rank < n, else 0 (one relevant item: the ideal DCG is 1). The project's one NDCG:
    the evaluation's metrics and the default model's tuning both compute it here."""
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r < n, 1.0 / np.log2(r + 2.0), 0.0)
