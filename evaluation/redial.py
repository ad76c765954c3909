"""The `redial` protocol: conversational recommendation measured on real dialogues (ReDial).

- Each ReDial mention ("Title (Year)" as typed) is mapped to a catalog item by normalised
  title and year (`recdata.redial.MentionMapper`).
- A recommender message that mentions a movie not mentioned earlier in the dialogue makes a
  case for each such movie, its target (repeats are not cases; neither are the seeker's
  mentions). Targets that map to no catalog item are dropped and reported through
  `coverage` (mapped targets / targets); a target whose item the dialogue already named
  under another ReDial id is dropped too.
- The system reads only the conversation before that message, as `Turn`s (seeker = "user",
  recommender = "assistant"), each `@id` replaced by its title without the year, HTML
  entities unescaped; never the ids, never the questionnaire labels.
- It returns its top `TOP_N` (50) catalog items and must leave out what was already
  mentioned itself. A target missing from the list ranks past every cut-off.
- Metrics: Recall@1, Recall@10, Recall@50 (one target per case, so Recall@n is the hit
  rate) and NDCG@10 (`evaluation.metrics`).
- Models fit on the catalog's ratings and the training dialogues only
  (`evaluation.redial_models`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation import metrics
from evaluation.harness import ModelResult, Tracker
from evaluation.redial_models import ChatTraining, check_chat_models, create_chat_model
from recdata.dataset import Dataset
from recdata.redial import Dialogue, MentionMapper, Turn

REDIAL = "redial"
TOP_N = 50
METRICS: tuple[str, ...] = ("Recall@1", "Recall@10", "Recall@50", "NDCG@10")


@dataclass(frozen=True)
class Request:
    """The conversation before a recommender message, and the new movies it names."""

    conversation_id: str
    message_id: str
    turns: tuple[Turn, ...]
    targets: tuple[int, ...]
    """Catalog indices, each a case."""


@dataclass(frozen=True)
class RedialCases:
    requests: list[Request]
    dialogues: int
    targets: int
    """New movies named by recommender messages, mapped or not."""
    unmapped: int

    @property
    def test_cases(self) -> int:
        return sum(len(r.targets) for r in self.requests)

    @property
    def coverage(self) -> float:
        """The fraction of targets that map to a catalog item."""
        return (self.targets - self.unmapped) / self.targets if self.targets else float("nan")


def redial_cases(dialogues: Sequence[Dialogue], mapper: MentionMapper) -> RedialCases:
    """The protocol's cases (see the module docstring)."""
    requests: list[Request] = []
    targets = unmapped = 0
    for dialogue in dialogues:
        mapped = mapper.map_dialogue(dialogue)
        mentioned: set[str] = set()
        named: set[int] = set()
        turns: list[Turn] = []
        for message in dialogue.messages:
            ids = message.mentioned_ids()
            if message.sender == dialogue.recommender:
                new = [m for m in ids if m not in mentioned]
                targets += len(new)
                items = [mapped.get(m) for m in new]
                unmapped += sum(1 for i in items if i is None)
                fresh = [i for i in dict.fromkeys(items) if i is not None and i not in named]
                if fresh:
                    request = Request(
                        dialogue.conversation_id, message.message_id, tuple(turns), tuple(fresh)
                    )
                    requests.append(request)
            mentioned.update(ids)
            named.update(i for i in (mapped.get(m) for m in ids) if i is not None)
            turns.append(Turn(dialogue.role_of(message), dialogue.text_of(message)))
    return RedialCases(requests, len(dialogues), targets, unmapped)


def redial_metrics(ranks: np.ndarray) -> dict[str, float]:
    """The protocol's metrics from each case's 0-based rank (`TOP_N` or more: not listed)."""
    return {
        "Recall@1": metrics.hit_rate(ranks, 1),
        "Recall@10": metrics.hit_rate(ranks, 10),
        "Recall@50": metrics.hit_rate(ranks, 50),
        "NDCG@10": metrics.mean_ndcg(ranks, 10),
    }


