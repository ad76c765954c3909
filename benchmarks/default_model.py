"""The default model vs the classical baselines (and its own components) on several catalogs.

Both ranking protocols of DESIGN.md "Data and evaluation" (evaluation.protocols), dev and
test splits:
- full: leave-one-out by time, the target ranked among every item outside the user's
  training history, NDCG@10 / HR@10 (and Recall@10, MRR);
- macrec: iterative 5-core, leave-one-out by time, targets rated >= 4, 7 sampled negatives
  (seeded), HR@1,3,5 / NDCG@1,3,5.

The default model tunes itself inside `fit` on the last two interactions of each training
history (for the test split: the dev target and the one before it). Its components are then
evaluated alone, each with the variant the tuned blend chose, to show what each adds. EASE
runs with the reference regularisation (l2 = 500, binarised).

Catalogs (`--dataset`):
- `ml-100k`: MovieLens 100K (1,682 items), both protocols, with the default's components;
- `ml-latest-small`: MovieLens latest-small (9,742 items) in its real time order;
- `ml-latest-small-permuted`: the same with each user's timestamps permuted among that
  user's own ratings (seeded, `--permute-seed` 7): the order carries no signal, so the
  collaborative part has to carry the default alone;
- `synthetic-longtail`: `benchmarks.synthetic` with 12,000 items, 150,000 drawn
  interactions and 6,000 users, Zipf popularity (exponent 1.0), each (user, item) pair kept
  once (its first interaction: 94,631 remain); the order carries no signal.
The MovieLens data is read from `../shared/data` (never copied into the project).

Every split reports, beside the means, default minus EASE per case (NDCG@10, or NDCG@5 for
`macrec`, and HR@10 / HR@5) with its standard error: the standard deviation of the paired
per-case differences over the square root of the number of cases.

    .venv/bin/python -m benchmarks.default_model [--dataset ml-100k] [--data PATH]
        [--splits dev,test] [--protocols full,macrec] [--components] [--out ...json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import machine_info, write_json
from benchmarks.synthetic import SyntheticSpec, synthetic_dataset
from evaluation.harness import rank_cases
from evaluation.metrics import paired_difference
from evaluation.protocols import (
    DEFAULT_SEED,
    METRICS,
    Protocol,
    RankingCases,
    Split,
    build_cases,
    check_protocol,
    check_split,
    ranking_metrics,
)
from recdata.dataset import Dataset, Interactions
from recdata.loaders import load_dataset
from tools.base import Recommender, ndcg_gains
from tools.default import FAMILIES, DefaultRecommender
from tools.ease import EASE
from tools.itemknn import ItemKNN
from tools.popularity import PopularityRecommender

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"
RESULTS = REPO_ROOT / "benchmarks" / "results"
EASE_ROW = "ease(l2=500)"
PERMUTE_SEED = 7
LONGTAIL = SyntheticSpec(
    n_items=12_000,
    n_interactions=150_000,
    n_users=6_000,
    n_clusters=100,
    popularity_exponent=1.0,
    seed=20251208,
)


def permute_user_times(inter: Interactions, seed: int) -> Interactions:
    """Each user's timestamps permuted among that user's own interactions (seeded): the same
    users, items, ratings and timestamps, with a random order within every history."""
    n = len(inter)
    rng = np.random.default_rng(seed)
    by_user = np.lexsort((np.arange(n), inter.user))  # each user's rows in file order
    shuffled = np.lexsort((rng.random(n), inter.user))  # the same blocks, randomly ordered
    timestamp = inter.timestamp.copy()
    timestamp[by_user] = inter.timestamp[shuffled]
    return Interactions(
        user=inter.user,
        item=inter.item,
        rating=inter.rating,
        timestamp=timestamp,
        has_ratings=inter.has_ratings,
        has_timestamps=inter.has_timestamps,
    )


@dataclass(frozen=True)
class Catalog:
    """A benchmark catalog: how to load it and what to run on it by default."""

    load: Callable[[Path | None, int], Dataset]
    protocols: str
    components: bool
    out: str


def _movielens(folder: str, fmt: str, permute: bool) -> Callable[[Path | None, int], Dataset]:
    def load(data: Path | None, seed: int) -> Dataset:
        dataset = load_dataset(data or SHARED_DATA / folder, fmt)
        if not permute:
            return dataset
        permuted = permute_user_times(dataset.interactions, seed)
        return Dataset(f"{dataset.name}-permuted", dataset.items, dataset.users, permuted)

    return load


def first_interactions(inter: Interactions) -> Interactions:
    """Each (user, item) pair's first interaction in file order (the synthetic log draws
    items with replacement: a held-out repeat of a history item measures repeat
    consumption, not the ranking of new items the protocols are about)."""
    pairs = inter.user.astype(np.int64) * (int(inter.item.max(initial=0)) + 1) + inter.item
    _, first = np.unique(pairs, return_index=True)
    return inter.take(np.sort(first))


def _longtail(data: Path | None, seed: int) -> Dataset:
    dataset = synthetic_dataset(LONGTAIL)
    inter = first_interactions(dataset.interactions)
    return Dataset("synthetic-longtail", dataset.items, dataset.users, inter)


CATALOGS: dict[str, Catalog] = {
    "ml-100k": Catalog(
        _movielens("ml-100k", "movielens-100k", False), "full,macrec", True, "default_model.json"
    ),
    "ml-latest-small": Catalog(
        _movielens("ml-latest-small", "movielens-csv", False),
        "full",
        False,
        "default_model_ml-latest-small.json",
    ),
    "ml-latest-small-permuted": Catalog(
        _movielens("ml-latest-small", "movielens-csv", True),
        "full",
        False,
        "default_model_ml-latest-small-permuted.json",
    ),
    "synthetic-longtail": Catalog(
        _longtail, "full", False, "default_model_synthetic-longtail.json"
    ),
}


def case_gains(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-case value of one metric from each case's 0-based target rank (one target)."""
    kind, _, cutoff = metric.partition("@")
    if kind == "NDCG":
        return ndcg_gains(ranks, int(cutoff))
    return (ranks < int(cutoff)).astype(np.float64)


