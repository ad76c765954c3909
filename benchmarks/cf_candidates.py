"""Candidates for the default model's collaborative part above its dense limit, each alone.

The default model (tools/default.py) uses dense EASE up to `dense_max_items` items; above,
it needs a collaborative model that scales. This benchmark scores candidates alone on the
`full` protocol's dev split (never test), NDCG@10 and HR@10 with standard errors:
- `ease(l2)`: dense EASE (the reference);
- `ials-lowrank(lam)`: the default's model: iALS item factors Y (`implicit`) and
  M = Y (Y'Y + lam I)^-1 Y', lam = factor x mean diag Y'Y (`tools.default.ridge_fold_in`);
- `ials-foldin`: the same factors with iALS's exact per-user fold-in
  (Y'Y + alpha Y_u'Y_u + reg I) x = (1 + alpha) Y_u' 1;
- `nbr-ease(l2, k)`: sparse EASE restricted to neighbourhoods: column j is the ridge
  regression of item j on its k most co-occurring items (EASE itself when k = n).
Catalogs as in `benchmarks.default_model` (default: ml-latest-small-permuted).

    .venv/bin/python -m benchmarks.cf_candidates [--dataset ml-latest-small-permuted]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from benchmarks.default_model import CATALOGS, PERMUTE_SEED, RESULTS, standard_errors
from benchmarks.report import machine_info, write_json
from evaluation.harness import rank_cases
from evaluation.protocols import DEFAULT_SEED, RankingCases, build_cases, ranking_metrics
from tools.base import History, Recommender, TrainSet, histories_matrix
from tools.default import ials_item_factors, ridge_fold_in
from tools.ease import EASE

IALS = {"factors": 128, "regularization": 0.01, "alpha": 1.0, "iterations": 15, "seed": 0}


class LowRankIALS(Recommender):
    name = "ials-lowrank"

    def __init__(self, factors: np.ndarray, lam_factor: float) -> None:
        self.matrix = ridge_fold_in(factors, lam_factor)

    def fit(self, train: TrainSet) -> Self:
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        return self.matrix.apply(histories_matrix(histories, self.matrix.shape[0]).tocsr())


class FoldInIALS(Recommender):
    name = "ials-foldin"

    def __init__(self, factors: np.ndarray, alpha: float, regularization: float) -> None:
        self.y = factors.astype(np.float64)
        self.alpha, self.regularization = alpha, regularization

    def fit(self, train: TrainSet) -> Self:
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        gram = self.y.T @ self.y + self.regularization * np.eye(self.y.shape[1])
        out = np.empty((len(histories), self.y.shape[0]), dtype=np.float32)
        for b, history in enumerate(histories):
            yu = self.y[np.unique(np.asarray(history.items, dtype=np.int64))]
            user = np.linalg.solve(gram + self.alpha * yu.T @ yu, (1 + self.alpha) * yu.sum(0))
            out[b] = self.y @ user
        return out


class NeighbourhoodEASE(Recommender):
    name = "nbr-ease"

    def __init__(self, l2: float, neighbours: int) -> None:
        self.l2, self.neighbours = l2, neighbours
        self.weights: sp.csr_matrix | None = None

    def fit(self, train: TrainSet) -> Self:
        x = train.binary_matrix.astype(np.float64)
        gram = (x.T @ x).toarray()  # dense: this benchmark's catalogs are small enough
        n = gram.shape[0]
        rows, cols, vals = [], [], []
        for j in range(n):
            co = gram[j].copy()
            co[j] = 0.0
            cand = np.flatnonzero(co)
            if cand.size > self.neighbours:
                cand = cand[np.argpartition(-co[cand], self.neighbours - 1)[: self.neighbours]]
            if cand.size == 0:
                continue
            sub = gram[np.ix_(cand, cand)]
            sub[np.diag_indices_from(sub)] += self.l2
            rows.append(cand)
            cols.append(np.full(cand.size, j))
            vals.append(np.linalg.solve(sub, gram[cand, j]))
        self.weights = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        assert self.weights is not None
        h = histories_matrix(histories, self.weights.shape[0])
        return np.asarray((h @ self.weights).toarray(), dtype=np.float32)


def evaluate(model: Recommender, cases: RankingCases, fit_s: float = 0.0) -> dict[str, Any]:
    start = time.perf_counter()
    model.fit(cases.train)
    fit_s += time.perf_counter() - start
    ranks = rank_cases(model, cases)
    row = ranking_metrics("full", ranks)
    return {**row, "se": standard_errors(ranks, ("HR@10", "NDCG@10")), "fit_s": round(fit_s, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(CATALOGS), default="ml-latest-small-permuted")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    dataset = CATALOGS[args.dataset].load(args.data, PERMUTE_SEED)
    cases = build_cases(dataset, "full", "dev", DEFAULT_SEED)
    assert isinstance(cases, RankingCases)
    rows: dict[str, dict[str, Any]] = {"ease(l2=500)": evaluate(EASE(l2=500.0), cases)}
    start = time.perf_counter()
    factors = ials_item_factors(cases.train.binary_matrix, **IALS)  # type: ignore[arg-type]
    ials_s = time.perf_counter() - start
    for lam in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0):
        rows[f"ials-lowrank(lam={lam:g})"] = evaluate(LowRankIALS(factors, lam), cases, ials_s)
    rows["ials-foldin"] = evaluate(FoldInIALS(factors, IALS["alpha"], 0.01), cases, ials_s)
    for l2, k in ((500.0, 50), (500.0, 100), (200.0, 200)):
        rows[f"nbr-ease(l2={l2:g}, k={k})"] = evaluate(NeighbourhoodEASE(l2, k), cases)
    print(f"{args.dataset} full / dev ({len(cases)} cases, {cases.train.n_items} items)")
    for name, row in rows.items():
        ndcg, se = row["NDCG@10"], row["se"]["NDCG@10"]
        print(f"{name:28s} NDCG@10 {ndcg:.4f} ± {se:.4f}  HR@10 {row['HR@10']:.4f}")
    report = {
        "benchmark": "cf_candidates",
        "dataset": args.dataset,
        "split": "dev",
        "ials": IALS,
        "machine": machine_info(),
        "rows": rows,
    }
    write_json(args.out or RESULTS / f"cf_candidates_{args.dataset}.json", report)


if __name__ == "__main__":
    main()
