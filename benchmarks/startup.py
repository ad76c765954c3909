"""Start-up of `agentrec serve --workers N`: time to /readyz and memory per worker, with the
models trained once (`agentrec train`, loaded memory-mapped) and fitted by every worker.

    .venv/bin/python -m benchmarks.startup
    .venv/bin/python -m benchmarks.startup --catalogs ml100k --workers 1,2
    .venv/bin/python -m benchmarks.startup --catalogs synthetic --fit-workers ""

For each catalog (MovieLens 100K ingested with `agentrec ingest`, and the 100k-item
synthetic catalog of `benchmarks.synthetic` saved into the data directory) it runs
`agentrec train` once, then starts the service with 1, 2 and 4 workers:

- `artifact`: AGENTREC_MODEL_ARTIFACTS=require, the workers load the artifact;
- `fit`: AGENTREC_MODEL_ARTIFACTS=off, every worker fits the models itself (the old way).

Each start runs on its own redis-server and a Chroma server kept over the runs of one
catalog (a first, unmeasured start indexes the catalog into Chroma). Per start: seconds to
the first `GET /readyz` 200 and until every worker logged its application start-up, then
per worker from /proc/<pid>/smaps_rollup: RSS, PSS (shared pages divided among the processes
that map them), shared and private memory, the peak RSS (VmHWM), the RSS and PSS of the
artifact's mapped files (/proc/<pid>/smaps), the CPU seconds the worker spent before it was
ready (a fit costs tens of seconds, a load a few) and whether the artifact is mapped at all;
the same again after `--requests` recommendations (each on a new connection, so the kernel
spreads them over the workers), which fault in the model pages the queries touch: those
pages are shared, so their PSS summed over the workers stays the size of one copy.
Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.load import code_version, local_service
from benchmarks.report import ML100K, machine_info, write_json
from benchmarks.service import clean_env

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "startup.json"
CATALOGS = ("ml100k", "synthetic")
STARTED_LINE = "Application startup complete"
_ROLLUP = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def _agentrec() -> str:
    return str(Path(sys.executable).with_name("agentrec"))


def _mb(kb: float) -> float:
    return round(kb / 1024, 1)


# -- preparing the catalogs and their artifacts --------------------------------------------


def prepare_ml100k(data_dir: Path, path: Path) -> str:
    name = "ml100k"
    command = [_agentrec(), "ingest", str(path), "--format", "movielens-100k", "--name", name]
    _run([*command, "--no-index"], clean_env(data_dir))
    return name


def prepare_synthetic(data_dir: Path, items: int, interactions: int, users: int) -> str:
    from benchmarks.synthetic import SyntheticSpec, synthetic_dataset
    from recdata.store import save_catalog

    spec = SyntheticSpec(n_items=items, n_interactions=interactions, n_users=users)
    name = f"synthetic{items // 1000}k"
    save_catalog(synthetic_dataset(spec), data_dir, name)
    return name


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def train(data_dir: Path, catalog: str) -> dict[str, Any]:
    """`agentrec train --catalog`, timed, with its peak RSS (polled)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [_agentrec(), "train", "--catalog", catalog],
        env=clean_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        with suppress(psutil.Error):
            peak = max(peak, watched.memory_info().rss)
        time.sleep(0.2)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"agentrec train failed:\n{out}\n{err}")
    folder = sorted(p for p in (data_dir / "models" / catalog).iterdir() if p.is_dir())[-1]
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        "train_s": round(time.perf_counter() - started, 1),
        "fit_s": manifest["fit_s"],
        "peak_rss_mb": round(peak / 2**20, 1),
        "artifact_mb": round(sum(p.stat().st_size for p in folder.iterdir()) / 1e6, 1),
        "arrays": len(manifest["arrays"]),
        "version": manifest["version"],
        "dev_objective": manifest["metrics"].get("blend"),
        "method": manifest["model"]["chosen"]["method"],
    }


# -- measuring a running service -------------------------------------------------------------


def worker_processes(server_pid: int, workers: int) -> list[psutil.Process]:
    """The processes that serve: the server itself when it runs alone, else its spawned
    worker children (not the supervisor, nor multiprocessing's resource tracker)."""
    server = psutil.Process(server_pid)
    spawned = []
    for child in server.children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in line or "multiprocessing-fork" in line:
            spawned.append(child)
    return spawned if spawned or workers > 1 else [server]


def smaps_rollup(pid: int) -> dict[str, float]:
    """RSS, PSS, shared and private memory (smaps_rollup) and the peak RSS so far (VmHWM)."""
    figures: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup") as lines:
        for line in lines:
            key, _, rest = line.partition(":")
            if key in _ROLLUP:
                figures[f"{key.lower()}_mb"] = _mb(float(rest.split()[0]))
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            if line.startswith("VmHWM:"):
                figures["peak_rss_mb"] = _mb(float(line.split()[1]))
    return figures


