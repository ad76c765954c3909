"""Run models through a protocol's cases: fit, score in batches, rank, aggregate, time.

`evaluate` is the whole run behind `agentrec eval`; `rank_cases` and `predict_cases` score one
fitted model and are usable on their own. Progress is reported through an optional
`Tracker` so this module stays free of any terminal UI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, runtime_checkable
from typing import Protocol as TypingProtocol

import numpy as np

from core.errors import ConfigError
from evaluation.metrics import ranks_of_targets
from evaluation.protocols import (
    DEFAULT_SEED,
    DataSummary,
    Protocol,
    RankingCases,
    RatingCases,
    Split,
    build_cases,
    ranking_metrics,
    rating_metrics,
)
from recdata.dataset import Dataset
from tools import registry
from tools.base import History, Recommender, histories_matrix
from tools.rating import PREDICTORS, RatingPredictor, create_predictor

Advance = Callable[[int], None]
# called once per model with (model name, number of cases); returns the per-batch callback
Tracker = Callable[[str, int], Advance]

SCORE_CELLS_PER_BATCH = 4_000_000  # histories x items scored at once
GRAPH = "graph"
"""The whole agent graph, evaluated as a model (see evaluation.graph_model)."""


@runtime_checkable
class CandidateScorer(TypingProtocol):
    """A model that scores given candidate items itself (the agent graph's rank task)."""

    def score_candidates(
        self, histories: Sequence[History], candidates: np.ndarray
    ) -> np.ndarray: ...


def _batch_size(n_items: int) -> int:
    return max(1, min(1024, SCORE_CELLS_PER_BATCH // max(n_items, 1)))


def rank_cases(
    model: Recommender,
    cases: RankingCases,
    batch_size: int | None = None,
    advance: Advance | None = None,
) -> np.ndarray:
    """0-based rank of every case's target, scored from the user's training history.

    Sampled cases rank the target among its candidates; full-ranking cases rank it among
    every item not in the training history. Ties go to the lower item index (as `top_k`).
    """
    train = cases.train
    size = batch_size or _batch_size(train.n_items)
    ranks = np.empty(len(cases), dtype=np.int64)
    for lo in range(0, len(cases), size):
        hi = min(lo + size, len(cases))
        histories = train.histories(cases.users[lo:hi])
        if cases.candidates is not None and isinstance(model, CandidateScorer):
            scores = np.zeros((hi - lo, train.n_items), dtype=np.float32)  # not needed
        else:
            scores = np.asarray(model.score(histories))
        if scores.shape != (hi - lo, train.n_items):
            raise ValueError(
                f"{model.name}.score returned shape {scores.shape}, "
                f"expected {(hi - lo, train.n_items)}"
            )
        if cases.candidates is not None:
            candidates = cases.candidates[lo:hi]
            cand_scores = (
                model.score_candidates(histories, candidates)
                if isinstance(model, CandidateScorer)
                else np.take_along_axis(scores, candidates, axis=1)
            )
            # column 0 is the target; reorder columns by item index so ties break by index
            order = np.argsort(candidates, axis=1, kind="stable")
            target_column = np.argmax(order == 0, axis=1)
            ranks[lo:hi] = ranks_of_targets(
                np.take_along_axis(cand_scores, order, axis=1), target_column
            )
        else:
            seen = histories_matrix(histories, train.n_items).toarray() > 0
            ranks[lo:hi] = ranks_of_targets(scores, cases.targets[lo:hi], exclude=seen)
        if advance is not None:
            advance(hi - lo)
    return ranks


def predict_cases(
    predictor: RatingPredictor,
    cases: RatingCases,
    batch_size: int = 1024,
    advance: Advance | None = None,
) -> np.ndarray:
    """Predicted rating of every case, from the user's training history."""
    out = np.empty(len(cases), dtype=np.float64)
    for lo in range(0, len(cases), batch_size):
        hi = min(lo + batch_size, len(cases))
        histories = cases.train.histories(cases.users[lo:hi])
        out[lo:hi] = predictor.predict(histories, cases.items[lo:hi])
        if advance is not None:
            advance(hi - lo)
    return out


@dataclass(frozen=True)
class ModelResult:
    name: str
    metrics: dict[str, float]
    fit_seconds: float
    score_seconds: float

    @property
    def seconds(self) -> float:
        return self.fit_seconds + self.score_seconds


@dataclass(frozen=True)
class EvalReport:
    protocol: Protocol
    split: Split
    seed: int
    dataset_name: str
    summary: DataSummary
    test_cases: int
    results: list[ModelResult] = field(default_factory=list)

    @property
    def title(self) -> str:
        return (
            f"{self.protocol} on {self.dataset_name} ({self.split} split, "
            f"{self.test_cases} cases, seed {self.seed})"
        )

    @property
    def plot_title(self) -> str:
        return f"{self.protocol} on {self.dataset_name} ({self.split}, {self.test_cases} cases)"

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "split": self.split,
            "seed": self.seed,
            "dataset": {
                "name": self.dataset_name,
                "users": self.summary.users,
                "items": self.summary.items,
                "interactions": self.summary.interactions,
                "test_cases": self.test_cases,
            },
            "results": {r.name: dict(r.metrics) for r in self.results},
            "seconds": {r.name: round(r.seconds, 4) for r in self.results},
            "fit_seconds": {r.name: round(r.fit_seconds, 4) for r in self.results},
            "score_seconds": {r.name: round(r.score_seconds, 4) for r in self.results},
        }


def check_models(protocol: Protocol, names: Sequence[str]) -> list[str]:
    """The model names, validated for the protocol (ranking models, or rating predictors)."""
    known = list(PREDICTORS) if protocol == "rate" else [*registry.MODELS, GRAPH]
    if not names:
        raise ConfigError("no models given")
    for name in names:
        if name not in known:
            kind = "rating model" if protocol == "rate" else "model"
            raise ConfigError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"a model is named twice in {','.join(names)}")
    return list(names)


def create_ranking_model(name: str, seed: int, dataset: Dataset | None = None) -> Recommender:
    """A registry model (`random` seeded with the run's seed), or the agent graph."""
    if name == GRAPH:
        if dataset is None:
            raise ConfigError("the graph model needs the dataset")
        from evaluation.graph_model import GraphRecommender

        return GraphRecommender(dataset)
    try:
        return registry.create(name, seed=seed) if name == "random" else registry.create(name)
    except ImportError as exc:
        raise ConfigError(f"model {name!r} is not available: {exc}") from None


def evaluate(
    dataset: Dataset,
    protocol: Protocol,
    model_names: Sequence[str],
    split: Split = "test",
    seed: int = DEFAULT_SEED,
    tracker: Tracker | None = None,
) -> EvalReport:
    """Build the protocol's cases once, then fit and score each model on them in turn."""
    names = check_models(protocol, model_names)
    cases = build_cases(dataset, protocol, split, seed)
    report = EvalReport(protocol, split, seed, dataset.name, cases.summary, len(cases))
    for name in names:
        advance = tracker(name, len(cases)) if tracker is not None else None
        started = time.perf_counter()
        if isinstance(cases, RankingCases):
            model = create_ranking_model(name, seed, dataset).fit(cases.train)
            fitted = time.perf_counter()
            values = ranking_metrics(protocol, rank_cases(model, cases, advance=advance))
        else:
            predictor = create_predictor(name, seed=seed) if name == "random" else None
            predictor = (predictor or create_predictor(name)).fit(cases.train)
            fitted = time.perf_counter()
            values = rating_metrics(predict_cases(predictor, cases, advance=advance), cases.ratings)
        done = time.perf_counter()
        report.results.append(ModelResult(name, values, fitted - started, done - fitted))
    return report
