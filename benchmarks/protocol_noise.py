"""How much the MovieLens 100K figures move with what the protocols leave to chance.

    .venv/bin/python -m benchmarks.protocol_noise
    .venv/bin/python -m benchmarks.protocol_noise --seeds 3 --shuffles 3   # quicker

- `macrec` samples 7 negatives per case with a seeded generator: the baselines' HR@1 and
  NDCG@5 over `--seeds` seeds (2024 and the next ones), mean, standard deviation, range;
- `full` breaks timestamp ties by the file's order (a stable sort), and half of a user's
  consecutive ratings in MovieLens 100K share a timestamp: EASE's and popularity's NDCG@10
  and HR@10 with the interaction rows shuffled before the sort (`--shuffles` seeds), against
  the file's own order.

These are what the README's comparison with an independent implementation of the same
protocols rests on. Writes JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.load import code_version
from benchmarks.report import ML100K, machine_info, write_json
from evaluation.harness import evaluate
from recdata.dataset import Dataset
from recdata.loaders import load_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "protocol_noise.json"
SEED = 2024


def spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def shuffled(dataset: Dataset, seed: int) -> Dataset:
    """`dataset` with its interaction rows in a random order (ties then fall differently)."""
    order = np.random.default_rng(seed).permutation(len(dataset.interactions))
    return Dataset(dataset.name, dataset.items, dataset.users, dataset.interactions.take(order))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--shuffles", type=int, default=10)
    parser.add_argument("--macrec-models", default="random,pop,itemknn,ease")
    parser.add_argument("--full-models", default="pop,ease")
    parser.add_argument("--ml100k", type=Path, default=ML100K)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.ml100k / "u.data").is_file():
        raise SystemExit(f"MovieLens 100K not found at {args.ml100k}")
    started = time.perf_counter()
    dataset = load_dataset(str(args.ml100k), "movielens-100k")
    macrec_models = args.macrec_models.split(",")
    full_models = args.full_models.split(",")

    per_seed: dict[str, dict[str, list[float]]] = {
        m: {"HR@1": [], "NDCG@5": []} for m in macrec_models
    }
    for seed in range(SEED, SEED + args.seeds):
        report = evaluate(dataset, "macrec", macrec_models, seed=seed)
        for result in report.results:
            for metric in per_seed[result.name]:
                per_seed[result.name][metric].append(result.metrics[metric])
        print(f"macrec seed {seed}: " + ", ".join(
            f"{r.name} HR@1 {r.metrics['HR@1']:.3f}" for r in report.results
        ))  # fmt: skip

    file_order = {
        r.name: r.metrics for r in evaluate(dataset, "full", full_models, seed=SEED).results
    }
    per_shuffle: dict[str, dict[str, list[float]]] = {
        m: {"NDCG@10": [], "HR@10": []} for m in full_models
    }
    for seed in range(args.shuffles):
        report = evaluate(shuffled(dataset, seed), "full", full_models, seed=SEED)
        for result in report.results:
            for metric in per_shuffle[result.name]:
                per_shuffle[result.name][metric].append(result.metrics[metric])
        print(f"full, rows shuffled with seed {seed}: " + ", ".join(
            f"{r.name} NDCG@10 {r.metrics['NDCG@10']:.3f}" for r in report.results
        ))  # fmt: skip

    out: dict[str, Any] = {
        "benchmark": "protocol_noise",
        "command": " ".join(["python -m benchmarks.protocol_noise", *(argv or sys.argv[1:])]),
        "code": code_version(),
        "machine": machine_info(),
        "dataset": "ml-100k",
        "macrec_over_seeds": {
            "seeds": list(range(SEED, SEED + args.seeds)),
            "models": {
                m: {metric: spread(v) for metric, v in metrics.items()}
                for m, metrics in per_seed.items()
            },
        },
        "full_tie_order": {
            "shuffle_seeds": list(range(args.shuffles)),
            "file_order": {
                m: {k: round(file_order[m][k], 4) for k in ("NDCG@10", "HR@10")}
                for m in full_models
            },
            "shuffled": {
                m: {metric: spread(v) for metric, v in metrics.items()}
                for m, metrics in per_shuffle.items()
            },
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    for m, metrics in out["macrec_over_seeds"]["models"].items():
        print(f"macrec {m:<8} HR@1 {metrics['HR@1']}")
    for m, metrics in out["full_tie_order"]["shuffled"].items():
        print(
            f"full {m:<6} NDCG@10 {metrics['NDCG@10']} (file order {file_order[m]['NDCG@10']:.4f})"
        )
    write_json(args.out, out)


if __name__ == "__main__":
    main()
