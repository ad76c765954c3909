"""The service's throughput and latency across setups, measured in one run on one commit:
1 and 2 workers, 16 and 32 clients, the demo catalog and MovieLens 100K, interleaved.

    .venv/bin/python -m benchmarks.load_matrix
    .venv/bin/python -m benchmarks.load_matrix --rounds 1 --duration 10 --catalogs demo

For each round the setups run in turn (the second round in the reverse order, so a drift in
the machine's speed does not favour one setup): a service per (catalog, workers) is started
(`agentrec serve`, offline preset, its own redis-server, a Chroma server), loaded by 16 then
32 closed-loop keep-alive clients on `POST /v1/recommendations` (raw asyncio client), and
stopped. MovieLens 100K is ingested as a catalog first (and its models trained with
`agentrec train` when that command exists, so workers load them instead of fitting). Each
cell reports the median over rounds of req/s and p50/p99 latency, with every round's
figures. Writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.load import DEMO_USERS, code_version, local_service, recommendations_load
from benchmarks.loadgen import Target
from benchmarks.report import ML100K, machine_info, write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "load_matrix.json"
AGENTREC = Path(sys.executable).with_name("agentrec")
GOALS = {"requests_per_s": 100.0, "p99_ms": 500.0}


def prepare_catalog(catalog: str, data_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The service settings and the user ids of a catalog, ingested into `data_dir`."""
    if catalog == "demo":
        return {}, DEMO_USERS
    if catalog != "ml100k":
        raise SystemExit(f"unknown catalog {catalog!r} (demo or ml100k)")
    if not (ML100K / "u.data").is_file():
        raise SystemExit(f"MovieLens 100K not found at {ML100K}")
    env = {**os.environ, "AGENTREC_DATA_DIR": str(data_dir)}
    command = [str(AGENTREC), "ingest", str(ML100K), "--format", "movielens-100k"]
    subprocess.run([*command, "--name", "ml100k"], env=env, check=True, capture_output=True)
    settings = {"AGENTREC_CATALOG": "ml100k"}
    if subprocess.run([str(AGENTREC), "train", "--help"], capture_output=True).returncode == 0:
        started = time.perf_counter()
        subprocess.run(
            [str(AGENTREC), "train"],
            env={**env, "AGENTREC_CATALOG": "ml100k"},
            check=True,
            capture_output=True,
        )
        print(f"  trained ml100k in {time.perf_counter() - started:.0f} s")
    return settings, [str(n) for n in range(1, 944)]


def measure(
    catalog: str,
    workers: int,
    clients: list[int],
    args: argparse.Namespace,
    data_dir: Path,
    prepared: tuple[dict[str, str], list[str]],
) -> dict[str, Any]:
    settings, users = prepared
    with tempfile.TemporaryDirectory(prefix="agentrec-matrix-") as tmp:
        work = Path(tmp)
        (work / "data").symlink_to(data_dir, target_is_directory=True)
        with local_service(
            work, workers, chroma_server=True, ready_timeout_s=600, settings=settings
        ) as local:
            cells: dict[str, Any] = {"startup_s": local["startup_s"]}
            for n in clients:
                figures, _ = asyncio.run(
                    recommendations_load(
                        Target.from_url(local["url"]),
                        clients=n,
                        duration_s=args.duration,
                        warmup_s=args.warmup,
                        client_kind="raw",
                        pids=local["pids"],
                        seed=args.seed,
                        users=users,
                    )
                )
                cells[str(n)] = {
                    "requests_per_s": figures["requests_per_s"],
                    "p50_ms": figures["latency"].get("p50_ms"),
                    "p99_ms": figures["latency"].get("p99_ms"),
                    "errors": figures["errors"],
                    "server_cpu": figures["cpu"],
                }
                print(
                    f"  {catalog:<7} workers={workers} clients={n:<3} "
                    f"{figures['requests_per_s']:>7.1f} req/s  "
                    f"p50 {figures['latency'].get('p50_ms')} ms  "
                    f"p99 {figures['latency'].get('p99_ms')} ms  errors {figures['errors']}"
                )
            return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogs", default="demo,ml100k")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--clients", default="16,32")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    catalogs = args.catalogs.split(",")
    workers = [int(w) for w in args.workers.split(",")]
    clients = [int(c) for c in args.clients.split(",")]
    setups = [(c, w) for c in catalogs for w in workers]
    load_before = [round(x, 2) for x in os.getloadavg()]
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="agentrec-matrix-data-") as data:
        data_dir = Path(data)
        prepared = {c: prepare_catalog(c, data_dir) for c in catalogs}  # ingest + train once
        for r in range(args.rounds):
            order = setups if r % 2 == 0 else list(reversed(setups))
            print(f"round {r + 1}: {', '.join(f'{c}/{w}w' for c, w in order)}")
            rounds.append(
                {f"{c}/{w}": measure(c, w, clients, args, data_dir, prepared[c]) for c, w in order}
            )
    table: dict[str, Any] = {}
    for catalog, w in setups:
        key = f"{catalog}/{w}"
        for n in clients:
            runs = [r[key][str(n)] for r in rounds]
            rps = statistics.median(run["requests_per_s"] for run in runs)
            p99 = statistics.median(run["p99_ms"] or 0 for run in runs)
            table[f"{catalog}, {w} worker(s), {n} clients"] = {
                "requests_per_s": round(rps, 1),
                "p50_ms": round(statistics.median(run["p50_ms"] or 0 for run in runs), 1),
                "p99_ms": round(p99, 1),
                "errors": sum(sum(run["errors"].values()) for run in runs),
                "goals_met": rps >= GOALS["requests_per_s"] and p99 <= GOALS["p99_ms"],
            }
    result = {
        "benchmark": "load_matrix",
        "command": " ".join(["python -m benchmarks.load_matrix", *sys.argv[1:]]),
        "code": code_version(),
        "machine": {
            **machine_info(),
            "load_average_1_5_15_min": {
                "before": load_before,
                "after": [round(x, 2) for x in os.getloadavg()],
            },
        },
        "goals": GOALS,
        "median_over_rounds": table,
        "rounds": rounds,
    }
    print(json.dumps(table, indent=2))
    write_json(args.out, result)


if __name__ == "__main__":
    main()
