"""Rating predictors for the `rate` task and protocol, one per model name.

Like the recommenders, a predictor keeps no per-user parameters: the user's bias and
residuals are computed from the ratings in the history it is given, so known users,
anonymous sessions and evaluation splits are served alike. Every prediction is clipped to
the range of ratings seen in training.

- `pop`: damped baseline mu + b_u + b_i (item biases fitted by alternating damped means).
- `itemknn`: the baseline plus a similarity-weighted mean of the user's residuals on the
  target's nearest neighbours among the rated items (shrunk Pearson-baseline similarity).
- `ease`: the baseline plus an EASE-style closed-form regression of each item's residual on
  the others' (ridge `l2`, zero diagonal). It needs a dense n_items² inverse, so above
  `max_items` items it falls back to `itemknn`.
- `default`: a linear blend of the three and of two recency-weighted baselines (the user
  bias follows the latest ratings, half-lives 3 and 12 ratings: on MovieLens a user's next
  rating is much closer to their last few than to their average). Blend weights are fitted
  by least squares on each training user's last rating (the dev targets when run on the test
  split) with components trained on the rest; then the components are refitted on all of
  the training data. The half-lives were chosen on the ml-100k dev split.
- `mean` (global mean) and `random` (uniform in the rating range) are reference points.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from core.errors import ConfigError
from tools.base import History, TrainSet


class RatingPredictor(ABC):
    """Fit on a `TrainSet`, then predict the rating of `items[c]` for `histories[c]`."""

    name: str = "rating"
    low: float = -np.inf
    high: float = np.inf

    def fit(self, train: TrainSet) -> Self:
        if train.n_interactions == 0:
            raise ValueError(f"{self.name}: no training ratings")
        self.low, self.high = float(train.ratings.min()), float(train.ratings.max())
        self._fit(train)
        return self

    def predict(
        self, histories: Sequence[History], items: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """Float64 predictions, one per (history, item) pair, clipped to the training range."""
        item_arr = np.asarray(items, dtype=np.int64)
        if len(histories) != len(item_arr):
            raise ValueError("predict needs one item per history")
        return np.clip(self._predict(histories, item_arr), self.low, self.high)

    @abstractmethod
    def _fit(self, train: TrainSet) -> None: ...

    @abstractmethod
    def _predict(self, histories: Sequence[History], items: np.ndarray) -> np.ndarray: ...


class GlobalMean(RatingPredictor):
    name = "mean"

    def _fit(self, train: TrainSet) -> None:
        self.mean = float(train.ratings.mean())

    def _predict(self, histories: Sequence[History], items: np.ndarray) -> np.ndarray:
        return np.full(len(items), self.mean)


class RandomRating(RatingPredictor):
    """Uniform in the training rating range; seeded, so a run is reproducible."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, train: TrainSet) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _predict(self, histories: Sequence[History], items: np.ndarray) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, len(items))


