"""Latency of the offline agent graph, in process, on MovieLens 100K.

    .venv/bin/python -m benchmarks.graph_latency
    .venv/bin/python -m benchmarks.graph_latency --runs 500 --profile

Builds the ml-100k toolbox (fits the default model), compiles `build_graph()` with LangGraph's
in-memory checkpointer (`InMemorySaver`) and times `invoke` of the `recommend` (count=10) and
`rank` (8 random candidates) tasks for seeded random users, each run on a fresh thread_id,
after a warm-up; the setups take turns run by run. Goal: recommend p50 <= 20 ms and
p99 <= 60 ms on 2 cores.

It also reports
- the per-node breakdown (the same graph built with timed node functions);
- the same runs on the graph compiled without a checkpointer (the checkpointer's share),
  and with the checkpointer but `durability="exit"` (one checkpoint, at the end),
  `diversity=0.3` (the Ranker's MMR) or `pool_size=20` (a lighter state);
- the garbage collector's pauses during the runs;
- the floor of LangGraph itself: a graph of the same shape and state schema whose Manager
  follows the same plan and whose agents do nothing, with and without the checkpointer.

`--profile` prints the top functions of a cProfile run of the recommend task.
Prints a table, writes JSON (benchmarks/results/graph_latency.json).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import platform
import pstats
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command

from agents.context import Context
from agents.manager import FINISH, next_step
from agents.state import InputState, OutputState, State
from agents.toolbox import Toolbox, register_toolbox, unregister_toolbox
from benchmarks.report import ML100K, latency_summary, write_json
from graphs import nodes, recommend
from recdata.loaders import load_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "graph_latency.json"
CATALOG = "ml-100k"
GOAL_P50_MS = 20.0
GOAL_P99_MS = 60.0
RANK_CANDIDATES = 8


def _payloads(box: Toolbox, task: str, n: int, seed: int) -> list[InputState]:
    rng = np.random.default_rng(seed)
    users = [box.dataset.users[int(u)].user_id for u in rng.integers(0, box.dataset.n_users, n)]
    if task == "recommend":
        return [InputState(task="recommend", user_id=u, count=10) for u in users]
    out = []
    for user in users:
        picks = rng.choice(box.dataset.n_items, RANK_CANDIDATES, replace=False)
        out.append(InputState(task="rank", user_id=user, candidate_item_ids=box.item_ids(picks)))
    return out


_thread_counter = 0


def _invoke(graph: Any, payload: InputState, **options: Any) -> float:
    """Seconds for one `invoke` on a new thread_id (`options` go to `invoke`; the context
    is the ml-100k catalog's unless given)."""
    global _thread_counter
    _thread_counter += 1
    config = {"configurable": {"thread_id": f"bench-{_thread_counter}"}}
    options.setdefault("context", Context(catalog=CATALOG))
    start = time.perf_counter()
    graph.invoke(payload, config=config, **options)
    return time.perf_counter() - start


class _GcPauses:
    """Durations of the garbage collector's passes, per generation, while active."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = defaultdict(list)
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._start)

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            f"gen{gen}": {
                "passes": len(values),
                "mean_ms": round(float(np.mean(values)) * 1e3, 3),
                "max_ms": round(float(np.max(values)) * 1e3, 3),
            }
            for gen, values in sorted(self.pauses.items())
        }


Setup = tuple[Any, list[InputState], dict[str, Any]]


def _time_interleaved(setups: dict[str, Setup], warmup: int) -> dict[str, list[float]]:
    """Seconds per run of every setup (graph, payloads, invoke options), taking turns run by
    run so that a busy spell of the machine hits all of them alike; the first `warmup` runs
    of each are not kept."""
    times: dict[str, list[float]] = {name: [] for name in setups}
    for n in range(max(len(payloads) for _, payloads, _ in setups.values())):
        for name, (graph, payloads, options) in setups.items():
            if n < len(payloads):
                elapsed = _invoke(graph, payloads[n], **options)
                if n >= warmup:
                    times[name].append(elapsed)
    return times


@contextmanager
def _timed_nodes(totals: dict[str, list[float]]) -> Iterator[None]:
    """While active, `build_graph()` builds its nodes from timed copies of the node functions."""

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(state: State, runtime: Runtime[Context]) -> Any:
            start = time.perf_counter()
            try:
                return fn(state, runtime)
            finally:
                totals[name].append(time.perf_counter() - start)

        return wrapper

    saved_agents = dict(recommend.AGENTS)
    saved_manager = nodes.manager
    try:
        for name, fn in saved_agents.items():
            recommend.AGENTS[name] = timed(name, fn)
        nodes.manager = timed("Manager", saved_manager)
        yield
    finally:
        recommend.AGENTS.clear()
        recommend.AGENTS.update(saved_agents)
        nodes.manager = saved_manager


def _empty_graph() -> StateGraph[State, Context, InputState, OutputState]:
    """The recommend graph's shape and state schema with agents that do nothing."""

    def manager(state: State, runtime: Runtime[Context]) -> Command[Any]:
        step = next_step(state, runtime.context.max_steps, runtime.context.max_reflections)
        if step == (FINISH,):
            return Command(goto="__end__", update={"steps": 1})
        return Command(goto=list(step), update={"steps": 1})

    def agent(name: str) -> Callable[[State, Runtime[Context]], dict[str, Any]]:
        def run(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
            return {"completed": [name]}

        return run

    builder = StateGraph(
        State, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )
    builder.add_node("Manager", manager)
    for name in recommend.AGENTS:
        builder.add_node(name, cast(Any, agent(name)))
        builder.add_edge(name, "Manager")
    builder.add_edge(START, "Manager")
    return builder


def _profile(graph: Any, payloads: list[InputState], top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for payload in payloads:
        _invoke(graph, payload)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--data", type=Path, default=ML100K)
    args.add_argument("--runs", type=int, default=200)
    args.add_argument("--warmup", type=int, default=20)
    args.add_argument("--seed", type=int, default=0)
    args.add_argument("--profile", action="store_true")
    args.add_argument("--out", type=Path, default=DEFAULT_OUT)
    opts = args.parse_args(argv)
    if not (opts.data / "u.data").is_file():
        raise SystemExit(f"MovieLens 100K not found at {opts.data}")

    start = time.perf_counter()
    dataset = load_dataset(opts.data, "movielens-100k")
    box = Toolbox.build(dataset)
    build_seconds = time.perf_counter() - start
    register_toolbox(CATALOG, box)
    try:
        n = opts.warmup + opts.runs
        recommend_runs = _payloads(box, "recommend", n, opts.seed)
        rank_runs = _payloads(box, "rank", n, opts.seed + 1)
        saved = recommend.build_graph().compile(checkpointer=InMemorySaver())
        plain = recommend.build_graph().compile()
        node_times: dict[str, list[float]] = defaultdict(list)
        with _timed_nodes(node_times):
            timed_graph = recommend.build_graph().compile(checkpointer=InMemorySaver())
        empty_saved = _empty_graph().compile(checkpointer=InMemorySaver())
        empty_plain = _empty_graph().compile()

        gc.collect()
        setups: dict[str, Setup] = {
            "recommend": (saved, recommend_runs, {}),
            "rank": (saved, rank_runs, {}),
            "recommend, no checkpointer": (plain, recommend_runs, {}),
            "recommend, durability=exit": (saved, recommend_runs, {"durability": "exit"}),
            "recommend, diversity=0.3": (
                saved,
                recommend_runs,
                {"context": Context(catalog=CATALOG, diversity=0.3)},
            ),
            "recommend, pool_size=20": (
                saved,
                recommend_runs,
                {"context": Context(catalog=CATALOG, pool_size=20)},
            ),
            "empty graph": (empty_saved, recommend_runs, {}),
            "empty graph, no checkpointer": (empty_plain, recommend_runs, {}),
        }
        with _GcPauses() as gc_pauses:
            times = _time_interleaved(setups, opts.warmup)
        rows = {name: latency_summary(values) for name, values in times.items()}
        # the breakdown: the same runs again (the code is warm by now) with timed nodes
        measured = recommend_runs[opts.warmup :]
        timed_total = [_invoke(timed_graph, payload) for payload in measured]
        per_run = len(measured)
        breakdown = {
            name: {
                "calls_per_run": round(len(values) / per_run, 2),
                "mean_ms_per_run": round(float(np.sum(values)) / per_run * 1e3, 3),
                "p99_ms_per_call": round(float(np.percentile(values, 99)) * 1e3, 3),
            }
            for name, values in sorted(node_times.items())
        }
        in_nodes = sum(float(np.sum(v)) for v in node_times.values()) / per_run * 1e3
        total_mean = float(np.mean(timed_total)) * 1e3
        if opts.profile:
            _profile(saved, recommend_runs[: max(50, opts.runs // 2)], 40)
    finally:
        unregister_toolbox(CATALOG)

    print(f"toolbox build (fit) {build_seconds:.1f} s; {opts.runs} runs, {opts.warmup} warm-up")
    print(f"{'run':32} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8}")
    for name, row in rows.items():
        print(
            f"{name:32} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['mean_ms']:>8.2f} {row['max_ms']:>8.2f}"
        )
    print(f"\nper node, recommend ({'mean ms per run'}):")
    for name, row in breakdown.items():
        print(
            f"  {name:12} {row['mean_ms_per_run']:>7.3f} ms "
            f"({row['calls_per_run']} calls, p99 {row['p99_ms_per_call']:.3f} ms per call)"
        )
    print(
        f"  in nodes {in_nodes:.2f} ms of a {total_mean:.2f} ms mean run "
        f"(LangGraph + checkpointer: {total_mean - in_nodes:.2f} ms)"
    )
    gc_summary = gc_pauses.summary()
    print(
        "garbage collector, all runs: "
        + "; ".join(
            f"{gen} {row['passes']} passes, mean {row['mean_ms']:.2f}, max {row['max_ms']:.2f} ms"
            for gen, row in gc_summary.items()
        )
    )
    recommend_row = rows["recommend"]
    meets = recommend_row["p50_ms"] <= GOAL_P50_MS and recommend_row["p99_ms"] <= GOAL_P99_MS
    print(f"goal p50 <= {GOAL_P50_MS} ms, p99 <= {GOAL_P99_MS} ms: {'met' if meets else 'NOT met'}")
    result = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "catalog": CATALOG,
        "runs": opts.runs,
        "warmup": opts.warmup,
        "toolbox_build_seconds": round(build_seconds, 2),
        "goal": {"p50_ms": GOAL_P50_MS, "p99_ms": GOAL_P99_MS, "met": meets},
        "tasks": rows,
        "nodes": breakdown,
        "node_ms_per_run": round(in_nodes, 3),
        "gc_pauses": gc_summary,
        "timed_run_mean_ms": round(total_mean, 3),
    }
    write_json(opts.out, cast(dict[str, Any], result))


if __name__ == "__main__":
    main()
