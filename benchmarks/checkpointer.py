"""The Redis checkpointer's cost on the offline agent graph, on MovieLens 100K.

    .venv/bin/python -m benchmarks.checkpointer
    .venv/bin/python -m benchmarks.checkpointer --runs 500

Builds the ml-100k toolbox, starts an embedded redis-server on loopback (no append-only file:
the server's disk is not what is measured) and times `invoke` of the `recommend` task
(count=10, seeded random users) on `build_graph()` compiled with `RedisSaver` and with
LangGraph's `InMemorySaver`, in the same process, taking turns run by run, after a warm-up.
Each run starts a new thread; the "resumed" rows continue one of 20 threads instead, so the
run first loads a previous state; "exit" rows run with `durability="exit"` (one checkpoint at
the end instead of one per step); "async" rows call `ainvoke` (the async saver methods).
Also counts the requests sent to Redis per run (sync rows).
Goal: RedisSaver adds at most 5 ms at p50. Prints a table, writes JSON
(benchmarks/results/checkpointer.json).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import redis
from langgraph.checkpoint.memory import InMemorySaver

from agents.context import Context
from agents.state import InputState
from agents.toolbox import Toolbox, register_toolbox, unregister_toolbox
from benchmarks.report import ML100K, latency_summary, machine_info, write_json
from graphs.recommend import build_graph
from memory.checkpointer import RedisSaver
from memory.redis_server import EmbeddedRedis
from recdata.loaders import load_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "checkpointer.json"
CATALOG = "ml-100k"
GOAL_ADDED_P50_MS = 5.0
RESUMED_THREADS = 20


def _payloads(box: Toolbox, n: int, seed: int) -> list[InputState]:
    rng = np.random.default_rng(seed)
    users = [box.dataset.users[int(u)].user_id for u in rng.integers(0, box.dataset.n_users, n)]
    return [InputState(task="recommend", user_id=u, count=10) for u in users]


class _Setup:
    """A graph and how it is called: `invoke`, or `ainvoke` on `runner`'s event loop."""

    def __init__(
        self,
        name: str,
        graph: Any,
        resumed: bool,
        runner: asyncio.Runner | None = None,
        durability: str | None = None,
    ) -> None:
        self.name = name
        self.options = {"durability": durability} if durability else {}
        self.graph = graph
        self.resumed = resumed
        self.runner = runner
        self._fresh = itertools.count()
        self._cycle = itertools.cycle(range(RESUMED_THREADS))

    def thread_id(self) -> str:
        if self.resumed:
            return f"{self.name}-resumed-{next(self._cycle)}"
        return f"{self.name}-{next(self._fresh)}"

    def invoke(self, payload: InputState) -> float:
        config = {"configurable": {"thread_id": self.thread_id()}}
        context = Context(catalog=CATALOG)
        start = time.perf_counter()
        if self.runner is None:
            self.graph.invoke(payload, config=config, context=context, **self.options)
        else:
            coro = self.graph.ainvoke(payload, config=config, context=context, **self.options)
            self.runner.run(coro)
        return time.perf_counter() - start


