"""What the service keeps in Redis per request, and for how long.

    .venv/bin/python -m benchmarks.redis_memory                  # 1,000 JSON + 1,000 streamed
    .venv/bin/python -m benchmarks.redis_memory --requests 200 --out /tmp/m.json

Starts the real service (`agentrec serve`, offline preset, demo catalog, default settings
unless `--env NAME=VALUE` overrides one) on a redis-server of its own, sends `--requests`
JSON recommendations, then as many streamed ones (each read to `run_finished`), for users
drawn from the demo's 300, and measures after each phase:
- Redis `used_memory` and the AOF's size before and after: bytes per 1,000 requests;
- the keys left per request, by kind (trace, run state, user index...), with `MEMORY USAGE`
  and the TTL Redis holds for them;
- the steady state at `--rate` requests per second (100 by default): each phase's bytes per
  request, kind by kind, times the rate times the TTL Redis holds for that kind (what stays
  in Redis once writes and expiries balance).
Prints a table and writes JSON (with the commit the service code comes from).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks.load import code_version, local_service
from benchmarks.report import machine_info, write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "redis_memory.json"
DEMO_USERS = [f"u{n:03d}" for n in range(1, 301)]
KIND = re.compile(r"^[^:]+:(\w+):\{[^}]*\}(?::(\w+))?")


def key_kind(key: str) -> str:
    """`run:trace`, `run:state`, `user:runs`, ... for a key of the service's layout."""
    match = KIND.match(key)
    if not match:
        return "other"
    return f"{match.group(1)}:{match.group(2) or '-'}"


def snapshot(client: redis.Redis) -> dict[str, Any]:
    """Memory, AOF size and every key with its kind, size and TTL."""
    info = client.info("memory")
    persistence = client.info("persistence")
    kinds: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"keys": 0, "bytes": 0, "ttl_min_s": None, "ttl_max_s": None}
    )
    for raw in client.scan_iter(count=1000):
        key = raw.decode()
        kind = kinds[key_kind(key)]
        kind["keys"] += 1
        kind["bytes"] += int(client.memory_usage(raw) or 0)
        ttl = int(client.ttl(raw))
        if ttl >= 0:
            kind["ttl_min_s"] = ttl if kind["ttl_min_s"] is None else min(kind["ttl_min_s"], ttl)
            kind["ttl_max_s"] = ttl if kind["ttl_max_s"] is None else max(kind["ttl_max_s"], ttl)
    return {
        "used_memory": int(info["used_memory"]),
        "aof_bytes": int(persistence.get("aof_current_size", 0) or 0),
        "kinds": dict(kinds),
    }


def json_request(client: httpx.Client, url: str, n: int) -> None:
    body = {"user_id": DEMO_USERS[n % len(DEMO_USERS)], "count": 10}
    answer = client.post(f"{url}/v1/recommendations", json=body)
    answer.raise_for_status()


def streamed_request(client: httpx.Client, url: str, n: int) -> None:
    body = {"user_id": DEMO_USERS[n % len(DEMO_USERS)], "count": 10}
    finished = False
    with client.stream("POST", f"{url}/v1/recommendations/stream", json=body) as answer:
        answer.raise_for_status()
        for line in answer.iter_lines():
            if line.startswith("event: run_finished"):
                finished = True
    if not finished:
        raise RuntimeError("a stream ended without run_finished")


def run_phase(url: str, requests: int, clients: int, streamed: bool) -> float:
    call = streamed_request if streamed else json_request

    def worker(c: int) -> None:
        with httpx.Client(timeout=60) as client:
            for n in range(c, requests, clients):
                call(client, url, n)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker, c) for c in range(clients)]:
            future.result()
    return time.perf_counter() - started


def difference(before: dict[str, Any], after: dict[str, Any], requests: int) -> dict[str, Any]:
    kinds = {}
    for name, kind in after["kinds"].items():
        old = before["kinds"].get(name, {"keys": 0, "bytes": 0})
        added_keys, added_bytes = kind["keys"] - old["keys"], kind["bytes"] - old["bytes"]
        if added_keys or added_bytes:
            kinds[name] = {
                "keys_per_request": round(added_keys / requests, 3),
                "bytes_per_request": round(added_bytes / requests),
                "ttl_max_s": kind["ttl_max_s"],
            }
    ttls = [k["ttl_max_s"] for k in kinds.values() if k["ttl_max_s"] is not None]
    used = after["used_memory"] - before["used_memory"]
    return {
        "used_memory_per_1000_requests_bytes": round(used * 1000 / requests),
        "key_bytes_per_request": sum(k["bytes_per_request"] for k in kinds.values()),
        "aof_per_1000_requests_bytes": round(
            (after["aof_bytes"] - before["aof_bytes"]) * 1000 / requests
        ),
        "longest_ttl_s": max(ttls) if ttls else None,
        "kinds": kinds,
    }


def steady_state(phase: dict[str, Any], rate: float) -> dict[str, Any]:
    """What stays in Redis at `rate` requests/s once expiries balance the writes: for each
    kind of key a request leaves, its bytes per request x the rate x its TTL."""
    total = 0.0
    for kind in phase["kinds"].values():
        if kind["ttl_max_s"] is None:
            return {"requests_per_s": rate, "bytes": None, "human": "unbounded (no TTL)"}
        total += max(kind["bytes_per_request"], 0) * rate * kind["ttl_max_s"]
    return {"requests_per_s": rate, "bytes": round(total), "human": _human(total)}


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100.0, help="for the steady state")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE service setting")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.env)
    phases: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="agentrec-redis-memory-") as tmp,
        local_service(Path(tmp), settings=settings) as service,
    ):
        client = redis.Redis.from_url(service["redis_url"])
        run_phase(service["url"], 20, 4, streamed=False)  # warm up (not measured)
        run_phase(service["url"], 20, 4, streamed=True)
        client.flushdb()
        client.bgrewriteaof()
        time.sleep(1.0)
        for name, streamed in (("json", False), ("streamed", True)):
            before = snapshot(client)
            seconds = run_phase(service["url"], args.requests, args.clients, streamed)
            time.sleep(0.5)  # let the last trace writes land
            after = snapshot(client)
            phases[name] = difference(before, after, args.requests)
            phases[name]["seconds"] = round(seconds, 2)
            phases[name]["steady_state"] = steady_state(phases[name], args.rate)
        client.close()
    result = {
        "benchmark": "redis_memory",
        "command": "python -m benchmarks.redis_memory "
        + " ".join(f"--env {e}" for e in args.env)
        + f" --requests {args.requests}",
        "code": code_version(),
        "settings": settings or "defaults",
        "requests_per_phase": args.requests,
        "clients": args.clients,
        "machine": machine_info(),
        "phases": phases,
    }
    print(f"{'phase':<10} {'KB/1000 req':>12} {'AOF KB/1000':>12} {'TTL s':>8}  steady state")
    for name, phase in phases.items():
        print(
            f"{name:<10} {phase['used_memory_per_1000_requests_bytes'] / 1024:>12.0f} "
            f"{phase['aof_per_1000_requests_bytes'] / 1024:>12.0f} "
            f"{phase['longest_ttl_s'] or '-':>8}  {phase['steady_state']['human']}"
            f" at {args.rate:g} req/s"
        )
        for kind, figures in phase["kinds"].items():
            print(f"    {kind:<18} {json.dumps(figures)}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
