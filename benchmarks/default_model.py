"""The default model vs the classical baselines (and its own components) on MovieLens 100K.

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

    .venv/bin/python -m benchmarks.default_model [--data ../shared/data/ml-100k]
        [--splits dev,test] [--protocols full,macrec] [--out benchmarks/results/...json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.report import write_json
from evaluation.harness import rank_cases
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
from recdata.loaders import load_dataset
from tools.base import Recommender
from tools.default import FAMILIES, DefaultRecommender
from tools.ease import EASE
from tools.itemknn import ItemKNN
from tools.popularity import PopularityRecommender

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data" / "ml-100k"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "default_model.json"


def run_model(model: Recommender, cases: RankingCases, protocol: Protocol) -> dict[str, Any]:
    """Fit on the cases' training data, rank every case's target, return the metrics."""
    start = time.perf_counter()
    model.fit(cases.train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    ranks = rank_cases(model, cases)
    score_s = time.perf_counter() - start
    return {
        **ranking_metrics(protocol, ranks),
        "fit_s": round(fit_s, 2),
        "score_s": round(score_s, 2),
    }


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


def run_split(cases: RankingCases, protocol: Protocol) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {
        "pop": run_model(PopularityRecommender(), cases, protocol),
        "itemknn": run_model(ItemKNN(), cases, protocol),
        "ease(l2=500)": run_model(EASE(l2=500.0), cases, protocol),
    }
    default = DefaultRecommender()
    rows["default"] = run_model(default, cases, protocol)
    for name, model in component_models(default).items():
        rows[name] = run_model(model, cases, protocol)
    return {
        "cases": len(cases),
        "rows": rows,
        "chosen": default.chosen_,
        "inner_validation_objective": default.validation_.get("blend"),
        "inner_validation_objective_is": f"NDCG@10 + {default.sampled_weight} x NDCG@5 "
        f"against {default.sampled_negatives} sampled never-seen items",
    }


def print_table(title: str, protocol: Protocol, result: dict[str, Any]) -> None:
    metrics = METRICS[protocol]
    print(f"\n== {title} ({result['cases']} cases) ==")
    print(f"chosen: {json.dumps(result['chosen'])}")
    print(f"{'model':24s}" + "".join(f"{m:>10s}" for m in metrics) + f"{'fit s':>8s}")
    for name, row in result["rows"].items():
        cells = "".join(f"{row[m]:10.4f}" for m in metrics)
        print(f"{name:24s}{cells}{row['fit_s']:8.1f}")
    ease, ours = result["rows"]["ease(l2=500)"], result["rows"]["default"]
    key = "NDCG@10" if protocol == "full" else "NDCG@5"
    gain = ours[key] / ease[key] - 1 if ease[key] else float("nan")
    print(f"default vs EASE on {key}: {gain:+.1%}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--splits", default="dev,test")
    parser.add_argument("--protocols", default="full,macrec")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    dataset = load_dataset(args.data, "movielens-100k")
    splits: list[Split] = [check_split(s.strip()) for s in args.splits.split(",")]
    protocols: list[Protocol] = [check_protocol(p.strip()) for p in args.protocols.split(",")]
    results: dict[str, Any] = {
        "benchmark": "default_model",
        "dataset": dataset.name,
        "seed": args.seed,
        "protocols": {},
    }
    for protocol in protocols:
        results["protocols"][protocol] = {}
        for split in splits:
            cases = build_cases(dataset, protocol, split, args.seed)
            assert isinstance(cases, RankingCases)
            result = run_split(cases, protocol)
            results["protocols"][protocol][split] = result
            print_table(f"{protocol} / {split}", protocol, result)
    write_json(args.out, results)


if __name__ == "__main__":
    main()
