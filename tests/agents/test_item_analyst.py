"""The Item Analyst's batched evidence equals its plain per-item reading."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from agents import item_analyst
from agents.item_analyst import analyse_items
from agents.toolbox import Toolbox, get_toolbox
from tools.base import History


class _ExplainOnly:
    """The default model seen through `explain` alone (no `explain_many`)."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def explain(self, history: History, item: int) -> list[tuple[int, float, str]]:
        reasons: list[tuple[int, float, str]] = self._model.explain(history, item)
        return reasons


@pytest.fixture(scope="module")
def box() -> Toolbox:
    return get_toolbox("demo")


def _cases(box: Toolbox) -> list[tuple[History, list[str]]]:
    rng = np.random.default_rng(5)
    cases = []
    for user in rng.choice(box.dataset.n_users, 12, replace=False).tolist():
        history = box.history_of(box.dataset.users[user].user_id)
        scores = box.model.score([history])[0]
        top = np.argsort(-scores)[:10]
        anywhere = rng.choice(box.dataset.n_items, 10, replace=False)
        for picks in (top, anywhere):
            cases.append((history, box.item_ids(picks)))
    return cases


@pytest.mark.parametrize("limit", [item_analyst.EXPLAIN_LIMIT, 1, 2])
def test_batched_insights_equal_per_item_explain(
    box: Toolbox, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small limits force the full re-read for items whose first drivers are not enough
    monkeypatch.setattr(item_analyst, "EXPLAIN_LIMIT", limit)
    reference = dataclasses.replace(box, model=_ExplainOnly(box.model))  # type: ignore[arg-type]
    named = 0
    for history, ids in _cases(box):
        got = analyse_items(box, history, [*ids, "no-such-item"])
        assert got == analyse_items(reference, history, ids)
        named += sum(bool(i.similar_history_item_ids) for i in got)
    assert named, "some items must be explained by history items"


def test_popularity_percentile_is_the_stable_sort_position(box: Toolbox) -> None:
    popularity = box.catalog.popularity
    position = np.argsort(np.argsort(popularity, kind="stable"), kind="stable")
    expected = position / (len(popularity) - 1)
    items = list(range(len(popularity)))
    got = item_analyst._popularity_percentiles(popularity, items)
    np.testing.assert_array_equal(np.asarray(got), expected)