def default_minus_ease(ours: np.ndarray, theirs: np.ndarray, metric: str) -> dict[str, float]:
    """Mean per-case difference of `metric` (ours - theirs), its standard error and their
    ratio."""
    mean, se = paired_difference(case_gains(ours, metric), case_gains(theirs, metric))
    return {"mean": mean, "se": se, "z": mean / se if se > 0 else math.nan}


def standard_errors(ranks: np.ndarray, metrics: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for metric in metrics:
        if "@" in metric:
            gains = case_gains(ranks, metric)
            out[metric] = float(gains.std(ddof=1) / math.sqrt(gains.shape[0]))
    return out


def run_model(
    model: Recommender, cases: RankingCases, protocol: Protocol
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit on the cases' training data, rank every case's target; the metrics and ranks."""
    start = time.perf_counter()
    model.fit(cases.train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    ranks = rank_cases(model, cases)
    score_s = time.perf_counter() - start
    row = {
        **ranking_metrics(protocol, ranks),
        "se": standard_errors(ranks, METRICS[protocol]),
        "fit_s": round(fit_s, 2),
        "score_s": round(score_s, 2),
    }
    return row, ranks


def component_models(tuned: DefaultRecommender) -> dict[str, DefaultRecommender]:
    """Each component of the tuned blend alone, with the variant the blend chose."""
    variants = tuned.chosen_["variants"]
    return {
        f"default[{fam}]": DefaultRecommender(
            tune=False,
            weights={fam: 1.0},
            variants=variants,
            dense_max_items=tuned.dense_max_items,
        )
        for fam in FAMILIES
        if fam in variants
    }


def run_split(cases: RankingCases, protocol: Protocol, components: bool) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    ranks: dict[str, np.ndarray] = {}
    baselines: dict[str, Recommender] = {
        "pop": PopularityRecommender(),
        "itemknn": ItemKNN(),
        EASE_ROW: EASE(l2=500.0),
    }
    for name, model in baselines.items():
        rows[name], ranks[name] = run_model(model, cases, protocol)
    default = DefaultRecommender()
    rows["default"], ranks["default"] = run_model(default, cases, protocol)
    if components:
        for name, model in component_models(default).items():
            rows[name], _ = run_model(model, cases, protocol)
    keys = ("NDCG@10", "HR@10") if protocol == "full" else ("NDCG@5", "HR@5")
    return {
        "cases": len(cases),
        "items": cases.train.n_items,
        "rows": rows,
        "default_minus_ease": {
            key: default_minus_ease(ranks["default"], ranks[EASE_ROW], key) for key in keys
        },
        "chosen": default.chosen_,
        "inner_validation_blend": default.validation_.get("blend"),
    }


def print_table(title: str, protocol: Protocol, result: dict[str, Any]) -> None:
    metrics = METRICS[protocol]
    print(f"\n== {title} ({result['cases']} cases, {result['items']} items) ==")
    print(f"chosen: {json.dumps(result['chosen'])}")
    print(f"{'model':24s}" + "".join(f"{m:>10s}" for m in metrics) + f"{'fit s':>8s}")
    for name, row in result["rows"].items():
        cells = "".join(f"{row[m]:10.4f}" for m in metrics)
        print(f"{name:24s}{cells}{row['fit_s']:8.1f}")
    for key, diff in result["default_minus_ease"].items():
        print(f"default - EASE on {key}: {diff['mean']:+.4f} (standard error {diff['se']:.4f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(CATALOGS), default="ml-100k")
    parser.add_argument("--data", type=Path, default=None, help="the MovieLens folder")
    parser.add_argument("--splits", default="dev,test")
    parser.add_argument("--protocols", default=None, help="default: the catalog's")
    parser.add_argument("--components", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--permute-seed", type=int, default=PERMUTE_SEED)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    catalog = CATALOGS[args.dataset]
    dataset = catalog.load(args.data, args.permute_seed)
    components = catalog.components if args.components is None else args.components
    splits: list[Split] = [check_split(s.strip()) for s in args.splits.split(",")]
    protocols: list[Protocol] = [
        check_protocol(p.strip()) for p in (args.protocols or catalog.protocols).split(",")
    ]
    results: dict[str, Any] = {
        "benchmark": "default_model",
        "dataset": args.dataset,
        "items": dataset.n_items,
        "users": dataset.n_users,
        "interactions": len(dataset.interactions),
        "seed": args.seed,
        "machine": machine_info(),
        "protocols": {},
    }
    if args.dataset == "ml-latest-small-permuted":
        results["permute_seed"] = args.permute_seed
    for protocol in protocols:
        results["protocols"][protocol] = {}
        for split in splits:
            cases = build_cases(dataset, protocol, split, args.seed)
            assert isinstance(cases, RankingCases)
            result = run_split(cases, protocol, components)
            results["protocols"][protocol][split] = result
            print_table(f"{args.dataset} {protocol} / {split}", protocol, result)
    write_json(args.out or RESULTS / catalog.out, results)


if __name__ == "__main__":
    main()
