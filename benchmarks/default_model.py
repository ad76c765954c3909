"""EASE vs the default model (and its components) on MovieLens 100K, dev and test splits.

Protocols as in DESIGN.md "Data and evaluation":
- full: leave-one-out by time (last = test, second-last = dev), rank every item outside the
  user's training history, NDCG@10 / HR@10;
- macrec: iterative 5-core, leave-one-out by time, only targets rated >= 4, 7 uniformly sampled
  never-interacted negatives (8 candidates, seeded), HR@1,3,5 / NDCG@1,3,5.

The default model tunes itself inside `fit` on the last interaction of each training history;
for the test split that is the dev target, for the dev split the one before. Nothing here
tunes anything on test targets.

    .venv/bin/python -m benchmarks.default_model [--data ../shared/data/ml-100k]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.metrics import hit_at, ndcg_at
from evaluation.splits import k_core, leave_last_out, sample_negatives
from recdata.dataset import Interactions
from tools.base import Recommender, TrainSet
from tools.default import FAMILIES, DefaultRecommender, ease_matrix

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "ml-100k"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "default_model.json"
SEED = 42


def load_ml100k(folder: Path) -> Interactions:
    """u.data as interactions in file order, ids mapped to dense indices."""
    raw = np.loadtxt(folder / "u.data", dtype=np.int64)
    _, users = np.unique(raw[:, 0], return_inverse=True)
    _, items = np.unique(raw[:, 1], return_inverse=True)
    return Interactions(
        user=users.astype(np.int32),
        item=items.astype(np.int32),
        rating=raw[:, 2].astype(np.float32),
        timestamp=raw[:, 3],
    )


def densify_items(inter: Interactions) -> tuple[Interactions, int, int]:
    _, users = np.unique(inter.user, return_inverse=True)
    _, items = np.unique(inter.item, return_inverse=True)
    out = Interactions(
        user=users.astype(np.int32),
        item=items.astype(np.int32),
        rating=inter.rating,
        timestamp=inter.timestamp,
    )
    return out, int(users.max()) + 1, int(items.max()) + 1


class EASEBaseline(Recommender):
    """Binarised EASE (reference baseline until tools.ease lands)."""

    name = "ease"

    def __init__(self, lam: float = 500.0) -> None:
        self.lam = lam
        self.b: np.ndarray | None = None

    def fit(self, train: TrainSet) -> EASEBaseline:
        self.b = ease_matrix(train.binary_matrix, self.lam)
        return self

    def score(self, histories: Any) -> np.ndarray:
        from tools.base import histories_matrix

        assert self.b is not None
        x = histories_matrix(histories, self.b.shape[0])
        return np.asarray(x @ self.b, dtype=np.float32)


Case = tuple[TrainSet, np.ndarray, np.ndarray, np.ndarray | None]  # train, users, targets, negs


def full_cases(inter: Interactions, n_users: int, n_items: int) -> dict[str, Case]:
    test = leave_last_out(inter)
    dev = leave_last_out(test.train)
    out: dict[str, Case] = {}
    for split, ho in (("dev", dev), ("test", test)):
        train = TrainSet.from_interactions(ho.train, n_users, n_items)
        out[split] = (train, ho.users, ho.targets, None)
    return out


def macrec_cases(inter: Interactions) -> dict[str, Case]:
    core, n_users, n_items = densify_items(k_core(inter, 5))
    test = leave_last_out(core)
    dev = leave_last_out(test.train)
    out: dict[str, Case] = {}
    for split, ho in (("dev", dev), ("test", test)):
        keep = ho.ratings >= 4
        users, targets = ho.users[keep], ho.targets[keep]
        negs = sample_negatives(core, users, n_items, 7, np.random.default_rng(SEED))
        train = TrainSet.from_interactions(ho.train, n_users, n_items)
        out[split] = (train, users, targets, negs)
    return out


def evaluate(model: Recommender, case: Case, batch: int = 512) -> dict[str, float]:
    train, users, targets, negs = case
    ranks = np.empty(users.shape[0], dtype=np.int64)
    for lo in range(0, users.shape[0], batch):
        us = users[lo : lo + batch]
        scores = model.score(train.histories(us)).astype(np.float64)
        for b, u in enumerate(us.tolist()):
            row, t = scores[b], int(targets[lo + b])
            if negs is None:
                hist = train.items[train.indptr[u] : train.indptr[u + 1]]
                cand = np.setdiff1d(np.arange(row.shape[0]), np.setdiff1d(hist, [t]))
            else:
                cand = np.concatenate([[t], negs[lo + b]])
            s = row[cand]
            st = row[t]
            ranks[lo + b] = int(((s > st) | ((s == st) & (cand < t))).sum())
    if negs is None:
        return {
            "NDCG@10": float(np.mean([ndcg_at(int(r), 10) for r in ranks])),
            "HR@10": float(np.mean([hit_at(int(r), 10) for r in ranks])),
            "n": int(ranks.shape[0]),
        }
    out: dict[str, float] = {}
    for k in (1, 3, 5):
        out[f"HR@{k}"] = float(np.mean([hit_at(int(r), k) for r in ranks]))
    for k in (1, 3, 5):
        out[f"NDCG@{k}"] = float(np.mean([ndcg_at(int(r), k) for r in ranks]))
    out["n"] = int(ranks.shape[0])
    return out


def component_models(tuned: DefaultRecommender) -> dict[str, Callable[[], Recommender]]:
    """Each chosen component alone (same variant as the tuned blend), fitted without tuning."""
    out: dict[str, Callable[[], Recommender]] = {}
    variants = tuned.chosen_["variants"]
    for fam in FAMILIES:
        if fam not in variants:
            continue

        def make(fam: str = fam) -> Recommender:
            return DefaultRecommender(
                tune=False,
                weights={fam: 1.0},
                variants=variants,
                dense_max_items=tuned.dense_max_items,
            )

        out[f"default[{fam} only]"] = make
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    inter = load_ml100k(args.data)
    n_users = int(inter.user.max()) + 1
    n_items = int(inter.item.max()) + 1
    protocols = {"full": full_cases(inter, n_users, n_items), "macrec": macrec_cases(inter)}
    results: dict[str, Any] = {"dataset": "movielens-100k", "protocols": {}}
    for proto, cases in protocols.items():
        results["protocols"][proto] = {}
        for split, case in cases.items():
            rows: dict[str, Any] = {}
            start = time.perf_counter()
            ease = EASEBaseline(500.0).fit(case[0])
            rows["ease(lambda=500)"] = evaluate(ease, case)
            start = time.perf_counter()
            model = DefaultRecommender().fit(case[0])
            fit_s = time.perf_counter() - start
            rows["default"] = {**evaluate(model, case), "fit_seconds": round(fit_s, 2)}
            for name, make in component_models(model).items():
                rows[name] = evaluate(make().fit(case[0]), case)
            results["protocols"][proto][split] = {
                "rows": rows,
                "chosen": model.chosen_,
                "inner_validation_ndcg10": model.validation_.get("blend"),
            }
            print(f"\n== {proto} / {split} (n={rows['default']['n']}) ==")
            print(f"chosen: {json.dumps(model.chosen_)}")
            metrics = [k for k in rows["default"] if k not in ("n", "fit_seconds")]
            print(f"{'model':28s}" + "".join(f"{m:>9s}" for m in metrics))
            for name, r in rows.items():
                print(f"{name:28s}" + "".join(f"{r[m]:9.4f}" for m in metrics))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
