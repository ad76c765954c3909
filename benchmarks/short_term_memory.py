"""Short-term memory on the embedded redis-server: latency of each operation, and how long a
caller waits for `MemoryUnavailable` when Redis is down (refused) or frozen (SIGSTOP).

    .venv/bin/python -m benchmarks.short_term_memory
    .venv/bin/python -m benchmarks.short_term_memory --repeat 2000

Everything runs against a real redis-server in a temporary folder (loopback, append-only
file, default fsync every second). Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import machine_info, write_json
from core.settings import Settings
from memory.connection import MemoryUnavailable, RedisProvider
from memory.redis_server import EmbeddedRedis
from memory.short_term import ShortTermMemory

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "short_term_memory.json"


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "max_ms": round(float(values.max()), 3),
    }


def timed(operation: Callable[[int], Any], repeat: int) -> dict[str, float]:
    samples = []
    for i in range(repeat):
        start = time.perf_counter()
        operation(i)
        samples.append(time.perf_counter() - start)
    return percentiles_ms(samples)


def time_to_unavailable(operation: Callable[[], Any], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            operation()
        except MemoryUnavailable:
            samples.append(time.perf_counter() - start)
        else:
            raise RuntimeError("the operation succeeded while Redis was down")
    return percentiles_ms(samples)


def expect_down(provider: RedisProvider) -> None:
    if provider.available():
        raise RuntimeError("available() said True while Redis was frozen")


def run(repeat: int, fault_repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis").start()
        settings = Settings(data_dir=Path(tmp), redis_url=server.url)
        provider = RedisProvider(settings)
        memory = ShortTermMemory.from_settings(provider.client(), settings)
        session = memory.create_session("alice")
        event = {"type": "thought", "agent": "Ranker", "text": "x" * 200}
        delta = {"genre": {"Comedy": 0.1, "Drama": -0.05}, "decade": {"1990s": 0.02}}
        memory.cache_set("hit", "y" * 2000, ttl_s=600)
        operations: dict[str, Callable[[int], Any]] = {
            "create_session": lambda i: memory.create_session(f"user{i % 50}"),
            "append_turn": lambda i: memory.append_turn(session, "user", "z" * 200),
            "turns(limit=20)": lambda i: memory.turns(session, limit=20),
            "append_event": lambda i: memory.append_event("run", event),
            "replay (last 50)": lambda i: memory.replay("run", after_seq=repeat - 50),
            "read_new (last 50, no block)": lambda i: memory.read_new("run", after_seq=repeat - 50),
            "put_blackboard": lambda i: memory.put_blackboard("run", f"k{i % 20}", "[1, 2, 3]"),
            "get_blackboard (20 keys)": lambda i: memory.get_blackboard("run"),
            "cache_get (2 kB)": lambda i: memory.cache_get("hit"),
            "update_profile (3 entries)": lambda i: memory.update_profile("alice", delta, 0.1),
            "get_profile": lambda i: memory.get_profile("alice"),
            "available() (cached)": lambda i: provider.available(),
        }
        latency = {name: timed(op, repeat) for name, op in operations.items()}
        uncached = RedisProvider(settings, availability_ttl_s=0)
        latency["available() (uncached)"] = timed(lambda i: uncached.available(), repeat)

        pid = int(provider.client().info("server")["process_id"])
        os.kill(pid, signal.SIGSTOP)
        try:
            frozen = {
                "append_turn": time_to_unavailable(
                    lambda: memory.append_turn(session, "user", "hi"), fault_repeat
                ),
                "available() (uncached)": timed(lambda i: expect_down(uncached), 3),
            }
        finally:
            os.kill(pid, signal.SIGCONT)
        server.stop()
        refused = {
            "append_turn": time_to_unavailable(
                lambda: memory.append_turn(session, "user", "hi"), fault_repeat * 10
            ),
            "replay": time_to_unavailable(lambda: memory.replay("run"), fault_repeat * 10),
        }
        provider.close()
        uncached.close()
    return {
        "machine": machine_info(),
        "repeat": repeat,
        "socket_timeout_s": provider.socket_timeout_s,
        "latency": latency,
        "time_to_memory_unavailable": {"refused": refused, "frozen": frozen},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1000)
    parser.add_argument("--fault-repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    result = run(args.repeat, args.fault_repeat)
    rows = [(name, figures) for name, figures in result["latency"].items()]
    for kind, faults in result["time_to_memory_unavailable"].items():
        rows += [(f"{kind}: {name}", figures) for name, figures in faults.items()]
    print(f"{'operation':34} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, f in rows:
        print(f"{name:34} {f['p50_ms']:9.3f} {f['p99_ms']:9.3f} {f['max_ms']:9.3f}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