def _check_answer(name: str, answer: object, catalog: Dataset, count: int) -> list[str]:
    if not isinstance(answer, list) or not all(isinstance(i, str) for i in answer):
        raise TypeError(f"{name}.recommend must return a list of item ids")
    if len(answer) > count:
        raise ValueError(f"{name}.recommend returned {len(answer)} items, more than {count}")
    unknown = [i for i in answer if i not in catalog.item_index]
    if unknown:
        raise ValueError(f"{name}.recommend returned items not in the catalog: {unknown[:3]}")
    return answer


@dataclass(frozen=True)
class RedialReport:
    dataset: dict[str, Any]
    results: list[ModelResult] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: str = REDIAL

    @property
    def test_cases(self) -> int:
        return int(self.dataset["test_cases"])

    @property
    def title(self) -> str:
        d = self.dataset
        return (
            f"redial on {d['name']} ({d['dialogues']} dialogues, {d['test_cases']} cases, "
            f"coverage {d['coverage']:.3f}; catalog {d['catalog']})"
        )

    @property
    def plot_title(self) -> str:
        d = self.dataset
        return f"redial on {d['name']} ({d['test_cases']} cases, catalog {d['catalog']})"

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "dataset": dict(self.dataset),
            "results": {r.name: dict(r.metrics) for r in self.results},
            "seconds": {r.name: round(r.seconds, 4) for r in self.results},
            "fit_seconds": {r.name: round(r.fit_seconds, 4) for r in self.results},
            "score_seconds": {r.name: round(r.score_seconds, 4) for r in self.results},
            "latency_ms": self.latency_ms,
        }


def evaluate_redial(
    dialogues: Sequence[Dialogue],
    catalog: Dataset,
    train_dialogues: Sequence[Dialogue],
    model_names: Sequence[str],
    tracker: Tracker | None = None,
    *,
    name: str = "dialogues",
) -> RedialReport:
    """Build the cases once, then fit each model and ask it for every case in turn.

    A fitted default model and the title linker are shared by the models that use them,
    so the first such model's fit time includes theirs.
    """
    names = check_chat_models(model_names)
    mapper = MentionMapper(catalog)
    cases = redial_cases(dialogues, mapper)
    training = ChatTraining(catalog, train_dialogues, mapper)
    summary = {
        "name": name,
        "dialogues": cases.dialogues,
        "train_dialogues": len(train_dialogues),
        "catalog": catalog.name,
        "catalog_items": catalog.n_items,
        "targets": cases.targets,
        "unmapped_targets": cases.unmapped,
        "test_cases": cases.test_cases,
        "coverage": round(cases.coverage, 4),
        "requests": len(cases.requests),
        "top_n": TOP_N,
    }
    report = RedialReport(summary)
    for model_name in names:
        advance = tracker(model_name, cases.test_cases) if tracker is not None else None
        started = time.perf_counter()
        model = create_chat_model(model_name).fit(training)
        fitted = time.perf_counter()
        ranks: list[int] = []
        latencies: list[float] = []
        try:
            for request in cases.requests:
                asked = time.perf_counter()
                answer = model.recommend(list(request.turns), TOP_N)
                latencies.append(time.perf_counter() - asked)
                position: dict[str, int] = {}
                for p, item_id in enumerate(_check_answer(model_name, answer, catalog, TOP_N)):
                    position.setdefault(item_id, p)
                for target in request.targets:
                    ranks.append(position.get(catalog.item_ids[target], TOP_N))
                if advance is not None:
                    advance(len(request.targets))
        finally:
            model.close()
        done = time.perf_counter()
        values = redial_metrics(np.asarray(ranks, dtype=np.int64))
        report.results.append(ModelResult(model_name, values, fitted - started, done - fitted))
        ms = np.asarray(latencies) * 1e3
        report.latency_ms[model_name] = {
            "p50": round(float(np.percentile(ms, 50)), 3) if ms.size else float("nan"),
            "p99": round(float(np.percentile(ms, 99)), 3) if ms.size else float("nan"),
        }
    return report


def dataset_name(path: Path) -> str:
    """ "valid_data" for ".../redial/valid_data.jsonl"."""
    return path.stem
