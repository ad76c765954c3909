"""Where a recommendation's CPU goes in a serving worker: py-spy samples of a real
`agentrec serve` (one worker, offline preset, its own redis-server and Chroma server) under
closed-loop load on `POST /v1/recommendations`.

    .venv/bin/python -m benchmarks.cpu_profile
    .venv/bin/python -m benchmarks.cpu_profile --catalog ml100k --duration 20

The worker's CPU time over the sampled window divided by the requests answered in it gives
the CPU per request; py-spy's samples of the thread holding the GIL (`--gil`: Python code
running; time in system calls and native code that releases the GIL is not sampled) split it:

- by *layer*, the innermost frame of each sample that belongs to a known package (the code
  that was running): LangGraph, LangChain core, the agents, the tools (models), the memory
  layer, the redis client, FastAPI/Starlette, pydantic, uvicorn, asyncio, numpy, JSON and
  the rest of the standard library;
- by *stage*, the outermost frame of interest on the stack (what the time was spent for): each
  agent node, the LangGraph runtime around the nodes, the checkpointer, the trace writer, the
  service's own code, the HTTP layer.

Prints both tables (ms of CPU per request, share of samples) and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.load import DEMO_USERS, code_version, local_service, recommendations_load
from benchmarks.load_matrix import prepare_catalog
from benchmarks.loadgen import Target
from benchmarks.report import machine_info, write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "cpu_profile.json"
PY_SPY = Path(sys.executable).with_name("py-spy")

# (layer, pattern on the frame's file path); the first match wins.
LAYERS: list[tuple[str, str]] = [
    ("langgraph", r"/langgraph/"),
    ("langchain_core", r"/langchain_core/"),
    ("agents (offline brains)", r"/agents/"),
    ("graphs", r"/graphs/"),
    ("tools (models)", r"/tools/"),
    ("memory (checkpointer, traces, stores)", r"/memory/"),
    ("app (service, API)", r"/app/"),
    ("redis client", r"/redis/"),
    ("chromadb client", r"/chromadb/"),
    ("fastapi / starlette", r"/(fastapi|starlette|sse_starlette)/"),
    ("pydantic", r"/pydantic(_core)?/"),
    ("uvicorn / httptools", r"/(uvicorn|httptools)/"),
    ("numpy / scipy", r"/(numpy|scipy)/"),
    ("ormsgpack / json", r"/(ormsgpack|orjson)|/json/"),
    ("asyncio", r"/asyncio/"),
    ("threading / concurrent", r"/(threading|concurrent)"),
]

# (stage, pattern on "function (file"); the outermost match on the stack wins, except that
# an agent node inside the LangGraph runtime counts as the node.
STAGES: list[tuple[str, str]] = [
    ("Manager node", r"^manager \(.*/graphs/nodes\.py|/agents/manager\.py"),
    ("User Analyst node", r"^user_analyst \(.*/graphs/nodes\.py|/agents/user_analyst\.py"),
    ("Item Analyst node", r"^item_analyst \(.*/graphs/nodes\.py|/agents/item_analyst\.py"),
    ("Searcher node", r"^searcher \(.*/graphs/nodes\.py|/agents/searcher\.py"),
    ("Reflector node", r"^reflector \(.*/graphs/nodes\.py|/agents/reflector\.py"),
    ("Ranker node", r"^ranker \(.*/graphs/nodes\.py|/agents/ranker\.py"),
    ("checkpointer", r"/memory/checkpointer\.py"),
    ("trace writes", r"_TraceWriter|/memory/short_term/"),
    ("long-term memory", r"/memory/long_term\.py|/chromadb/"),
]
NODE_STAGES = {name for name, _ in STAGES[:6]}


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f]


def layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # innermost first
        for name, pattern in LAYERS:
            if re.search(pattern, frame):
                return name
    return "other (stdlib, interpreter)"


def stage_of(frames: list[str]) -> str:
    found: str | None = None
    for frame in frames:  # outermost first
        for name, pattern in STAGES:
            if re.search(pattern, frame):
                if name in NODE_STAGES:
                    return name
                found = found or name
                break
    if found:
        return found
    joined = ";".join(frames)
    if "/langgraph/" in joined:
        return "LangGraph runtime (between nodes)"
    if "/app/" in joined:
        return "service and API code"
    if re.search(r"/(fastapi|starlette|uvicorn|httptools|pydantic)", joined):
        return "HTTP layer (uvicorn, Starlette, pydantic)"
    if "/asyncio/" in joined:
        return "event loop"
    return "other"


def parse_raw(path: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((_frames(stack), int(count)))
    return samples


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def breakdown(
    samples: list[tuple[list[str], int]], classify: Any, cpu_ms_per_request: float
) -> list[dict[str, Any]]:
    counts: collections.Counter[str] = collections.Counter()
    for frames, n in samples:
        counts[classify(frames)] += n
    total = sum(counts.values()) or 1
    return [
        {
            "name": name,
            "share": round(n / total, 4),
            "cpu_ms_per_request": round(cpu_ms_per_request * n / total, 2),
        }
        for name, n in counts.most_common()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", default="demo", help="demo or ml100k")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    py_spy = PY_SPY if PY_SPY.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy not found (it is in the dev dependencies: make setup)")
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="agentrec-cpu-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        settings, users = prepare_catalog(args.catalog, work / "data")
        with local_service(
            work, 1, chroma_server=True, ready_timeout_s=600, settings=settings
        ) as local:
            pid = local["pids"]["server"]
            raw = work / "profile.txt"
            # warm up without the sampler, then sample a window of the measured load
            asyncio.run(
                recommendations_load(
                    Target.from_url(local["url"]), clients=args.clients, duration_s=args.warmup,
                    warmup_s=0, client_kind="raw", pids=local["pids"], seed=args.seed,
                    users=users or DEMO_USERS,
                )
            )  # fmt: skip
            spy = subprocess.Popen(
                [str(py_spy), "record", "--pid", str(pid), "--rate", str(args.rate),
                 "--format", "raw", "--output", str(raw), "--nonblocking", "--full-filenames",
                 "--gil", "--duration", str(int(args.duration) + 2)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(1.0)  # py-spy attached
            cpu_before = cpu_seconds(pid)
            figures, _ = asyncio.run(
                recommendations_load(
                    Target.from_url(local["url"]), clients=args.clients,
                    duration_s=args.duration, warmup_s=0, client_kind="raw",
                    pids=local["pids"], seed=args.seed, users=users or DEMO_USERS,
                )
            )  # fmt: skip
            cpu_used = cpu_seconds(pid) - cpu_before
            _, err = spy.communicate(timeout=120)
            if spy.returncode != 0 or not raw.exists():
                raise SystemExit(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
            samples = parse_raw(raw)
            if os.environ.get("AGENTREC_KEEP_PROFILE"):
                shutil.copy(raw, os.environ["AGENTREC_KEEP_PROFILE"])
    requests = figures["requests"]
    cpu_ms = 1000 * cpu_used / max(requests, 1)
    result = {
        "benchmark": "cpu_profile",
        "command": " ".join(["python -m benchmarks.cpu_profile", *sys.argv[1:]]),
        "code": code_version(),
        "machine": {
            **machine_info(),
            "load_average_1_5_15_min": {
                "before": load_before,
                "after": [round(x, 2) for x in os.getloadavg()],
            },
        },
        "catalog": args.catalog,
        "clients": args.clients,
        "duration_s": args.duration,
        "requests": requests,
        "requests_per_s": figures["requests_per_s"],
        "latency": figures["latency"],
        "errors": figures["errors"],
        "worker_cpu_s": round(cpu_used, 3),
        "cpu_ms_per_request": round(cpu_ms, 2),
        "samples": sum(n for _, n in samples),
        "by_layer": breakdown(samples, layer_of, cpu_ms),
        "by_stage": breakdown(samples, stage_of, cpu_ms),
    }
    print(
        f"{args.catalog}: {requests} requests, {figures['requests_per_s']:.1f} req/s, "
        f"{cpu_ms:.2f} ms of worker CPU per request, {result['samples']} samples"
    )
    for key in ("by_layer", "by_stage"):
        print(f"\n{key.replace('_', ' ')}:")
        for row in result[key]:
            print(f"  {row['name']:<42} {row['cpu_ms_per_request']:>6.2f} ms  {row['share']:.1%}")
    print(json.dumps({"cpu_ms_per_request": result["cpu_ms_per_request"]}))
    write_json(args.out, result)


if __name__ == "__main__":
    main()
