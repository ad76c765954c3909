"""The default recommender: a self-tuning blend of collaborative and sequential signals.

EASE and item-kNN read a history as an unordered set; what the user did *most recently* is the
signal they ignore. This model scores every item as a weighted sum of per-user z-scored
component scores:

- `cf`: item-to-item collaborative filtering on the whole history (dense EASE up to
  `dense_max_items` items; above, a low-rank item-item model from iALS item factors Y
  (the `implicit` package): M = Y (Y'Y + lam I)^-1 Y', i.e. a history's weights are folded
  in as a ridge regression on the item factors, then scored against every item).
- `cf_recent`: the same item-item model applied to a recency-weighted history (weight
  exp(-k / h) for the item k steps from the end).
- `transition`: item-to-item transition counts (a -> b when b follows a within `gap`
  positions in a training sequence, weighted 1/distance, plus `back`/distance the other
  way; rows divided by the source's total^alpha), queried from the last items with decay.
- `sequential` (dense only): a linear next-item model, ridge regression from the
  recency-weighted state of the previous `window` items to the next item (closed form).
- `trending`: how popular each item was in the last `window` training interactions before the
  history's last timestamp (the catalogue's state "now"; training data only).
- `popularity`: distinct users per item.
A history with no usable signal (empty, unknown items) falls back on popularity.

Recency is counted in positions or, as a tuned option when timestamps tie (MovieLens logs
whole rating sessions in the same second, in arbitrary order), in distinct timestamps.
Histories without timestamps (anonymous sessions) use positions and take "now" as the end of
the training data.

`fit(train)` tunes itself on `train` only. It holds out the last `tune_holdout` (2)
interactions of each training history, fits every candidate variant on the rest, and scores
each held-out interaction from the history before it (a seeded sample of at most
`tune_users` users), ranking it among every item outside that history. Stage 1 scores every
variant alone (NDCG@10) and keeps a shortlist per family; stage 2 picks one shortlisted
variant and a weight per family by coordinate ascent on the blend's NDCG@10 plus
`sampled_weight` (0.2) x its NDCG@5 against 7 sampled never-seen items (so that a blend
tuned for full ranking does not let obscure items outrank popular targets, which sampled
protocols such as `macrec` punish). The chosen
variants are then refitted on all of `train`; `chosen_` and `validation_` record the choice.
When `train` is the test split's training data, the held-out interactions are the dev target
and the one before it, so nothing is ever tuned on a test target.

Complexity (n items, N interactions, L history length, V validation cases, k neighbours):
- dense EASE: O(n^2) memory, O(n^3) time per regularisation value;
- sequential: O(N window^2) for S'S plus O(n^3) per regularisation value, O(n^2) memory;
  dense variants are capped at `dense_budget / n^3` per fit (n = 8,000: 3);
- iALS (n > `dense_max_items`, f factors, I iterations): O(I (N f^2 + (n + users) f^3))
  time, O((n + users) f) memory, once per fit, O(f^3) per lambda; transitions: O(N gap);
  trending: O(N log N) once;
- tuning: O(variants V n) to score, O(shortlisted V P) memory for the blend table (P: pool of
  candidate items per case, all items when small);
- query: O(L n) dense, O(L f + n f) iALS, plus O(window + n) for trending.
Measured (2 cores): MovieLens 100K fit ~25 s; 100k items / 1M interactions: see
benchmarks/results/scale.json (benchmarks/scale.py).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from tools.base import History, Recommender, TrainSet, ndcg_gains

FAMILIES = ("cf", "cf_recent", "transition", "sequential", "trending", "popularity")
# families that score through an item x item matrix, and the kind explain() reports for them
ITEM_ITEM_KINDS = {
    "cf": "similar",
    "cf_recent": "recent",
    "transition": "transition",
    "sequential": "sequence",
}
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0)
_NEG = np.float32(-1e9)  # score of excluded or padded candidates during tuning


@dataclass(frozen=True)
class Variant:
    """One candidate configuration of a component family (hashable, used as a cache key)."""

    family: str
    params: tuple[tuple[str, float], ...] = ()

    def get(self, key: str) -> float:
        return dict(self.params)[key]

    def flag(self, key: str) -> bool:
        return bool(dict(self.params).get(key, 0.0))

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"{self.family}({inner})"


def _variant(family: str, **params: float) -> Variant:
    return Variant(family, tuple(sorted((k, float(v)) for k, v in params.items())))


def _middle_first(values: Sequence[float]) -> list[float]:
    """Grid values ordered by distance from the middle of the grid (ties: lower first)."""
    mid = (len(values) - 1) / 2
    order = sorted(range(len(values)), key=lambda i: (abs(i - mid), i))
    return [values[i] for i in order]


# ---------------------------------------------------------------------------------------------
# Item-item models


def ease_from_gram(gram: np.ndarray, lam: float) -> np.ndarray:
    """Dense EASE weights B (n x n, zero diagonal) from the item Gram matrix X'X (float64, not
    modified): B = I - P / diag(P), P = (X'X + lam I)^-1. O(n^2) memory, O(n^3) time."""
    regularised = gram.copy()
    regularised[np.diag_indices_from(regularised)] += lam
    p = np.linalg.inv(regularised)
    del regularised
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


class LowRank:
    """An n x n item-item matrix held as `left @ right.T` (n x f each, float32), never
    materialised."""

    def __init__(self, left: np.ndarray, right: np.ndarray) -> None:
        self.left = left
        self.right = right

    @property
    def shape(self) -> tuple[int, int]:
        return (self.left.shape[0], self.right.shape[0])

    def apply(self, weights: sp.csr_matrix, fast: bool = False) -> np.ndarray:
        """`weights @ matrix` for a (B, n) sparse weight matrix: O(nnz f + B n f).

        By default one matrix-vector product per history, so a history scores alike alone
        and in any batch (matrix products round differently by shape); `fast` uses one
        matrix product for the batch (tuning: n f bytes are read once, not B times)."""
        folded = np.asarray(weights @ self.left, dtype=np.float32)
        if fast:
            return np.asarray(folded @ self.right.T, dtype=np.float32)
        out = np.empty((folded.shape[0], self.right.shape[0]), dtype=np.float32)
        for b, vector in enumerate(folded):
            np.matmul(self.right, vector, out=out[b])
        return out

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """`matrix[rows][:, cols]`, each entry summed the same way whatever the shapes."""
        products = self.left[rows][:, None, :] * self.right[cols][None, :, :]
        return np.asarray(products.sum(axis=2), dtype=np.float32)


def ials_item_factors(
    binary: sp.csr_matrix,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    seed: int,
) -> np.ndarray:
    """Item factors (n x f, float32) of implicit-feedback ALS (Hu, Koren and Volinsky 2008;
    the `implicit` package's CPU solver) on the binarised user x item matrix."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # implicit runs its own threads and asks for single-threaded BLAS underneath them (it
    # checks, and warns, when the model is made)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
            calculate_training_loss=False,
        )
        model.fit(sp.csr_matrix(binary, dtype=np.float32), show_progress=False)
    return np.ascontiguousarray(model.item_factors, dtype=np.float32)


def ridge_fold_in(item_factors: np.ndarray, lam_factor: float) -> LowRank:
    """M = Y (Y'Y + lam I)^-1 Y' with lam = lam_factor * mean diag(Y'Y): a history h scores
    h M, its least-squares user vector (ridge, on the item factors) against every item."""
    y = item_factors.astype(np.float64)
    gram = y.T @ y
    lam = lam_factor * max(float(np.mean(np.diag(gram))), 1e-9)
    gram[np.diag_indices_from(gram)] += lam
    left = np.linalg.solve(gram, y.T).T  # Y (Y'Y + lam I)^-1, the matrix being symmetric
    return LowRank(np.ascontiguousarray(left, dtype=np.float32), item_factors)


def knn_matrix(
    binary: sp.csr_matrix, neighbors: int, block: int = 2048, shrink: float = 10.0
) -> sp.csr_matrix:
    """Sparse cosine item-item similarities, each source row pruned to its top `neighbors`.

    Co-occurrence counts are computed `block` source items at a time, so memory stays
    O(block * n + n * neighbors); time is O(sum_u L_u^2). `shrink` damps pairs seen rarely.
    """
    n = binary.shape[1]
    by_item = binary.T.tocsr()
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        co = (by_item[lo:hi] @ binary).tocsr()
        co.setdiag(0.0)
        co.eliminate_zeros()
        co.sort_indices()
        for r in range(hi - lo):
            start, end = co.indptr[r], co.indptr[r + 1]
            if start == end:
                continue
            c = co.indices[start:end]
            counts = co.data[start:end].astype(np.float32)
            sim = counts / (norms[lo + r] * norms[c]) * (counts / (counts + shrink))
            if sim.shape[0] > neighbors:
                keep = np.argpartition(-sim, neighbors - 1)[:neighbors]
                c, sim = c[keep], sim[keep]
            rows.append(np.full(c.shape[0], lo + r, dtype=np.int64))
            cols.append(c.astype(np.int64))
            vals.append(sim)
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


def transition_matrix(train: TrainSet, gap: int, alpha: float, back: float = 0.0) -> sp.csr_matrix:
    """a -> b weights: sum of 1/d over training sequences where b comes d <= `gap` after a
    (plus `back`/d where b comes d before a: orders within a burst are often arbitrary).

    Row a is divided by (its total outgoing weight)^alpha: alpha = 1 gives P(next | a).
    O(N * gap) time and memory.
    """
    n = train.n_items
    users = train.user_of_row
    src_parts, dst_parts, w_parts = [], [], []
    for d in range(1, gap + 1):
        same = users[:-d] == users[d:]
        src_parts.append(train.items[:-d][same])
        dst_parts.append(train.items[d:][same])
        w_parts.append(np.full(int(same.sum()), 1.0 / d, dtype=np.float32))
        if back > 0:
            src_parts.append(train.items[d:][same])
            dst_parts.append(train.items[:-d][same])
            w_parts.append(np.full(int(same.sum()), back / d, dtype=np.float32))
    src = np.concatenate(src_parts) if src_parts else np.zeros(0, dtype=np.int64)
    dst = np.concatenate(dst_parts) if dst_parts else np.zeros(0, dtype=np.int64)
    w = np.concatenate(w_parts) if w_parts else np.zeros(0, dtype=np.float32)
    t = sp.csr_matrix((w, (src, dst)), shape=(n, n), dtype=np.float32)
    t.sum_duplicates()
    out = np.asarray(t.sum(axis=1)).ravel()
    scale = np.zeros(n, dtype=np.float32)
    nz = out > 0
    scale[nz] = out[nz] ** -alpha
    return sp.csr_matrix(sp.diags(scale) @ t, dtype=np.float32)


def _collapse_max(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """A CSR matrix from coordinates where repeated (row, col) keep their largest value."""
    order = np.lexsort((-vals, cols, rows))
    r, c, v = rows[order], cols[order], vals[order]
    first = np.ones(r.shape[0], dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    # sorted by (row, col) without repeats: the CSR arrays directly (no COO round trip,
    # which costs more than the rest for the one-history queries of a graph run)
    r, c, v = r[first], c[first], v[first]
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((v.astype(np.float32), c, indptr), shape=shape)


def recency_steps(history: History, ties: bool = True) -> np.ndarray:
    """How far back each history item is, 0 for the last: in positions, or, with timestamps,
    in distinct timestamps (items logged in the same second are equally recent: their order
    within a burst is often arbitrary)."""
    n = len(history)
    if history.timestamps is None or not ties:
        return np.arange(n - 1, -1, -1, dtype=np.float32)
    ts = np.asarray(history.timestamps)
    step = np.concatenate([[0], np.cumsum(ts[1:] != ts[:-1])]).astype(np.float32)
    return step[-1] - step


def _train_steps(train: TrainSet, ties: bool) -> np.ndarray:
    """Per training row, its index in the user's sequence (of distinct timestamps if
    `ties`)."""
    users, ts = train.user_of_row, train.timestamps
    change = np.ones(train.n_interactions, dtype=np.int64)
    if ties:
        change[1:] = (ts[1:] != ts[:-1]) | (users[1:] != users[:-1])
    cum = np.cumsum(change)
    return cum - cum[train.indptr[users]]  # only users with rows: their start is a row


def sequence_states(train: TrainSet, half: float, window: int, ties: bool) -> sp.csr_matrix:
    """N x n: row t holds the (at most `window`) items before interaction t in its user's
    sequence, weighted exp(-(d - 1) / half) for the one d steps back (`recency_steps`; d = 0,
    a tie, weighs 1 too); repeats keep their largest weight."""
    users, items = train.user_of_row, train.items
    steps = _train_steps(train, ties)
    rows, cols, vals = [], [], []
    for k in range(1, window + 1):
        t = np.flatnonzero(users[k:] == users[:-k]) + k
        d = np.maximum(steps[t] - steps[t - k] - 1, 0).astype(np.float32)
        rows.append(t)
        cols.append(items[t - k])
        vals.append(np.exp(-d / np.float32(half)))
    shape = (train.n_interactions, train.n_items)
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float32)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    summed = sp.csr_matrix((v, (r, c)), shape=shape, dtype=np.float32)
    if summed.nnz == r.shape[0]:  # no item repeats within a window: nothing to collapse
        return summed
    return _collapse_max(r, c, v, shape)


def sequential_gram(
    train: TrainSet, half: float, window: int, ties: bool
) -> tuple[np.ndarray, np.ndarray]:
    """S'S and S'Y of the linear next-item model (see `sequential_matrix`), dense float64.

    O(N window^2) time, O(n^2) memory.
    """
    s = sequence_states(train, half, window, ties)
    gram = (s.T @ s).toarray().astype(np.float64)
    n_rows = train.n_interactions
    y = sp.csr_matrix(
        (np.ones(n_rows, dtype=np.float32), (np.arange(n_rows), train.items)),
        shape=(n_rows, train.n_items),
    )
    cross = (s.T @ y).toarray().astype(np.float64)
    return gram, cross


def sequential_matrix(gram: np.ndarray, cross: np.ndarray, lam_factor: float) -> np.ndarray:
    """Dense linear next-item model: B = argmin ||Y - S B||^2 + lam ||B||^2, where row t of
    S is the recency-weighted state before interaction t (`sequence_states`) and row t of Y
    is that interaction's item; lam = lam_factor * mean diag(S'S). O(n^3) time.
    """
    lam = lam_factor * max(float(np.mean(np.diag(gram))), 1e-6)
    regularised = gram.copy()
    regularised[np.diag_indices_from(regularised)] += lam
    return np.asarray(np.linalg.solve(regularised, cross), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Fitted state shared by the component scorers


class _QueryMemo:
    """Per-component query weights and unnormalised score rows of the last few one-history
    queries.

    One agent run asks the model about the same history several times (the Searcher's
    `score`, the Item Analyst's `explain_many`); each component's row is computed once. The
    key is the history's content (items and timestamps, all a query reads); the memo lives
    in the fitted state, so refitting starts afresh. Thread-safe; not pickled.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, dict[Variant, tuple[Any, np.ndarray]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(history: History) -> bytes:
        items = np.asarray(history.items, dtype=np.int64)
        parts = [str(items.shape[0]).encode(), items.tobytes()]
        if history.timestamps is not None:
            stamps = np.asarray(history.timestamps)
            parts += [stamps.dtype.str.encode(), stamps.tobytes()]
        return b"|".join(parts)

    def get(self, key: bytes, variant: Variant) -> tuple[Any, np.ndarray] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry.get(variant)

    def put(self, key: bytes, variant: Variant, value: tuple[Any, np.ndarray]) -> None:
        with self._lock:
            entry = self._entries.setdefault(key, {})
            entry[variant] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["size"])  # type: ignore[misc]


@dataclass
class _Fitted:
    """Everything fitted on one training set; variants' matrices are built lazily and cached."""

    train: TrainSet
    dense: bool
    knn_neighbors: int
    popularity: np.ndarray
    time_sorted: np.ndarray  # training timestamps in global time order
    items_by_time: np.ndarray  # training items in the same order
    cf: dict[float, Any] = field(default_factory=dict)  # lambda (or 0 for kNN) -> matrix
    transitions: dict[tuple[int, float, float], sp.csr_matrix] = field(default_factory=dict)
    sequential: dict[tuple[float, int, float, bool], np.ndarray] = field(default_factory=dict)
    # the last sequential S'S, S'Y (variants are ordered so that lambdas of one state follow)
    _sequential_parts: tuple[Any, np.ndarray, np.ndarray] | None = None
    _gram: np.ndarray | None = None  # X'X for dense EASE
    _ials: np.ndarray | None = None  # iALS item factors for the low-rank cf
    ials: dict[str, Any] = field(default_factory=dict)  # iALS parameters (sparse only)
    queries: _QueryMemo = field(default_factory=_QueryMemo, repr=False)

    def release_caches(self) -> None:
        """Drop the intermediate Gram matrices (O(n^2) each) once no model needs them."""
        self._sequential_parts = None
        self._gram = None
        self._ials = None

    def matrix_key(self, variant: Variant) -> tuple[str, Any] | None:
        """Which cached matrix a variant scores with (None: no matrix)."""
        if variant.family in ("cf", "cf_recent"):
            return ("cf", variant.get("lam"))
        if variant.family == "transition":
            return ("transition", _transition_key(variant))
        if variant.family == "sequential":
            return ("sequential", _sequential_key(variant))
        return None

    def keep_only(self, keys: set[tuple[str, Any] | None]) -> None:
        """Free every cached matrix whose key is not in `keys`."""
        self.cf = {k: v for k, v in self.cf.items() if ("cf", k) in keys}
        self.transitions = {k: v for k, v in self.transitions.items() if ("transition", k) in keys}
        self.sequential = {k: v for k, v in self.sequential.items() if ("sequential", k) in keys}

    @classmethod
    def build(
        cls,
        train: TrainSet,
        dense: bool,
        knn_neighbors: int,
        ials: dict[str, Any] | None = None,
    ) -> _Fitted:
        order = np.argsort(train.timestamps, kind="stable")
        return cls(
            train=train,
            dense=dense,
            knn_neighbors=knn_neighbors,
            ials=dict(ials or {}),
            popularity=train.item_popularity.astype(np.float32),
            time_sorted=train.timestamps[order],
            items_by_time=train.items[order],
        )

    def cf_matrix(self, lam: float) -> Any:
        """Dense EASE with l2 `lam`, or (sparse) the iALS low-rank model with fold-in
        lambda factor `lam`; lam 0 in sparse mode is a pruned item-kNN (older artifacts)."""
        if lam not in self.cf:
            binary = self.train.binary_matrix
            if self.dense:
                if self._gram is None:
                    self._gram = (binary.T @ binary).toarray().astype(np.float64)
                self.cf[lam] = ease_from_gram(self._gram, lam)
            elif lam == 0.0:
                self.cf[lam] = knn_matrix(binary, self.knn_neighbors)
            else:
                if self._ials is None:
                    self._ials = ials_item_factors(binary, **self.ials)
                self.cf[lam] = ridge_fold_in(self._ials, lam)
        return self.cf[lam]

    def transition(self, variant: Variant) -> sp.csr_matrix:
        key = _transition_key(variant)
        if key not in self.transitions:
            self.transitions[key] = transition_matrix(self.train, *key)
        return self.transitions[key]

    def sequential_model(self, variant: Variant) -> np.ndarray:
        key = _sequential_key(variant)
        if key not in self.sequential:
            half, window, lam, ties = key
            state = (half, window, ties)
            if self._sequential_parts is None or self._sequential_parts[0] != state:
                self._sequential_parts = None  # free the old pair before building the new
                self._sequential_parts = (state, *sequential_gram(self.train, *state))
            _, gram, cross = self._sequential_parts
            self.sequential[key] = sequential_matrix(gram, cross, lam)
        return self.sequential[key]


def _transition_key(variant: Variant) -> tuple[int, float, float]:
    return int(variant.get("gap")), variant.get("alpha"), variant.get("back")


def _sequential_key(variant: Variant) -> tuple[float, int, float, bool]:
    return (
        variant.get("half"),
        int(variant.get("window")),
        variant.get("lam"),
        variant.flag("ties"),
    )


def _history_weights(
    histories: Sequence[History],
    n_items: int,
    half: float | None,
    last: int | None = None,
    ties: bool = False,
) -> sp.csr_matrix:
    """B x n matrix of history weights: 1 (half None) or exp(-k / half) for the item k steps
    from the end (`recency_steps`); only the `last` items if set; repeats keep their largest
    weight; item indices outside the catalogue are ignored."""
    rows_list, cols_list, vals_list = [], [], []
    for b, h in enumerate(histories):
        items = np.asarray(h.items, dtype=np.int64)
        k = recency_steps(h, ties)
        if last is not None:
            items, k = items[-last:], k[-last:]
        w = np.ones(k.shape[0], np.float32) if half is None else np.exp(-k / np.float32(half))
        known = (items >= 0) & (items < n_items)
        rows_list.append(np.full(int(known.sum()), b, dtype=np.int64))
        cols_list.append(items[known])
        vals_list.append(w[known].astype(np.float32))
    if not rows_list:
        return sp.csr_matrix((len(histories), n_items), dtype=np.float32)
    return _collapse_max(
        np.concatenate(rows_list),
        np.concatenate(cols_list),
        np.concatenate(vals_list),
        (len(histories), n_items),
    )


def _as_dense(m: Any) -> np.ndarray:
    out = m.toarray() if sp.issparse(m) else np.asarray(m)
    return np.asarray(out, dtype=np.float32)


def _last_times(histories: Sequence[History]) -> np.ndarray:
    """Each history's last timestamp, +inf when unknown (then "now" = end of training)."""
    out = np.full(len(histories), np.inf)
    for b, h in enumerate(histories):
        if h.timestamps is not None and len(h.timestamps):
            out[b] = float(np.max(h.timestamps))
    return out


def _query_weights(variant: Variant, histories: Sequence[History], n: int) -> sp.csr_matrix:
    """The history weights an item-item family multiplies with its item matrix."""
    if variant.family == "cf":
        return _history_weights(histories, n, None)
    half, ties = variant.get("half"), variant.flag("ties")
    if variant.family == "cf_recent":
        return _history_weights(histories, n, half, ties=ties)
    if variant.family == "sequential":
        # the same weights as the training states (`sequence_states`)
        return _history_weights(histories, n, half, int(variant.get("window")), ties)
    return _history_weights(histories, n, half, max(1, math.ceil(4 * half)), ties)


def _apply(weights: sp.csr_matrix, matrix: Any, fast: bool = False) -> np.ndarray:
    """(B, n) scores: history weights times an item-item matrix of any kind (`fast`: see
    `LowRank.apply`)."""
    if isinstance(matrix, LowRank):
        return matrix.apply(weights, fast)
    return _as_dense(weights @ matrix)


def _entries(matrix: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`matrix[rows][:, cols]` as a dense float32 array, for any kind of item-item matrix."""
    if isinstance(matrix, LowRank):
        return matrix.entries(rows, cols)
    if sp.issparse(matrix):
        return _as_dense(matrix[rows][:, cols])
    return np.asarray(matrix[np.ix_(rows, cols)], dtype=np.float32)


def _item_matrix(fitted: _Fitted, variant: Variant) -> Any:
    if variant.family == "transition":
        return fitted.transition(variant)
    if variant.family == "sequential":
        return fitted.sequential_model(variant)
    return fitted.cf_matrix(variant.get("lam"))


def raw_scores(
    fitted: _Fitted, variant: Variant, histories: Sequence[History], fast: bool = False
) -> np.ndarray:
    """Unnormalised (B, n) scores of one component variant (`fast`, for tuning: a row may
    differ in the last bits from the same history's row in another batch)."""
    n = fitted.train.n_items
    fam = variant.family
    if fam in ITEM_ITEM_KINDS:
        weights = _query_weights(variant, histories, n)
        return _apply(weights, _item_matrix(fitted, variant), fast)
    if fam == "trending":
        window = int(variant.get("window"))
        ends = np.searchsorted(fitted.time_sorted, _last_times(histories), side="right")
        out = np.empty((len(histories), n), dtype=np.float32)
        for b, hi in enumerate(ends.tolist()):
            lo = max(0, hi - window)
            out[b] = np.bincount(fitted.items_by_time[lo:hi], minlength=n)
        return out
    if fam == "popularity":
        return np.broadcast_to(fitted.popularity, (len(histories), n)).copy()
    raise ValueError(f"unknown component family {fam!r}")


def _one_query(fitted: _Fitted, variant: Variant, history: History) -> tuple[Any, np.ndarray]:
    """One history's query weights (None for families without an item matrix) and raw score
    row under one component, as `raw_scores` computes them; remembered in `fitted.queries`.
    The row is shared: copy it before changing it."""
    key = _QueryMemo.key(history)
    found = fitted.queries.get(key, variant)
    if found is not None:
        return found
    if variant.family in ITEM_ITEM_KINDS:
        weights = _query_weights(variant, [history], fitted.train.n_items)
        row = _apply(weights, _item_matrix(fitted, variant))[0]
    else:
        weights, row = None, raw_scores(fitted, variant, [history])[0]
    row.flags.writeable = False
    fitted.queries.put(key, variant, (weights, row))
    return weights, row


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row z-score (in place); rows with no spread become all zeros."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    scores -= mean
    np.divide(scores, std, out=scores, where=std > 0)
    scores[(std <= 0).ravel()] = 0.0
    return scores


# ---------------------------------------------------------------------------------------------
# The model


class DefaultRecommender(Recommender):
    """Self-tuning blend of item-item CF, recency-weighted CF, transitions, a linear
    next-item model and (time-aware) popularity.

    Parameters are the search space and size limits; `fit` chooses within them (see the
    module docstring) and records the choice in `chosen_`. With `tune=False` it uses
    `weights`/`variants` as given (or sensible defaults).
    """

    name = "default"

    def __init__(
        self,
        *,
        dense_max_items: int = 8000,
        ease_lambda_factors: Sequence[float] = (1.0, 3.0, 10.0, 30.0),
        recent_halves: Sequence[float] = (2.0, 5.0, 15.0),
        transition_gaps: Sequence[int] = (2, 8),
        transition_alphas: Sequence[float] = (0.5, 1.0),
        transition_halves: Sequence[float] = (1.0, 3.0),
        transition_backs: Sequence[float] = (0.0, 0.3),
        trending_fractions: Sequence[float] = (0.003, 0.03),
        sequential_halves: Sequence[float] = (3.0, 8.0, 16.0),
        sequential_lambda_factors: Sequence[float] = (0.3, 1.0, 3.0),
        sequential_window: int = 50,
        dense_budget: float = 2e12,
        knn_neighbors: int = 100,
        ials_factors: int = 128,
        ials_iterations: int = 15,
        ials_regularization: float = 0.01,
        ials_alpha: float = 1.0,
        ials_lambda_factors: Sequence[float] = (0.1, 0.3, 1.0),
        tune: bool = True,
        tune_users: int = 2000,
        tune_holdout: int = 2,
        pool_per_variant: int = 100,
        coordinate_passes: int = 3,
        shortlist: int = 3,
        sampled_weight: float = 0.2,
        sampled_negatives: int = 7,
        seed: int = 0,
        weights: dict[str, float] | None = None,
        variants: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.dense_max_items = dense_max_items
        self.ease_lambda_factors = tuple(float(x) for x in ease_lambda_factors)
        self.recent_halves = tuple(float(x) for x in recent_halves)
        self.transition_gaps = tuple(int(x) for x in transition_gaps)
        self.transition_alphas = tuple(float(x) for x in transition_alphas)
        self.transition_halves = tuple(float(x) for x in transition_halves)
        self.transition_backs = tuple(float(x) for x in transition_backs)
        self.trending_fractions = tuple(float(x) for x in trending_fractions)
        self.sequential_halves = tuple(float(x) for x in sequential_halves)
        self.sequential_lambda_factors = tuple(float(x) for x in sequential_lambda_factors)
        self.sequential_window = sequential_window
        self.dense_budget = dense_budget
        self.knn_neighbors = knn_neighbors
        self.ials_factors = ials_factors
        self.ials_iterations = ials_iterations
        self.ials_regularization = ials_regularization
        self.ials_alpha = ials_alpha
        self.ials_lambda_factors = tuple(float(x) for x in ials_lambda_factors)
        self.tune = tune
        self.tune_users = tune_users
        self.tune_holdout = tune_holdout
        self.pool_per_variant = pool_per_variant
        self.coordinate_passes = coordinate_passes
        self.shortlist = shortlist
        self.sampled_weight = sampled_weight
        self.sampled_negatives = sampled_negatives
        self.seed = seed
        self.weights = weights
        self.variants = variants
        self.chosen_: dict[str, Any] = {}
        self.validation_: dict[str, float] = {}
        self._fitted: _Fitted | None = None
        self._blend: dict[str, tuple[Variant, float]] = {}

    # -- candidate variants ----------------------------------------------------------------

    def _window(self, n_interactions: int, fraction: float) -> int:
        return max(50, round(fraction * n_interactions))

    def candidate_variants(self, train: TrainSet, dense: bool) -> dict[str, list[Variant]]:
        """The variants each family may choose from for this training set.

        Dense variants (one EASE lambda, one sequential model) cost O(n^3) each; at most
        `dense_budget / n^3` of them (>= 2) are tried, grid values nearest the middle first.
        """
        mean_pop = train.n_interactions / max(1, train.n_items)
        # position- or timestamp-based recency: the same thing unless timestamps tie
        same_time = (train.timestamps[1:] == train.timestamps[:-1]) & (
            train.user_of_row[1:] == train.user_of_row[:-1]
        )
        tie_options = (0.0, 1.0) if same_time.any() else (0.0,)
        solves = max(2, int(self.dense_budget / float(train.n_items) ** 3))
        n_lams = min(len(self.ease_lambda_factors), max(1, solves // 3))
        factors = _middle_first(self.ease_lambda_factors)[:n_lams]
        if dense:
            lams = tuple(round(c * mean_pop, 1) for c in factors)
        else:
            lams = tuple(_middle_first(self.ials_lambda_factors))
        sequential = [
            _variant("sequential", half=h, window=self._sequential_window(h), lam=f, ties=t)
            for h in _middle_first(self.sequential_halves)
            for t in tie_options
            for f in _middle_first(self.sequential_lambda_factors)
        ]
        # keep whole lambda groups of one state together (they share S'S)
        sequential = sequential[: max(1, solves - n_lams)] if dense else []
        return {
            "cf": [_variant("cf", lam=lam) for lam in lams],
            "cf_recent": [
                _variant("cf_recent", lam=lam, half=h, ties=t)
                for lam in lams
                for h in self.recent_halves
                for t in tie_options
            ],
            "transition": [
                _variant("transition", gap=g, alpha=a, half=h, back=bk, ties=t)
                for g in self.transition_gaps
                for a in self.transition_alphas
                for h in self.transition_halves
                for bk in self.transition_backs
                for t in tie_options
            ],
            "sequential": sequential,
            "trending": [
                _variant("trending", window=self._window(train.n_interactions, f))
                for f in self.trending_fractions
            ],
            "popularity": [_variant("popularity")],
        }

    def _sequential_window(self, half: float) -> int:
        return max(1, min(self.sequential_window, math.ceil(3 * half)))

    def _default_blend(self, train: TrainSet, dense: bool) -> dict[str, tuple[Variant, float]]:
        mean_pop = train.n_interactions / max(1, train.n_items)
        lam = (
            round(self.ease_lambda_factors[len(self.ease_lambda_factors) // 2] * mean_pop, 1)
            if dense
            else self.ials_lambda_factors[len(self.ials_lambda_factors) // 2]
        )
        weights = self.weights or {"cf": 1.0, "cf_recent": 0.5, "transition": 0.5, "trending": 0.3}
        mid_half = self.recent_halves[len(self.recent_halves) // 2]
        variants = {
            "cf": _variant("cf", lam=lam),
            "cf_recent": _variant("cf_recent", lam=lam, half=mid_half),
            "transition": _variant(
                "transition",
                gap=max(self.transition_gaps),
                alpha=self.transition_alphas[0],
                half=self.transition_halves[-1],
                back=self.transition_backs[0],
            ),
            "trending": _variant(
                "trending",
                window=self._window(train.n_interactions, self.trending_fractions[1]),
            ),
            "popularity": _variant("popularity"),
        }
        if dense:
            half = self.sequential_halves[len(self.sequential_halves) // 2]
            variants["sequential"] = _variant(
                "sequential",
                half=half,
                window=self._sequential_window(half),
                lam=self.sequential_lambda_factors[len(self.sequential_lambda_factors) // 2],
            )
        for fam, params in (self.variants or {}).items():
            variants[fam] = _variant(fam, **params)
        return {f: (v, float(weights.get(f, 0.0))) for f, v in variants.items()}

    # -- fit -------------------------------------------------------------------------------

    def fit(self, train: TrainSet) -> Self:
        dense = train.n_items <= self.dense_max_items
        if self.tune:
            blend, report = self._tune(train, dense)
            self.validation_ = report
        else:
            blend = self._default_blend(train, dense)
        self._blend = {f: vw for f, vw in blend.items() if vw[1] > 0}
        if not self._blend:
            self._blend = {"popularity": (_variant("popularity"), 1.0)}
        self._fitted = _Fitted.build(train, dense, self.knn_neighbors, self._ials_params())
        for variant, _ in self._blend.values():  # build matrices now, not on first query
            if variant.family in ITEM_ITEM_KINDS:
                _item_matrix(self._fitted, variant)
        self._fitted.release_caches()
        self.chosen_ = {
            "method": "ease" if dense else "ials",
            "weights": {f: w for f, (_, w) in self._blend.items()},
            "variants": {f: dict(v.params) for f, (v, _) in self._blend.items()},
        }
        return self

    def _ials_params(self) -> dict[str, Any]:
        return {
            "factors": self.ials_factors,
            "regularization": self.ials_regularization,
            "alpha": self.ials_alpha,
            "iterations": self.ials_iterations,
            "seed": self.seed,
        }

    def _tune(self, train: TrainSet, dense: bool) -> tuple[dict[str, tuple[Variant, float]], dict]:
        inner, users, target_rows = inner_split(train, self.tune_holdout)
        if np.unique(users).shape[0] > self.tune_users:
            rng = np.random.default_rng(self.seed)
            picked = rng.choice(np.unique(users), self.tune_users, replace=False)
            keep = np.isin(users, picked)
            users, target_rows = users[keep], target_rows[keep]
        # a case: the user's training history up to the held-out row, and that row's item
        histories = [
            History(train.items[lo:row], train.timestamps[lo:row])
            for lo, row in zip(train.indptr[users].tolist(), target_rows.tolist(), strict=True)
        ]
        targets = train.items[target_rows]
        # the protocols rank only items outside the history: a repeat cannot be hit
        valid = [
            t not in set(h.items.tolist()) for h, t in zip(histories, targets.tolist(), strict=True)
        ]
        histories = [h for h, ok in zip(histories, valid, strict=True) if ok]
        targets = targets[np.asarray(valid, dtype=bool)]
        users = users[np.asarray(valid, dtype=bool)]
        if not histories:
            return self._default_blend(train, dense), {}
        negatives = sample_unseen(train, users, self.sampled_negatives, self.seed)
        sampled_weight = self.sampled_weight if negatives.shape[1] else 0.0
        fitted = _Fitted.build(inner, dense, self.knn_neighbors, self._ials_params())
        candidates = self.candidate_variants(inner, dense)
        # stage 1: every variant alone (exact full ranking), keeping a shortlist per family
        solo: dict[Variant, float] = {}
        shortlists: dict[str, list[Variant]] = {}
        for fam in FAMILIES:
            for i, variant in enumerate(candidates.get(fam, [])):
                solo[variant] = solo_ndcg(fitted, variant, histories, targets)
                # a stable sort: earlier (more central) variants win ties
                ranked = sorted([*shortlists.get(fam, []), variant], key=lambda v: -solo[v])
                shortlists[fam] = ranked[: self.shortlist]
                needed = {fitted.matrix_key(v) for vs in shortlists.values() for v in vs}
                needed |= {fitted.matrix_key(v) for v in candidates[fam][i + 1 :]}
                needed |= {
                    fitted.matrix_key(v)
                    for later in FAMILIES[FAMILIES.index(fam) + 1 :]
                    for v in candidates.get(later, [])
                }
                fitted.keep_only(needed)
        fitted.release_caches()
        # stage 2: blend the shortlisted variants
        variants = [v for fam in FAMILIES for v in shortlists.get(fam, [])]
        table = ValidationTable.compute(
            fitted,
            variants,
            histories,
            targets,
            self.pool_per_variant,
            negatives,
            sampled_weight,
        )
        blend, score = coordinate_ascent(table, shortlists, solo, self.coordinate_passes)
        report = {f"solo {v}": value for v, value in solo.items()}
        report["blend"] = score
        return blend, report

    # -- score / explain -------------------------------------------------------------------

    def _require_fitted(self) -> _Fitted:
        if self._fitted is None:
            raise RuntimeError("DefaultRecommender is not fitted; call fit(train) first")
        return self._fitted

    def score(self, histories: Sequence[History]) -> np.ndarray:
        """Blended scores (B, n_items); O(B * query cost), see the module docstring."""
        fitted = self._require_fitted()
        out = np.zeros((len(histories), fitted.train.n_items), dtype=np.float32)
        if not histories:
            return out
        for variant, weight in self._blend.values():
            if len(histories) == 1:  # an agent run's query: remember the rows for explain
                raw = _one_query(fitted, variant, histories[0])[1][None, :].copy()
            else:
                raw = raw_scores(fitted, variant, histories)
            out += np.float32(weight) * standardise(raw)
        # a history-free row (empty history, or only unknown items) falls back on popularity
        # unless the blend already ranks it by a history-free signal
        flat = out.max(axis=1) == out.min(axis=1)
        if flat.any():
            pop = standardise(fitted.popularity[None, :].copy())[0]
            out[flat] += pop
        return out

    def explain(self, history: History, item: int) -> list[tuple[int, float, str]]:
        """Which history items drove `item`'s score: (history item, contribution, kind).

        kind is "similar" (item-item CF on the whole history), "recent" (CF on the
        recency-weighted history), "transition" (follow-up counts) or "sequence" (the linear
        next-item model). Contributions are
        on the blended score's scale (weight / component std), largest first; O(L n) per
        call (one score row per component for the normalisation).
        """
        fitted = self._require_fitted()
        n = fitted.train.n_items
        if not 0 <= item < n:
            raise ValueError(f"item index {item} is outside the catalogue of {n} items")
        contrib: dict[tuple[int, str], float] = {}
        for fam, (variant, weight) in self._blend.items():
            if fam not in ITEM_ITEM_KINDS:
                continue
            row = raw_scores(fitted, variant, [history])[0]
            std = float(row.std())
            if std <= 0:
                continue
            x = _query_weights(variant, [history], n)
            src, w = x.indices, x.data
            col = _entries(_item_matrix(fitted, variant), src, np.asarray([item])).ravel()
            for s, ws, c in zip(src.tolist(), w.tolist(), col.tolist(), strict=True):
                value = weight * ws * c / std
                if value != 0.0:
                    key = (int(s), ITEM_ITEM_KINDS[fam])
                    contrib[key] = contrib.get(key, 0.0) + value
        ranked = sorted(contrib.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        return [(s, float(v), kind) for (s, kind), v in ranked]

    def explain_many(
        self, history: History, items: Sequence[int] | np.ndarray, limit: int | None = None
    ) -> list[list[tuple[int, float, str]]]:
        """`explain(history, item)` for each of `items`, equal to it item by item (only its
        first `limit` entries when set).

        Each component's query weights and score row (for the normalisation) are computed
        once per history instead of once per item: O(L n + L m) for m items instead of
        O(m L n). `explain` stays the plain per-item reference this must agree with.
        """
        fitted = self._require_fitted()
        n = fitted.train.n_items
        targets = np.asarray(items, dtype=np.int64).reshape(-1)
        outside = targets[(targets < 0) | (targets >= n)]
        if outside.size:
            raise ValueError(f"item index {int(outside[0])} is outside the catalogue of {n} items")
        sources: list[np.ndarray] = []
        kinds: list[np.ndarray] = []
        values: list[np.ndarray] = []
        kind_names = sorted(ITEM_ITEM_KINDS.values())  # ties sort by kind name, as in explain
        for fam, (variant, weight) in self._blend.items():
            if fam not in ITEM_ITEM_KINDS:
                continue
            x, row = _one_query(fitted, variant, history)
            matrix = _item_matrix(fitted, variant)
            std = float(row.std())
            if std <= 0:
                continue
            src = x.indices.astype(np.int64)
            cols = _entries(matrix, src, targets)
            # the same float64 operations, in the same order, as explain's weight * ws * c / std
            ws = x.data.astype(np.float64)[:, None]
            values.append(weight * ws * cols.astype(np.float64) / std)
            sources.append(src)
            kinds.append(np.full(src.shape[0], kind_names.index(ITEM_ITEM_KINDS[fam])))
        if not values:
            return [[] for _ in range(targets.shape[0])]
        # every (source, kind) pair appears once: each family has its own kind and its query
        # weights hold each history item once, so nothing needs summing
        all_sources = np.concatenate(sources)
        all_kinds = np.concatenate(kinds)
        all_values = np.concatenate(values, axis=0)
        out: list[list[tuple[int, float, str]]] = []
        for j in range(targets.shape[0]):
            column = all_values[:, j]
            nonzero = np.flatnonzero(column != 0.0)
            v, s, k = column[nonzero], all_sources[nonzero], all_kinds[nonzero]
            order = np.lexsort((k, s, -np.abs(v)))[:limit]
            out.append(
                [
                    (si, vi, kind_names[ki])
                    for si, vi, ki in zip(
                        s[order].tolist(), v[order].tolist(), k[order].tolist(), strict=True
                    )
                ]
            )
        return out


# ---------------------------------------------------------------------------------------------
# Self-tuning


def inner_split(train: TrainSet, holdout: int = 1) -> tuple[TrainSet, np.ndarray, np.ndarray]:
    """Hold out the last `holdout` interactions of every user with more than that.

    Returns the remaining training set, and per held-out row its user and its row index in
    `train` (users ascending, rows in time order).
    """
    counts = np.diff(train.indptr)
    has_target = counts > holdout
    ends = train.indptr[1:][has_target]
    held_rows = (ends[:, None] - np.arange(holdout, 0, -1)[None, :]).ravel()
    held_users = np.repeat(np.flatnonzero(has_target), holdout)
    keep = np.ones(train.n_interactions, dtype=bool)
    keep[held_rows] = False
    new_counts = counts - holdout * has_target.astype(np.int64)
    indptr = np.zeros(train.n_users + 1, dtype=np.int64)
    np.cumsum(new_counts, out=indptr[1:])
    inner = TrainSet(
        n_users=train.n_users,
        n_items=train.n_items,
        indptr=indptr,
        items=train.items[keep],
        ratings=train.ratings[keep],
        timestamps=train.timestamps[keep],
    )
    return inner, held_users.astype(np.int64), held_rows.astype(np.int64)


def solo_ndcg(
    fitted: _Fitted,
    variant: Variant,
    histories: list[History],
    targets: np.ndarray,
    budget: float = 5e7,
) -> float:
    """Mean NDCG@10 of one variant alone, ranking each target among all items outside its
    history (ties: lower index first, as the evaluation harness)."""
    n = fitted.train.n_items
    chunk = max(8, min(2048, int(budget / max(1, n))))
    gains = []
    for lo in range(0, len(histories), chunk):
        hs = histories[lo : lo + chunk]
        tg = targets[lo : lo + chunk]
        scores = raw_scores(fitted, variant, hs, fast=True)
        for b, h in enumerate(hs):
            scores[b, np.asarray(h.items, dtype=np.int64)] = -np.inf
        rows = np.arange(len(hs))
        target = scores[rows, tg]
        ahead = (scores > target[:, None]).sum(axis=1)
        tied = scores == target[:, None]
        # only tied items with a lower index rank ahead
        tied_before = np.cumsum(tied, axis=1)[rows, tg] - 1
        rank = ahead + tied_before
        gains.append(ndcg_gains(rank, 10))
    return float(np.concatenate(gains).mean()) if gains else 0.0


def sample_unseen(train: TrainSet, users: np.ndarray, m: int, seed: int) -> np.ndarray:
    """(len(users), m) items drawn uniformly (seeded) from those each user never touched in
    `train`, without repeats within a row; (len(users), 0) when some user has too few."""
    rng = np.random.default_rng(seed)
    out = np.empty((users.shape[0], m), dtype=np.int64)
    for row, u in enumerate(users.tolist()):
        seen = set(train.items[train.indptr[u] : train.indptr[u + 1]].tolist())
        if train.n_items - len(seen) < m:
            return np.zeros((users.shape[0], 0), dtype=np.int64)
        chosen: list[int] = []
        while len(chosen) < m:
            cand = int(rng.integers(train.n_items))
            if cand not in seen and cand not in chosen:
                chosen.append(cand)
        out[row] = chosen
    return out


@dataclass
class ValidationTable:
    """Standardised scores of every variant on a per-user candidate pool.

    The pool is the union of each variant's top `pool_per_variant` items plus the target
    (or every item when that is about as many), history items excluded; ranking the target
    within the pool gives the full-ranking rank for any blend whose top 10 comes from the
    variants' top lists, which is what matters for NDCG@10.
    """

    variants: list[Variant]
    scores: np.ndarray  # (n_variants, V, P) float32, _NEG for padding/history
    target_col: np.ndarray  # (V,) column of the target in the pool
    negative_cols: np.ndarray  # (V, m) columns of sampled never-seen items (m may be 0)
    sampled_weight: float = 0.0

    @classmethod
    def compute(
        cls,
        fitted: _Fitted,
        variants: list[Variant],
        histories: list[History],
        targets: np.ndarray,
        pool_per_variant: int,
        negatives: np.ndarray | None = None,
        sampled_weight: float = 0.0,
        budget: float = 1e8,
    ) -> ValidationTable:
        if negatives is None:
            negatives = np.zeros((len(histories), 0), dtype=np.int64)
        n = fitted.train.n_items
        chunk = max(8, min(512, int(budget / max(1, len(variants) * n))))
        exact = pool_per_variant * len(variants) >= n // 2
        pools: list[np.ndarray] = []
        parts: list[np.ndarray] = []
        for lo in range(0, len(histories), chunk):
            hs = histories[lo : lo + chunk]
            tg = targets[lo : lo + chunk]
            z = np.stack([standardise(raw_scores(fitted, v, hs, fast=True)) for v in variants])
            for b, h in enumerate(hs):
                z[:, b, np.asarray(h.items, dtype=np.int64)] = _NEG
            if exact:
                pool = np.broadcast_to(np.arange(n), (len(hs), n))
            else:
                k = min(pool_per_variant, n - 1)
                tops = np.argpartition(-z, k - 1, axis=2)[:, :, :k]  # (C, b, k)
                rows = []
                for b in range(len(hs)):
                    extra = np.concatenate([[tg[b]], negatives[lo + b]])
                    cand = np.unique(np.concatenate([tops[:, b].ravel(), extra]))
                    rows.append(cand)
                width = max(r.shape[0] for r in rows)
                pool = np.full((len(hs), width), -1, dtype=np.int64)
                for b, r in enumerate(rows):
                    pool[b, : r.shape[0]] = r
            gathered = np.take_along_axis(z, np.maximum(pool, 0)[None], axis=2)
            gathered[:, pool < 0] = _NEG
            pools.append(pool)
            parts.append(gathered)
        width = max(p.shape[1] for p in pools)
        scores = np.full((len(variants), len(histories), width), _NEG, dtype=np.float32)
        target_col = np.zeros(len(histories), dtype=np.int64)
        negative_cols = np.zeros(negatives.shape, dtype=np.int64)
        row = 0
        for pool, part in zip(pools, parts, strict=True):
            b = pool.shape[0]
            scores[:, row : row + b, : pool.shape[1]] = part
            target_col[row : row + b] = np.argmax(pool == targets[row : row + b, None], axis=1)
            negs = negatives[row : row + b]
            negative_cols[row : row + b] = np.argmax(pool[:, None, :] == negs[:, :, None], axis=2)
            row += b
        return cls(variants, scores, target_col, negative_cols, sampled_weight)

    def combine(self, blend: dict[Variant, float]) -> np.ndarray:
        """The weighted sum of the given variants' standardised scores, (V, P)."""
        total = np.zeros((self.scores.shape[1], self.scores.shape[2]), dtype=np.float32)
        index = {v: i for i, v in enumerate(self.variants)}
        for v, w in blend.items():
            if w:
                total += np.float32(w) * self.scores[index[v]]
        return total

    def ndcg(self, blend: dict[Variant, float]) -> float:
        """Mean NDCG@10 of the target under the weighted sum of the given variants."""
        return self.ndcg_of(self.combine(blend))

    def ndcg_of(self, total: np.ndarray) -> float:
        """The tuning objective under blended pool scores `total`: mean full-ranking NDCG@10,
        plus `sampled_weight` x mean NDCG@5 of the target among itself and the sampled
        never-seen items (the `macrec` protocol's view: popular targets must not sink below
        obscure items)."""
        rows = np.arange(total.shape[0])
        target = total[rows, self.target_col]
        value = self._full_ndcg(total, target)
        if self.sampled_weight and self.negative_cols.shape[1]:
            neg = total[rows[:, None], self.negative_cols]
            ahead = (neg > target[:, None]) | (
                (neg == target[:, None]) & (self.negative_cols < self.target_col[:, None])
            )
            rank = ahead.sum(axis=1)
            value += self.sampled_weight * float(ndcg_gains(rank, 5).mean())
        return value

    def _full_ndcg(self, total: np.ndarray, target: np.ndarray) -> float:
        cols = np.arange(total.shape[1])[None, :]
        # ties count as ahead when their column (= item order in the pool) is lower, as in
        # the evaluation harness; counting only strictly higher scores would reward ties
        ahead = (total > target[:, None]) | (
            (total == target[:, None]) & (cols < self.target_col[:, None])
        )
        return float(ndcg_gains(ahead.sum(axis=1), 10).mean())


def coordinate_ascent(
    table: ValidationTable,
    shortlists: dict[str, list[Variant]],
    solo: dict[Variant, float],
    passes: int,
) -> tuple[dict[str, tuple[Variant, float]], float]:
    """Pick each family's variant (from its shortlist) and weight to maximise NDCG@10.

    Starts from the best single variant; then goes family by family, tries every
    (variant, weight) pair with the others fixed and keeps strict improvements, for at most
    `passes` rounds. Deterministic. Returns the blend and its validation NDCG@10.
    """
    families = [f for f in FAMILIES if shortlists.get(f)]
    ranked = shortlists
    blend = {fam: (ranked[fam][0], 0.0) for fam in families}
    first = max(families, key=lambda f: (solo[ranked[f][0]], -families.index(f)))
    blend[first] = (ranked[first][0], 1.0)
    best = table.ndcg({ranked[first][0]: 1.0})
    index = {v: i for i, v in enumerate(table.variants)}
    trial = np.empty((table.scores.shape[1], table.scores.shape[2]), dtype=np.float32)
    for _ in range(passes):
        improved = False
        for fam in families:
            others = {v: w for f, (v, w) in blend.items() if f != fam}
            if not any(others.values()):
                others = {}
            base = table.combine(others)
            for v in ranked[fam]:
                for w in WEIGHT_GRID:
                    if (v, w) == blend[fam] or (w == 0 and not others):
                        continue
                    np.multiply(table.scores[index[v]], np.float32(w), out=trial)
                    trial += base
                    got = table.ndcg_of(trial)
                    if got > best + 1e-9:
                        best, improved = got, True
                        blend = {**blend, fam: (v, w)}
        if not improved:
            break
    return blend, best
