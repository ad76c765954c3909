"""LLM cost of a graph run with the `openai` preset, against the OpenAI-compatible fake server.

    .venv/bin/python -m benchmarks.llm_cost [--runs 20] [--latency 0.2]

Every chat-completions request waits `--latency` seconds on the server, so the wall time of a
run shows how many LLM round trips lie on its critical path. The server answers each schema
with a valid answer built from the ids it was shown. Prints calls, tokens and wall time per
run, and the critical path (requests that overlap in time count as one round trip); writes
benchmarks/results/llm_cost.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from agents.context import Context
from agents.llm_brains import clear_model_cache
from agents.schemas import TaskName
from agents.state import InputState
from agents.toolbox import get_toolbox
from benchmarks.fake_openai import FakeOpenAIServer, RecordedRequest, Reply
from benchmarks.report import write_json
from graphs.recommend import graph

OUT = Path(__file__).resolve().parent / "results" / "llm_cost.json"


def _responder(catalog_ids: set[str], starts: list[float], lock: threading.Lock) -> Any:
    id_pattern = re.compile(r"[a-z0-9][a-z0-9-]*-\d{4}")

    def respond(request: RecordedRequest) -> Reply:
        with lock:
            starts.append(time.monotonic())
        text = json.dumps(request.body.get("messages", []))
        shown = [i for i in dict.fromkeys(id_pattern.findall(text)) if i in catalog_ids]
        name = request.schema_name
        answers: dict[str | None, Any] = {
            "ProfileDraft": {
                "summary": "Enjoys science fiction and thrillers.",
                "affinities": [{"attribute": "genres", "value": "Sci-Fi", "affinity": 0.8}],
            },
            "IntentDraft": {
                "wanted": [{"attribute": "genres", "value": "Comedy"}],
                "unwanted": [{"attribute": "genres", "value": "Horror"}],
                "reference_items": [],
                "year_min": None,
                "year_max": None,
                "count": None,
                "keywords": [],
                "needs_clarification": False,
                "clarifying_question": None,
            },
            "ItemInsightBatch": {
                "items": [{"item_id": i, "summary": "Fits the user's taste."} for i in shown]
            },
            "RerankAnswer": {
                "items": [{"item_id": i, "explanation": "A strong match."} for i in shown[:10]]
            },
            "ReviewDraft": {"accept": True, "problems": [], "suggestions": [], "item_ids": []},
            "ManagerChoice": {"next": "finish", "reason": "done"},
        }
        return Reply.structured(answers.get(name, {}))

    return respond


def _round_trips(starts: list[float], latency: float) -> int:
    """Requests that start within one latency of a wave's first request are concurrent."""
    waves = 0
    wave_start = -1e9
    for t in sorted(starts):
        if t >= wave_start + 0.9 * latency:
            waves += 1
            wave_start = t
    return waves


def measure(runs: int, latency: float) -> dict[str, Any]:
    box = get_toolbox("demo")
    catalog_ids = set(box.dataset.item_ids)
    users = box.dataset.user_ids
    results: dict[str, Any] = {}
    clear_model_cache()
    with FakeOpenAIServer(latency_s=latency) as server:
        context = Context.from_preset(
            "openai", base_url=server.base_url, llm_timeout_s=latency * 10 + 5
        )
        tasks: tuple[tuple[TaskName, str], ...] = (
            ("recommend", ""),
            ("chat", "something funny, nothing scary"),
        )
        for task, message in tasks:
            calls, tokens, walls, trips, degraded = [], [], [], [], 0
            for n in range(runs):
                starts: list[float] = []
                server.responder = _responder(catalog_ids, starts, threading.Lock())
                started = time.perf_counter()
                out = graph.invoke(
                    InputState(task=task, user_id=users[n % len(users)], message=message),
                    context=context,
                )
                walls.append(time.perf_counter() - started)
                usage = out["usage"]
                calls.append(sum(u["calls"] for u in usage.values()))
                tokens.append(
                    sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage.values())
                )
                trips.append(_round_trips(starts, latency))
                degraded += bool(out["degraded"])
            results[task] = {
                "runs": runs,
                "calls_per_run_mean": statistics.fmean(calls),
                "calls_per_run_max": max(calls),
                "tokens_per_run_mean": statistics.fmean(tokens),
                "critical_path_round_trips_max": max(trips),
                "wall_s_per_run_mean": statistics.fmean(walls),
                "wall_s_per_run_p50": statistics.median(walls),
                "runs_degraded": degraded,
            }
    clear_model_cache()
    return {"latency_s_per_call": latency, "preset": "openai", "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    report = measure(args.runs, args.latency)
    print(f"LLM cost, preset openai, {args.latency * 1000:.0f} ms per call, {args.runs} runs/task")
    print(
        f"{'task':<10} {'calls/run':>10} {'max':>5} {'tokens/run':>11} {'trips':>6} {'wall s':>8}"
    )
    for task, r in report["results"].items():
        print(
            f"{task:<10} {r['calls_per_run_mean']:>10.2f} {r['calls_per_run_max']:>5} "
            f"{r['tokens_per_run_mean']:>11.0f} {r['critical_path_round_trips_max']:>6} "
            f"{r['wall_s_per_run_mean']:>8.3f}"
        )
    write_json(args.out, report)


if __name__ == "__main__":
    main()