def _round_trips_per_run(setup: _Setup, payloads: list[InputState]) -> float:
    """Requests sent to Redis per run (a pipeline or a script call is one)."""
    with mock.patch.object(
        redis.connection.AbstractConnection,
        "send_packed_command",
        autospec=True,
        side_effect=redis.connection.AbstractConnection.send_packed_command,
    ) as sent:
        for payload in payloads:
            setup.invoke(payload)
    return sent.call_count / len(payloads)


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--data", type=Path, default=ML100K)
    args.add_argument("--runs", type=int, default=300)
    args.add_argument("--warmup", type=int, default=30)
    args.add_argument("--seed", type=int, default=0)
    args.add_argument("--out", type=Path, default=DEFAULT_OUT)
    opts = args.parse_args(argv)
    if not (opts.data / "u.data").is_file():
        raise SystemExit(f"MovieLens 100K not found at {opts.data}")

    box = Toolbox.build(load_dataset(opts.data, "movielens-100k"))
    register_toolbox(CATALOG, box)
    payloads = _payloads(box, opts.warmup + opts.runs, opts.seed)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=False)
        with server:
            saver = RedisSaver.from_url(server.url, prefix="bench")
            client = redis.Redis.from_url(server.url)
            runner = asyncio.Runner()
            try:
                memory_graph = build_graph().compile(checkpointer=InMemorySaver())
                redis_graph = build_graph().compile(checkpointer=saver)
                setups = [
                    _Setup("InMemorySaver", memory_graph, resumed=False),
                    _Setup("RedisSaver", redis_graph, resumed=False),
                    _Setup("InMemorySaver, resumed", memory_graph, resumed=True),
                    _Setup("RedisSaver, resumed", redis_graph, resumed=True),
                    _Setup("InMemorySaver, exit", memory_graph, resumed=False, durability="exit"),
                    _Setup("RedisSaver, exit", redis_graph, resumed=False, durability="exit"),
                    _Setup("InMemorySaver, async", memory_graph, resumed=False, runner=runner),
                    _Setup("RedisSaver, async", redis_graph, resumed=False, runner=runner),
                ]
                times: dict[str, list[float]] = {s.name: [] for s in setups}
                gc.collect()
                for n, payload in enumerate(payloads):
                    for setup in setups:
                        elapsed = setup.invoke(payload)
                        if n >= opts.warmup:
                            times[setup.name].append(elapsed)
                round_trips = {
                    s.name: round(_round_trips_per_run(s, payloads[:20]), 1)
                    for s in setups
                    if s.graph is redis_graph and s.runner is None
                }
                redis_info = client.info("server")
            finally:
                runner.run(saver.aclose())
                runner.close()
                unregister_toolbox(CATALOG)
                client.close()
                saver.close()

    rows = {name: latency_summary(values) for name, values in times.items()}
    added = {
        "new thread": {
            "p50_ms": round(rows["RedisSaver"]["p50_ms"] - rows["InMemorySaver"]["p50_ms"], 3),
            "p99_ms": round(rows["RedisSaver"]["p99_ms"] - rows["InMemorySaver"]["p99_ms"], 3),
        },
        "new thread, ainvoke": {
            "p50_ms": round(
                rows["RedisSaver, async"]["p50_ms"] - rows["InMemorySaver, async"]["p50_ms"], 3
            ),
            "p99_ms": round(
                rows["RedisSaver, async"]["p99_ms"] - rows["InMemorySaver, async"]["p99_ms"], 3
            ),
        },
        "new thread, durability=exit": {
            "p50_ms": round(
                rows["RedisSaver, exit"]["p50_ms"] - rows["InMemorySaver, exit"]["p50_ms"], 3
            ),
            "p99_ms": round(
                rows["RedisSaver, exit"]["p99_ms"] - rows["InMemorySaver, exit"]["p99_ms"], 3
            ),
        },
        "resumed thread": {
            "p50_ms": round(
                rows["RedisSaver, resumed"]["p50_ms"] - rows["InMemorySaver, resumed"]["p50_ms"],
                3,
            ),
            "p99_ms": round(
                rows["RedisSaver, resumed"]["p99_ms"] - rows["InMemorySaver, resumed"]["p99_ms"],
                3,
            ),
        },
    }
    # the goal is for the default way of running (invoke, durability="async")
    worst_added = max(added["new thread"]["p50_ms"], added["resumed thread"]["p50_ms"])
    print(f"recommend (count=10) on ml-100k, {opts.runs} runs each after {opts.warmup} warm-up")
    print(f"{'setup':<26}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'trips/run':>10}")
    for name, row in rows.items():
        cmds = round_trips.get(name)
        print(
            f"{name:<26}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['mean_ms']:>9.2f}"
            f"{'' if cmds is None else f'{cmds:.1f}':>10}"
        )
    for name, delta in added.items():
        print(f"Redis adds ({name}): p50 {delta['p50_ms']:+.2f} ms, p99 {delta['p99_ms']:+.2f} ms")
    verdict = "met" if worst_added <= GOAL_ADDED_P50_MS else "MISSED"
    print(f"goal: at most {GOAL_ADDED_P50_MS} ms added at p50: {verdict}")
    write_json(
        opts.out,
        {
            "benchmark": "checkpointer",
            "machine": machine_info(),
            "redis_version": redis_info["redis_version"],
            "runs": opts.runs,
            "warmup": opts.warmup,
            "seed": opts.seed,
            "rows": rows,
            "redis_round_trips_per_run": round_trips,
            "redis_adds": added,
            "goal_added_p50_ms": GOAL_ADDED_P50_MS,
            "goal_met": worst_added <= GOAL_ADDED_P50_MS,
        },
    )


if __name__ == "__main__":
    main()
