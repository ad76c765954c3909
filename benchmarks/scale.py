"""Scale benchmark: training time, query latency and peak memory on a large synthetic log.

    .venv/bin/python -m benchmarks.scale                      # 100k items, 1M interactions
    .venv/bin/python -m benchmarks.scale --items 10000 --interactions 100000 --users 5000

Every model runs in a fresh subprocess so that its peak resident memory (the RSS high-water
mark from `resource.getrusage`) is its own; the parent generates the data once and hands it
over as an .npz file. A query is one history (a random training user's), scored over the
whole catalog, then the top 50 unseen items. The content tools (hashed-n-gram item index,
filtered candidate generation) are measured the same way. Results are printed as a table
and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import machine_info, write_json
from benchmarks.synthetic import SyntheticSpec, synthetic_dataset, synthetic_interactions
from recdata.dataset import Interactions

MODELS = ("pop", "itemknn", "ease", "default")
TRAIN_GOAL_S = 300.0
QUERY_GOAL_MS = 50.0
TOP_N = 50
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "scale.json"


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


def _load(path: Path) -> Interactions:
    arrays = np.load(path)
    return Interactions(
        user=arrays["user"],
        item=arrays["item"],
        rating=arrays["rating"],
        timestamp=arrays["timestamp"],
        has_ratings=False,
        has_timestamps=True,
    )


def _query_users(indptr: np.ndarray, n_queries: int, seed: int) -> np.ndarray:
    lengths = np.diff(indptr)
    users = np.flatnonzero(lengths > 0)
    rng = np.random.default_rng(seed)
    return rng.choice(users, size=min(n_queries, users.shape[0]), replace=False)


def run_model(name: str, data: Path, spec: SyntheticSpec, n_queries: int) -> dict[str, Any]:
    """Fit `name` and time single-history top-50 queries (runs inside the worker process)."""
    from core.errors import ConfigError
    from tools.base import TrainSet, top_k
    from tools.registry import create

    inter = _load(data)
    train = TrainSet.from_interactions(inter, spec.n_users, spec.n_items)
    _ = train.binary_matrix, train.item_popularity  # shared preprocessing, not the model's
    rss_data = _peak_rss_mb()
    try:
        model = create(name)
        started = time.perf_counter()
        model.fit(train)
        train_s = time.perf_counter() - started
    except ConfigError as error:
        return {"model": name, "status": "skipped", "reason": str(error)}
    except (ImportError, NotImplementedError) as error:
        return {
            "model": name,
            "status": "unavailable",
            "reason": f"{type(error).__name__}: {error}",
        }
    rss_fit = _peak_rss_mb()

    latencies: list[float] = []
    users = _query_users(train.indptr, n_queries, spec.seed)
    for warmup in users[:5]:
        history = train.history(int(warmup))
        top_k(model.score([history])[0], TOP_N, exclude=history.items)
    for user in users:
        history = train.history(int(user))
        started = time.perf_counter()
        scores = model.score([history])[0]
        top_k(scores, TOP_N, exclude=history.items)
        latencies.append(time.perf_counter() - started)
    query = _percentiles(latencies)
    return {
        "model": name,
        "status": "ok",
        "train_s": train_s,
        "query": query,
        "n_queries": len(latencies),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_fit_mb": rss_data,
        "rss_after_fit_mb": rss_fit,
        "train_goal_met": train_s < TRAIN_GOAL_S,
        "query_goal_met": query["p50_ms"] < QUERY_GOAL_MS,
    }


def run_content(spec: SyntheticSpec, n_queries: int) -> dict[str, Any]:
    """Build the hashed-n-gram item index and time content scores and filtered candidates."""
    from tools.base import TrainSet
    from tools.candidates import CandidateFilters, catalog_index, generate_candidates
    from tools.embeddings import ItemContentIndex

    dataset = synthetic_dataset(spec)
    train = TrainSet.from_interactions(dataset.interactions, spec.n_users, spec.n_items)
    rss_data = _peak_rss_mb()
    started = time.perf_counter()
    index = ItemContentIndex.build(dataset)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    catalog_index(dataset)
    catalog_s = time.perf_counter() - started
    filters = CandidateFilters(
        include={"genres": ["comedy", "drama"]}, exclude={"decade": ["1950s", "1960s"]}
    )
    content, candidates, search = [], [], []
    users = _query_users(train.indptr, n_queries, spec.seed)
    for user in users:
        history = train.history(int(user))
        started = time.perf_counter()
        scores = index.content_scores(history)
        content.append(time.perf_counter() - started)
        started = time.perf_counter()
        generate_candidates(scores, dataset, history, filters, TOP_N, source="content")
        candidates.append(time.perf_counter() - started)
        started = time.perf_counter()
        index.search("a quiet river in winter", TOP_N)
        search.append(time.perf_counter() - started)
    return {
        "model": "content-tools",
        "status": "ok",
        "index_build_s": build_s,
        "catalog_index_s": catalog_s,
        "content_scores": _percentiles(content),
        "filtered_candidates": _percentiles(candidates),
        "text_search": _percentiles(search),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_build_mb": rss_data,
    }


def _worker(args: argparse.Namespace) -> None:
    spec = SyntheticSpec(**json.loads(args.spec))
    if args.worker == "content-tools":
        result = run_content(spec, args.queries)
    else:
        result = run_model(args.worker, Path(args.data), spec, args.queries)
    print(json.dumps(result))


def _spawn(
    name: str, data: Path, spec: SyntheticSpec, queries: int, timeout: float
) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "benchmarks.scale", "--worker", name, "--data", str(data),
        "--spec", json.dumps(asdict(spec)), "--queries", str(queries),
    ]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"model": name, "status": "timeout", "reason": f"no result within {timeout:.0f} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"model": name, "status": "error", "reason": f"exit {done.returncode}: {tail[0]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _table(results: list[dict[str, Any]]) -> str:
    header = (
        f"{'model':<14}{'status':<9}{'train s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'peak MB':>9}  goals (train < 5 min, p50 < 50 ms)"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if r["status"] != "ok":
            lines.append(f"{r['model']:<14}{r['status']:<9}  {r['reason']}")
        elif r["model"] == "content-tools":
            lines.append(
                f"{r['model']:<14}{'ok':<9}{r['index_build_s']:>9.1f}"
                f"{r['content_scores']['p50_ms'] + r['filtered_candidates']['p50_ms']:>9.2f}"
                f"{r['content_scores']['p99_ms'] + r['filtered_candidates']['p99_ms']:>9.2f}"
                f"{r['peak_rss_mb']:>9.0f}  (index build; content scores + filtered top-50)"
            )
        else:
            goals = (
                f"train {'met' if r['train_goal_met'] else 'MISSED'}, "
                f"query {'met' if r['query_goal_met'] else 'MISSED'}"
            )
            lines.append(
                f"{r['model']:<14}{'ok':<9}{r['train_s']:>9.1f}{r['query']['p50_ms']:>9.2f}"
                f"{r['query']['p99_ms']:>9.2f}{r['peak_rss_mb']:>9.0f}  {goals}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=SyntheticSpec.n_items)
    parser.add_argument("--interactions", type=int, default=SyntheticSpec.n_interactions)
    parser.add_argument("--users", type=int, default=SyntheticSpec.n_users)
    parser.add_argument("--seed", type=int, default=SyntheticSpec.seed)
    parser.add_argument("--queries", type=int, default=1000, help="single-history queries")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--no-content", action="store_true", help="skip the content tools")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per model")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return

    spec = SyntheticSpec(
        n_items=args.items, n_interactions=args.interactions, n_users=args.users, seed=args.seed
    )
    started = time.perf_counter()
    inter, _ = synthetic_interactions(spec)
    generate_s = time.perf_counter() - started
    distinct = np.unique(inter.user.astype(np.int64) * spec.n_items + inter.item).shape[0]
    print(
        f"synthetic data: {spec.n_items:,} items, {spec.n_users:,} users, "
        f"{len(inter):,} interactions ({distinct:,} distinct user-item pairs), "
        f"generated in {generate_s:.1f} s"
    )
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if not args.no_content:
        names.append("content-tools")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "interactions.npz"
        np.savez(
            data, user=inter.user, item=inter.item, rating=inter.rating, timestamp=inter.timestamp
        )
        for name in names:
            print(f"running {name} ...", flush=True)
            results.append(_spawn(name, data, spec, args.queries, args.timeout))
            print(f"  {json.dumps(results[-1])}", flush=True)
    print(_table(results))
    report = {
        "benchmark": "scale",
        "spec": asdict(spec),
        "distinct_pairs": int(distinct),
        "top_n": TOP_N,
        "goals": {"train_s": TRAIN_GOAL_S, "query_p50_ms": QUERY_GOAL_MS},
        "machine": machine_info(),
        "results": results,
    }
    write_json(args.out, report)


if __name__ == "__main__":
    main()