def mapped_files(pid: int, folder: str) -> dict[str, float]:
    """RSS and PSS of the mappings of files under `folder` (the model store)."""
    rss = pss = 0.0
    files: set[str] = set()
    current: str | None = None
    with open(f"/proc/{pid}/smaps") as lines:
        for line in lines:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                current = head[5] if len(head) > 5 and head[5].startswith(folder) else None
                if current:
                    files.add(current)
            elif current and head and head[0] == "Rss:":
                rss += float(head[1])
            elif current and head and head[0] == "Pss:":
                pss += float(head[1])
    return {"artifact_files": len(files), "artifact_rss_mb": _mb(rss), "artifact_pss_mb": _mb(pss)}


def wait_started(log: Path, workers: int, timeout_s: float) -> float | None:
    """Seconds until `workers` start-up lines are in the log (None: not within timeout)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if log.read_text(errors="replace").count(STARTED_LINE) >= workers:
            return time.perf_counter() - started
        time.sleep(0.1)
    return None


def measure_start(
    workdir: Path,
    data_dir: Path,
    catalog: str,
    user_ids: list[str],
    workers: int,
    mode: str,
    timeout_s: float,
    requests: int = 200,
) -> dict[str, Any]:
    settings = {
        "AGENTREC_CATALOG": catalog,
        "AGENTREC_MODEL_ARTIFACTS": "require" if mode == "artifact" else "off",
        "AGENTREC_MODEL_RELOAD_S": "0",
        "AGENTREC_LOG_FORMAT": "text",
    }
    with local_service(
        workdir,  # its Chroma server keeps its data in workdir: one index per catalog
        workers=workers,
        chroma_server=True,
        ready_timeout_s=timeout_s,
        settings={**settings, "AGENTREC_DATA_DIR": str(data_dir)},
    ) as service:
        extra = wait_started(service["log"], workers, timeout_s)
        all_started = None if extra is None else round(service["startup_s"] + extra, 2)
        time.sleep(1.0)  # let the first post-start allocations settle
        procs = worker_processes(service["pids"]["server"], workers)
        models = str(data_dir / "models")
        at_ready = [_worker_figures(proc, models) for proc in procs]
        answers = ask(service["url"], user_ids, requests)
        after = [_worker_figures(proc, models) for proc in procs]
        log_text = service["log"].read_text(errors="replace")
    return {
        "mode": mode,
        "workers": workers,
        "workers_found": len(procs),
        "readyz_s": service["startup_s"],
        "all_workers_started_s": all_started,
        "cpu_s_mean": _mean(w["cpu_s"] for w in at_ready),
        "artifact_mapped": all(w["artifact_files"] > 0 for w in at_ready),
        "fit_logged": "models fitted in" in log_text,
        "at_ready": _summary(at_ready),
        "after_requests": {**_summary(after), **answers},
    }


def _worker_figures(proc: psutil.Process, models: str) -> dict[str, Any]:
    cpu = proc.cpu_times()
    return {
        "pid": proc.pid,
        "cpu_s": round(cpu.user + cpu.system, 1),
        **smaps_rollup(proc.pid),
        **mapped_files(proc.pid, models),
    }


def _summary(per_worker: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rss_mb_mean": _mean(w["rss_mb"] for w in per_worker),
        "peak_rss_mb_max": max((w["peak_rss_mb"] for w in per_worker), default=0.0),
        "pss_mb_mean": _mean(w["pss_mb"] for w in per_worker),
        "pss_mb_total": round(sum(w["pss_mb"] for w in per_worker), 1),
        "artifact_rss_mb_mean": _mean(w["artifact_rss_mb"] for w in per_worker),
        "artifact_pss_mb_total": round(sum(w["artifact_pss_mb"] for w in per_worker), 1),
        "per_worker": per_worker,
    }


def ask(url: str, user_ids: list[str], requests: int) -> dict[str, Any]:
    """`requests` recommendations for different users, each on a new connection (so the
    kernel spreads them over the workers): they fault in the model pages queries touch."""
    statuses: dict[str, int] = {}
    seconds = []
    for n in range(requests):
        asked = time.perf_counter()
        response = httpx.post(
            f"{url}/v1/recommendations",
            json={"user_id": user_ids[n % len(user_ids)], "count": 10},
            timeout=120,
        )
        seconds.append(time.perf_counter() - asked)
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    return {
        "requests": requests,
        "statuses": statuses,
        "first_answer_s": round(seconds[0], 3) if seconds else None,
    }


def _mean(values: Any) -> float:
    values = list(values)
    return round(sum(values) / len(values), 1) if values else 0.0


# -- the benchmark -----------------------------------------------------------------------------


def _counts(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def run_catalog(
    workdir: Path, data_dir: Path, catalog: str, args: argparse.Namespace, fit_workers: list[int]
) -> dict[str, Any]:
    from recdata.store import load_catalog

    dataset = load_catalog(data_dir, catalog)
    print(f"{catalog}: training ...", flush=True)
    trained = train(data_dir, catalog)
    print(f"  {json.dumps(trained)}", flush=True)
    step = max(1, dataset.n_users // args.requests)
    user_ids = dataset.user_ids[::step][: args.requests]
    print(f"{catalog}: first start (indexes the catalog into Chroma) ...", flush=True)
    first = measure_start(workdir, data_dir, catalog, user_ids, 1, "artifact", args.timeout, 1)
    print(f"  first start: /readyz after {first['readyz_s']} s", flush=True)
    runs = []
    plan = [("artifact", n) for n in _counts(args.workers)] + [("fit", n) for n in fit_workers]
    for mode, workers in plan:
        print(f"{catalog}: {mode}, {workers} worker(s) ...", flush=True)
        result = measure_start(
            workdir, data_dir, catalog, user_ids, workers, mode, args.timeout, args.requests
        )
        runs.append(result)
        print(f"  {_line(result)}", flush=True)
    return {
        "items": dataset.n_items,
        "users": dataset.n_users,
        "interactions": len(dataset.interactions),
        "train": trained,
        "first_start_readyz_s": first["readyz_s"],
        "runs": runs,
    }


def _line(r: dict[str, Any]) -> str:
    ready, after = r["at_ready"], r["after_requests"]
    return (
        f"{r['mode']:<9}{r['workers']:>3}{r['readyz_s']:>9.1f}"
        f"{r['all_workers_started_s'] or float('nan'):>8.1f}{r['cpu_s_mean']:>7.1f}"
        f"{ready['rss_mb_mean']:>8.0f}{ready['pss_mb_mean']:>8.0f}{ready['peak_rss_mb_max']:>8.0f}"
        f"{after['rss_mb_mean']:>8.0f}{after['pss_mb_mean']:>8.0f}{after['pss_mb_total']:>8.0f}"
        f"{after['artifact_rss_mb_mean']:>8.0f}{after['artifact_pss_mb_total']:>8.0f}"
        f"{'yes' if r['artifact_mapped'] else 'no':>7}"
    )


def print_table(report: dict[str, Any]) -> None:
    header = (
        f"{'':<12}{'seconds':>17}{'':>7}{'at ready (MB)':>24}"
        f"{'after requests (MB, per worker)':>40}\n"
        f"{'mode':<9}{'N':>3}{'readyz':>9}{'all':>8}{'CPU':>7}{'RSS':>8}{'PSS':>8}{'peak':>8}"
        f"{'RSS':>8}{'PSS':>8}{'PSS sum':>8}{'art.RSS':>8}{'art.PSS':>8}{'mapped':>7}"
    )
    for name, figures in report["catalogs"].items():
        print(f"\n{name}: {figures['items']:,} items, {figures['interactions']:,} interactions; "
              f"train {figures['train']['train_s']} s (fit {figures['train']['fit_s']} s), "
              f"artifact {figures['train']['artifact_mb']} MB")  # fmt: skip
        print(header)
        for run in figures["runs"]:
            print(_line(run))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogs", default=",".join(CATALOGS), help="ml100k and/or synthetic")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, artifact loaded")
    parser.add_argument(
        "--fit-workers", default="1,2,4", help="worker counts that each fit (ml100k)"
    )
    parser.add_argument(
        "--synthetic-fit-workers",
        default="1",
        help="worker counts that each fit on the synthetic catalog (each takes minutes and "
        "~3 GB; default 1)",
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--ml100k", type=Path, default=ML100K)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per start")
    parser.add_argument(
        "--requests", type=int, default=200, help="recommendations asked after the start"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="kept (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.catalogs.split(",") if c.strip()]
    unknown = sorted(set(names) - set(CATALOGS))
    if unknown:
        parser.error(f"unknown catalog(s) {', '.join(unknown)}; known: {', '.join(CATALOGS)}")
    report: dict[str, Any] = {
        "benchmark": "startup",
        "machine": machine_info(),
        "code": code_version(),
        "catalogs": {},
    }
    with _workroot(args.workdir) as root:
        for name in names:
            workdir = root / name
            data_dir = workdir / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            if name == "ml100k":
                catalog = prepare_ml100k(data_dir, args.ml100k)
                fit_workers = _counts(args.fit_workers)
            else:
                print("generating the synthetic catalog ...", flush=True)
                catalog = prepare_synthetic(data_dir, args.items, args.interactions, args.users)
                fit_workers = _counts(args.synthetic_fit_workers)
            report["catalogs"][catalog] = run_catalog(workdir, data_dir, catalog, args, fit_workers)
            write_json(args.out, report)  # after each catalog: a partial report survives
    print_table(report)
    write_json(args.out, report)


@contextmanager
def _workroot(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="agentrec-startup-") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    main()