def _stacked(histories: Sequence[History]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(row of each entry, item indices, ratings or None if any history lacks them)."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    if not histories:
        return rows, np.zeros(0, np.int64), np.zeros(0)
    items = np.concatenate([h.items for h in histories]).astype(np.int64)
    if any(h.ratings is None for h in histories):
        return rows, items, None
    ratings = np.concatenate([np.asarray(h.ratings) for h in histories]).astype(np.float64)
    return rows, items, ratings


class BiasBaseline(RatingPredictor):
    """r = mu + b_u + b_i with damped means: b = sum(residual) / (damping + count).

    With a `half_life`, b_u weighs the rating k positions from the end of the history by
    0.5^(k / half_life) (and the count by the same weights): users drift, and their next
    rating follows their latest ones.
    """

    name = "pop"

    def __init__(
        self,
        user_damping: float = 5.0,
        item_damping: float = 5.0,
        rounds: int = 3,
        half_life: float | None = None,
    ) -> None:
        self.user_damping, self.item_damping, self.rounds = user_damping, item_damping, rounds
        self.half_life = half_life

    def _fit(self, train: TrainSet) -> None:
        users, items, ratings = train.user_of_row, train.items, train.ratings.astype(np.float64)
        self.mu = float(ratings.mean())
        item_count = np.bincount(items, minlength=train.n_items)
        user_count = np.bincount(users, minlength=train.n_users)
        user_bias = np.zeros(train.n_users)
        for _ in range(self.rounds):
            residual = ratings - self.mu - user_bias[users]
            self.item_bias = np.bincount(items, residual, train.n_items) / (
                self.item_damping + item_count
            )
            residual = ratings - self.mu - self.item_bias[items]
            user_bias = np.bincount(users, residual, train.n_users) / (
                self.user_damping + user_count
            )

    def user_biases(self, histories: Sequence[History]) -> np.ndarray:
        rows, items, ratings = _stacked(histories)
        if ratings is None:
            return np.zeros(len(histories))
        residual = ratings - self.mu - self.item_bias[items]
        n = len(histories)
        weight = np.ones(len(rows))
        if self.half_life is not None:
            ends = np.cumsum([len(h) for h in histories])
            from_end = ends[rows] - 1 - np.arange(len(rows))
            weight = 0.5 ** (from_end / self.half_life)
        return np.bincount(rows, residual * weight, n) / (
            self.user_damping + np.bincount(rows, weight, n)
        )

    def residuals(self, histories: Sequence[History], n_items: int) -> sp.csr_matrix:
        """len(histories) x n_items residuals r - baseline of the rated items (repeats averaged)."""
        rows, items, ratings = _stacked(histories)
        if ratings is None:
            ratings = self.mu + self.item_bias[items]
        b_u = self.user_biases(histories)
        residual = ratings - self.mu - b_u[rows] - self.item_bias[items]
        keys, where = np.unique(rows * n_items + items, return_inverse=True)
        mean = np.bincount(where, residual) / np.bincount(where)
        return sp.csr_matrix(
            (mean, (keys // n_items, keys % n_items)), shape=(len(histories), n_items)
        )

    def _predict(self, histories: Sequence[History], items: np.ndarray) -> np.ndarray:
        return self.mu + self.user_biases(histories) + self.item_bias[items]


class _ResidualModel(RatingPredictor):
    """A model of the residuals left by a `BiasBaseline`."""

    def _fit(self, train: TrainSet) -> None:
        self.baseline = BiasBaseline().fit(train)
        self.n_items = train.n_items
        users = np.arange(train.n_users)
        self._fit_residuals(self.baseline.residuals(train.histories(users), train.n_items))

    def _predict(self, histories: Sequence[History], items: np.ndarray) -> np.ndarray:
        base = self.baseline._predict(histories, items)
        return base + self._predict_residuals(
            self.baseline.residuals(histories, self.n_items), items
        )

    @abstractmethod
    def _fit_residuals(self, residuals: sp.csr_matrix) -> None: ...

    @abstractmethod
    def _predict_residuals(self, residuals: sp.csr_matrix, items: np.ndarray) -> np.ndarray: ...


class ItemKNNRating(_ResidualModel):
    """Baseline + sum(s_ij e_uj) / sum(|s_ij|) over the `k` most similar items j the user rated.

    s_ij is the cosine of the residuals over users who rated both (Pearson-baseline),
    multiplied by n_ij / (n_ij + shrinkage); each item keeps its `max_neighbours` best.
    """

    name = "itemknn"

    def __init__(self, k: int = 40, shrinkage: float = 100.0, max_neighbours: int = 500):
        self.k, self.shrinkage, self.max_neighbours = k, shrinkage, max_neighbours

    def _fit_residuals(self, residuals: sp.csr_matrix) -> None:
        e = residuals.tocsc()
        rated = e.copy()
        rated.data[:] = 1.0
        squared = e.multiply(e).tocsc()
        n = e.shape[1]
        block = max(1, 2_000_000 // max(n, 1))
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            dot = (e.T @ e[:, lo:hi]).toarray()
            both = (rated.T @ rated[:, lo:hi]).toarray()
            norm_i = (squared.T @ rated[:, lo:hi]).toarray()
            norm_j = (rated.T @ squared[:, lo:hi]).toarray()
            with np.errstate(divide="ignore", invalid="ignore"):
                sim = dot / np.sqrt(norm_i * norm_j) * both / (both + self.shrinkage)
            sim[~np.isfinite(sim)] = 0.0
            sim[np.arange(lo, hi), np.arange(hi - lo)] = 0.0
            keep = min(self.max_neighbours, n)
            top = np.argpartition(-sim, keep - 1, axis=0)[:keep] if keep < n else None
            for c in range(hi - lo):
                idx = top[:, c] if top is not None else np.arange(n)
                s = sim[idx, c]
                good = s > 0
                rows.append(np.full(int(good.sum()), lo + c))
                cols.append(idx[good])
                vals.append(s[good])
        self.neighbours = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )

    def _predict_residuals(self, residuals: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        out = np.zeros(len(items))
        nb = self.neighbours
        for c, item in enumerate(items.tolist()):
            lo, hi = nb.indptr[item], nb.indptr[item + 1]
            r_lo, r_hi = residuals.indptr[c], residuals.indptr[c + 1]
            common, in_nb, in_hist = np.intersect1d(
                nb.indices[lo:hi], residuals.indices[r_lo:r_hi], True, return_indices=True
            )
            if not len(common):
                continue
            sims = nb.data[lo:hi][in_nb]
            res = residuals.data[r_lo:r_hi][in_hist]
            if len(sims) > self.k:
                best = np.argpartition(-sims, self.k - 1)[: self.k]
                sims, res = sims[best], res[best]
            out[c] = float(sims @ res / np.abs(sims).sum())
        return out


class EASERating(_ResidualModel):
    """Baseline + x_u B[:, i], where B is EASE's closed form on the residual matrix X:
    P = (XᵀX + l2·I)⁻¹, B = -P / diag(P) with a zero diagonal. Above `max_items` items the
    dense inverse is too costly and item-kNN on the same residuals is used instead.
    """

    name = "ease"

    def __init__(self, l2: float = 200.0, max_items: int = 20_000):
        self.l2, self.max_items = l2, max_items

    def _fit_residuals(self, residuals: sp.csr_matrix) -> None:
        n = residuals.shape[1]
        self.fallback: ItemKNNRating | None = None
        if n > self.max_items:
            self.fallback = ItemKNNRating()
            self.fallback._fit_residuals(residuals)
            return
        gram = (residuals.T @ residuals).toarray() + self.l2 * np.eye(n)
        precision = np.linalg.inv(gram)
        self.weights = precision / -np.diag(precision)[np.newaxis, :]
        np.fill_diagonal(self.weights, 0.0)

    def _predict_residuals(self, residuals: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        if self.fallback is not None:
            return self.fallback._predict_residuals(residuals, items)
        return np.asarray(residuals.multiply(self.weights[:, items].T).sum(axis=1)).ravel()


def _without_last(train: TrainSet) -> tuple[TrainSet, np.ndarray, np.ndarray, np.ndarray]:
    """`train` minus each user's last row (users with 2+ rows), and those rows' users, items
    and ratings."""
    counts = np.diff(train.indptr)
    users = np.flatnonzero(counts >= 2)
    last = train.indptr[users + 1] - 1
    keep = np.ones(train.n_interactions, dtype=bool)
    keep[last] = False
    indptr = np.zeros_like(train.indptr)
    np.cumsum(counts - np.isin(np.arange(train.n_users), users), out=indptr[1:])
    rest = TrainSet(
        train.n_users,
        train.n_items,
        indptr,
        train.items[keep],
        train.ratings[keep],
        train.timestamps[keep],
    )
    return rest, users, train.items[last], train.ratings[last].astype(np.float64)


class BlendedRating(RatingPredictor):
    """Least-squares blend of the baseline, item-kNN and EASE predictions (see module doc)."""

    name = "default"

    def __init__(self, ridge: float = 1.0) -> None:
        self.ridge = ridge

    def _components(self) -> list[RatingPredictor]:
        return [
            BiasBaseline(),
            ItemKNNRating(),
            EASERating(),
            BiasBaseline(user_damping=2.0, half_life=3.0),
            BiasBaseline(user_damping=2.0, half_life=12.0),
        ]

    def _features(self, histories: Sequence[History], items: np.ndarray) -> np.ndarray:
        columns = [np.ones(len(items))] + [m._predict(histories, items) for m in self.models]
        return np.column_stack(columns)

    def _fit(self, train: TrainSet) -> None:
        rest, users, items, ratings = _without_last(train)
        self.models = [m.fit(rest) for m in self._components()]
        x = self._features(rest.histories(users), items)
        penalty = self.ridge * np.eye(x.shape[1])
        penalty[0, 0] = 0.0
        self.blend = np.linalg.solve(x.T @ x + penalty, x.T @ ratings)
        self.models = [m.fit(train) for m in self._components()]

    def _predict(self, histories: Sequence[History], items: np.ndarray) -> np.ndarray:
        return self._features(histories, items) @ self.blend


PREDICTORS: dict[str, type[RatingPredictor]] = {
    "random": RandomRating,
    "mean": GlobalMean,
    "pop": BiasBaseline,
    "itemknn": ItemKNNRating,
    "ease": EASERating,
    "default": BlendedRating,
}


def create_predictor(name: str, **params: Any) -> RatingPredictor:
    """A new, unfitted rating predictor called `name` (see `PREDICTORS`)."""
    cls = PREDICTORS.get(name)
    if cls is None:
        known = ", ".join(PREDICTORS)
        raise ConfigError(f"unknown rating model {name!r}; known rating models: {known}")
    return cls(**params)
