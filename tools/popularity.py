"""The two reference points every evaluation reports: random scores and item popularity."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Self

import numpy as np

from tools.base import History, Recommender, TrainSet


class RandomRecommender(Recommender):
    """Uniform random scores, reproducible per (seed, history).

    The generator is seeded from `seed` and a CRC32 of the history's item indices, so the
    same history always gets the same scores, in any process, whatever the batch it comes in.
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.n_items: int | None = None

    def fit(self, train: TrainSet) -> Self:
        self.n_items = train.n_items
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        if self.n_items is None:
            raise RuntimeError("random is not fitted: call fit(train) first")
        n_items = self.n_items
        out = np.empty((len(histories), n_items), dtype=np.float32)
        for row, history in enumerate(histories):
            digest = zlib.crc32(np.ascontiguousarray(history.items, dtype=np.int64).tobytes())
            rng = np.random.default_rng([self.seed, digest])
            out[row] = rng.random(n_items, dtype=np.float32)
        return out


class PopularityRecommender(Recommender):
    """Scores every item by the number of distinct training users who interacted with it."""

    name = "pop"

    def __init__(self) -> None:
        self.popularity: np.ndarray | None = None

    def fit(self, train: TrainSet) -> Self:
        self.popularity = train.item_popularity.astype(np.float32)
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        if self.popularity is None:
            raise RuntimeError("pop is not fitted: call fit(train) first")
        return np.tile(self.popularity, (len(histories), 1))
