"""Item-based k-nearest-neighbours on binarised interactions (cosine similarity).

Training computes the item-item co-occurrence matrix C = XᵀX sparsely, a block of item
rows at a time, turns each block into cosine similarities

    sim(i, j) = C[i, j] / (sqrt(n_i * n_j) + shrinkage)        (n_i = users of item i)

and keeps only the `k` largest similarities of every row (self-similarity dropped), so the
model is an `n_items x n_items` sparse matrix with at most `k` entries per row and the
dense `n_items²` matrix is never built. Shrinkage (default 0: plain cosine) pulls
similarities that rest on few co-occurrences towards zero.

A history's score is the sum of the similarity rows of its items: item j scores
sum over i in the history of sim(i, j), counting j only where it is among i's neighbours.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from tools.base import History, Recommender, TrainSet, histories_matrix

# Upper bound on co-occurrence entries computed at once (before duplicates are summed).
_BLOCK_BUDGET = 20_000_000


class ItemKNN(Recommender):
    name = "itemknn"

    def __init__(self, k: int = 100, shrinkage: float = 0.0) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {shrinkage}")
        self.k = int(k)
        self.shrinkage = float(shrinkage)
        self.similarity: sp.csr_matrix | None = None

    def fit(self, train: TrainSet) -> Self:
        x = train.binary_matrix.astype(np.float32)
        xt = x.T.tocsr()
        n_items = train.n_items
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
        user_lengths = np.asarray(x.sum(axis=1)).ravel()
        # entries row i of XᵀX may produce before summing duplicates: sum of its users' lengths
        row_work = xt @ user_lengths

        data_parts: list[np.ndarray] = []
        index_parts: list[np.ndarray] = []
        counts = np.zeros(n_items, dtype=np.int64)
        for lo, hi in _blocks(row_work, _BLOCK_BUDGET):
            block = (xt[lo:hi] @ x).tocsr()
            rows = np.repeat(np.arange(lo, hi, dtype=np.int32), np.diff(block.indptr))
            cols = block.indices
            sims = block.data / (norms[rows] * norms[cols] + self.shrinkage)
            sims[cols == rows] = 0.0
            keep = sims > 0
            for row in np.flatnonzero(np.diff(block.indptr) > self.k):
                start, end = block.indptr[row], block.indptr[row + 1]
                keep[start:end] = _top_k_mask(sims[start:end], cols[start:end], self.k)
            data_parts.append(sims[keep].astype(np.float32))
            index_parts.append(cols[keep].astype(np.int64))
            counts[lo:hi] = np.bincount(rows[keep] - lo, minlength=hi - lo)

        indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        self.similarity = sp.csr_matrix(
            (
                np.concatenate(data_parts) if data_parts else np.zeros(0, np.float32),
                np.concatenate(index_parts) if index_parts else np.zeros(0, np.int64),
                indptr,
            ),
            shape=(n_items, n_items),
        )
        self.similarity.sort_indices()
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        if self.similarity is None:
            raise RuntimeError("itemknn is not fitted: call fit(train) first")
        n_items = self.similarity.shape[0]
        h = histories_matrix(histories, n_items)
        return np.asarray((h @ self.similarity).toarray(), dtype=np.float32)

    def neighbours(self, item: int) -> list[tuple[int, float]]:
        """The kept neighbours of `item` with their similarity, most similar first."""
        if self.similarity is None:
            raise RuntimeError("itemknn is not fitted: call fit(train) first")
        lo, hi = self.similarity.indptr[item], self.similarity.indptr[item + 1]
        cols, sims = self.similarity.indices[lo:hi], self.similarity.data[lo:hi]
        order = np.lexsort((cols, -sims))
        return [(int(cols[o]), float(sims[o])) for o in order]


def _top_k_mask(sims: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """Mask of the `k` largest positive `sims` of one row; ties go to the lower column."""
    positive = sims > 0
    if int(positive.sum()) <= k:
        return positive
    kth = np.partition(sims, sims.shape[0] - k)[sims.shape[0] - k]
    mask = sims > kth
    tied = np.flatnonzero(sims == kth)
    needed = k - int(mask.sum())
    mask[tied[np.argsort(cols[tied], kind="stable")[:needed]]] = True
    return mask


def _blocks(row_work: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges whose summed work stays within `budget` (at least one row)."""
    n = row_work.shape[0]
    cumulative = np.cumsum(row_work)
    lo = 0
    while lo < n:
        base = cumulative[lo - 1] if lo else 0.0
        hi = int(np.searchsorted(cumulative, base + budget, side="right"))
        hi = max(hi, lo + 1)
        yield lo, min(hi, n)
        lo = hi
