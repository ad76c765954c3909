"""Scoring cases in batches, ranking, aggregating and timing models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import numpy as np
import pytest

from core.errors import ConfigError
from evaluation.harness import check_models, evaluate, predict_cases, rank_cases
from evaluation.metrics import rank_of_target
from evaluation.protocols import METRICS, full_cases, macrec_cases, rate_cases
from recdata.dataset import Dataset
from tests.evaluation.synthetic import taste_groups
from tools.base import History, Recommender, TrainSet
from tools.rating import GlobalMean


class SeededScores(Recommender):
    """Scores from a fixed random table (ties included), keyed by the history's length."""

    name = "seeded"

    def fit(self, train: TrainSet) -> Self:
        self.table = np.random.default_rng(0).integers(0, 5, (64, train.n_items))
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        return self.table[[len(h) % 64 for h in histories]].astype(np.float32)


class Constant(Recommender):
    name = "constant"

    def fit(self, train: TrainSet) -> Self:
        self.n_items = train.n_items
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        return np.zeros((len(histories), self.n_items), dtype=np.float32)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return taste_groups()


@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_full_ranks_match_single_case_ranks(data: Dataset, batch_size: int | None) -> None:
    cases = full_cases(data)
    model = SeededScores().fit(cases.train)
    ranks = rank_cases(model, cases, batch_size=batch_size)
    for row, user in enumerate(cases.users.tolist()):
        history = cases.train.history(user)
        scores = model.score([history])[0]
        expected = rank_of_target(scores, int(cases.targets[row]), history.items)
        assert ranks[row] == expected


def test_sampled_ranks_order_only_the_candidates(data: Dataset) -> None:
    cases = macrec_cases(data, seed=3)
    assert cases.candidates is not None
    model = SeededScores().fit(cases.train)
    ranks = rank_cases(model, cases, batch_size=5)
    for row, user in enumerate(cases.users.tolist()):
        scores = model.score([cases.train.history(user)])[0]
        candidates = cases.candidates[row]
        masked = np.full(data.n_items, -np.inf)
        masked[candidates] = scores[candidates]
        assert ranks[row] == rank_of_target(masked, int(candidates[0]))
    assert ranks.max() <= 7


def test_ties_among_candidates_go_to_the_lower_item_index(data: Dataset) -> None:
    cases = macrec_cases(data, seed=3)
    assert cases.candidates is not None
    ranks = rank_cases(Constant().fit(cases.train), cases)
    expected = (cases.candidates[:, 1:] < cases.candidates[:, :1]).sum(axis=1)
    assert np.array_equal(ranks, expected)


def test_progress_is_reported_per_batch(data: Dataset) -> None:
    cases = full_cases(data)
    steps: list[int] = []
    rank_cases(Constant().fit(cases.train), cases, batch_size=50, advance=steps.append)
    assert sum(steps) == len(cases) and max(steps) == 50
    rate = rate_cases(data)
    steps.clear()
    predict_cases(GlobalMean().fit(rate.train), rate, batch_size=40, advance=steps.append)
    assert sum(steps) == len(rate)


def test_evaluate_reports_every_model(data: Dataset) -> None:
    seen: list[tuple[str, int]] = []

    def tracker(name: str, total: int) -> Callable[[int], None]:
        seen.append((name, total))
        return lambda n: None

    report = evaluate(data, "macrec", ["random", "pop"], seed=1, tracker=tracker)
    assert [r.name for r in report.results] == ["random", "pop"]
    assert seen == [("random", report.test_cases), ("pop", report.test_cases)]
    for result in report.results:
        assert list(result.metrics) == list(METRICS["macrec"])
        assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
        assert result.fit_seconds >= 0 and result.score_seconds >= 0
    # the data is built with popular items picked more often: popularity beats chance
    pop, rnd = report.results[1].metrics, report.results[0].metrics
    assert pop["NDCG@5"] > rnd["NDCG@5"]
    body = report.to_json()
    assert set(body) >= {"protocol", "dataset", "results", "seconds", "split", "seed"}
    assert body["dataset"]["test_cases"] == report.test_cases


def test_evaluate_is_reproducible(data: Dataset) -> None:
    first = evaluate(data, "macrec", ["random"], seed=9).results[0].metrics
    again = evaluate(data, "macrec", ["random"], seed=9).results[0].metrics
    assert first == again


def test_rate_protocol_uses_rating_models(data: Dataset) -> None:
    report = evaluate(data, "rate", ["mean", "pop"])
    assert [list(r.metrics) for r in report.results] == [["RMSE", "MAE"]] * 2
    with pytest.raises(ConfigError, match="unknown rating model 'ease2'"):
        evaluate(data, "rate", ["ease2"])


def test_model_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        check_models("macrec", ["pop", "nope"])
    with pytest.raises(ConfigError, match="named twice"):
        check_models("full", ["pop", "pop"])
    with pytest.raises(ConfigError, match="no models"):
        check_models("full", [])
    assert check_models("rate", ["mean", "default"]) == ["mean", "default"]
