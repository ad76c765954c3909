"""Candidate generation: hard filters, fallback, and blending."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from recdata.dataset import Dataset, Item
from tools.base import History
from tools.candidates import (
    CandidateFilters,
    blend_scores,
    catalog_index,
    generate_candidates,
    hybrid_candidates,
    normalise_scores,
)

GENRES = ("Comedy", "Drama", "Horror", "Action")
DECADES = ("1980s", "1990s", "2000s")


def make_dataset() -> Dataset:
    items = []
    for i in range(24):
        genres = tuple(dict.fromkeys((GENRES[i % 4], GENRES[(i // 4) % 4])))
        items.append(Item(f"m{i}", f"Movie {i}", {"genres": genres, "decade": (DECADES[i % 3],)}))
    # popularity: item i is watched by (i % 7) distinct users, plus repeats that must not count
    rows = []
    for i in range(24):
        for u in range(i % 7):
            rows.append((f"u{u}", f"m{i}", None, None))
    rows += [("u0", "m1", None, None)] * 5
    return Dataset.build("tiny", items, rows)


DATASET = make_dataset()


def passes(item: Item, filters: CandidateFilters, history: History) -> bool:
    """The filter semantics, spelled out item by item."""
    index = DATASET.item_index[item.item_id]
    if filters.exclude_seen and index in set(history.items.tolist()):
        return False
    if item.item_id in filters.exclude_item_ids:
        return False
    for attribute, values in filters.include.items():
        have = {v.casefold() for v in item.attributes.get(attribute, ())}
        if not have & {v.casefold() for v in values}:
            return False
    for attribute, values in filters.exclude.items():
        have = {v.casefold() for v in item.attributes.get(attribute, ())}
        if have & {v.casefold() for v in values}:
            return False
    return True


FILTER_CASES = [
    CandidateFilters(),
    CandidateFilters(exclude_seen=False),
    CandidateFilters(include={"genres": ["Comedy"]}),
    CandidateFilters(include={"genres": ["comedy", "HORROR"]}),
    CandidateFilters(include={"genres": ["Drama"], "decade": ["1990s", "2000s"]}),
    CandidateFilters(exclude={"genres": ["Action"]}),
    CandidateFilters(exclude={"genres": ["Action"], "decade": ["1980s"]}),
    CandidateFilters(include={"genres": ["Comedy"]}, exclude={"genres": ["Drama"]}),
    CandidateFilters(exclude_item_ids=["m3", "m4", "not-in-catalog"]),
    CandidateFilters(include={"genres": ["Western"]}),
    CandidateFilters(include={"mood": ["dark"]}),
]


@pytest.mark.parametrize("filters", FILTER_CASES)
def test_candidates_are_exactly_the_best_items_passing_the_filters(
    filters: CandidateFilters,
) -> None:
    rng = np.random.default_rng(0)
    scores = rng.permutation(DATASET.n_items).astype(np.float64)
    history = History.of([0, 5, 6])
    expected = [i for i in np.argsort(-scores) if passes(DATASET.items[i], filters, history)]
    for k in (3, 100):
        got = generate_candidates(scores, DATASET, history, filters, k=k)
        assert [c.item_index for c in got] == expected[:k]
        for c in got:
            item = DATASET.items[c.item_index]
            assert (c.item_id, c.title, c.score) == (item.item_id, item.title, scores[c.item_index])
            assert c.source == "collaborative"


def test_fewer_allowed_items_than_k_returns_only_those() -> None:
    filters = CandidateFilters(include={"genres": ["Comedy"], "decade": ["1980s"]})
    allowed = [i for i, it in enumerate(DATASET.items) if passes(it, filters, History.of([]))]
    assert 0 < len(allowed) < 10
    got = generate_candidates(
        np.arange(DATASET.n_items, dtype=float), DATASET, History.of([1]), filters, k=10
    )
    assert sorted(c.item_index for c in got) == sorted(allowed)


def test_unscorable_items_never_become_candidates() -> None:
    scores = np.arange(DATASET.n_items, dtype=np.float64)
    scores[[23, 22]] = np.nan
    scores[21] = -np.inf
    got = generate_candidates(scores, DATASET, History.of([0]), k=DATASET.n_items)
    assert {21, 22, 23, 0}.isdisjoint(c.item_index for c in got)
    assert len(got) == DATASET.n_items - 4


def test_empty_history_falls_back_to_popularity_within_filters() -> None:
    filters = CandidateFilters(exclude={"genres": ["Horror"]})
    scores = np.random.default_rng(1).random(DATASET.n_items)
    got = generate_candidates(scores, DATASET, History.of([]), filters, k=5)
    assert {c.source for c in got} == {"fallback"}
    distinct_users = [i % 7 for i in range(DATASET.n_items)]  # by construction
    allowed = [i for i, it in enumerate(DATASET.items) if passes(it, filters, History.of([]))]
    expected = sorted(allowed, key=lambda i: (-distinct_users[i], i))[:5]
    assert [c.item_index for c in got] == expected
    assert [c.score for c in got] == [distinct_users[i] for i in expected]


def test_flat_scores_also_fall_back_and_missing_scores_too() -> None:
    history = History.of([2])
    flat = generate_candidates(np.zeros(DATASET.n_items), DATASET, history, k=4)
    none = generate_candidates(None, DATASET, history, k=4)
    assert [c.source for c in flat] == ["fallback"] * 4
    assert [c.item_index for c in flat] == [c.item_index for c in none]
    assert 2 not in [c.item_index for c in flat]


def test_ties_break_by_popularity_then_index() -> None:
    scores = np.zeros(DATASET.n_items)
    scores[[3, 10, 17, 20]] = 1.0  # popularity 3, 3, 3, 6
    got = generate_candidates(scores, DATASET, History.of([0]), k=4)
    assert [c.item_index for c in got] == [20, 3, 10, 17]


def test_scores_must_cover_the_catalog() -> None:
    with pytest.raises(ValueError, match="catalog"):
        generate_candidates(np.ones(3), DATASET, History.of([0]))


def test_filters_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        CandidateFilters.model_validate({"includes": {"genres": ["Comedy"]}})


def test_attribute_masks_are_cached_and_read_only() -> None:
    index = catalog_index(DATASET)
    assert catalog_index(DATASET) is index
    mask = index.mask("genres", "comedy")
    assert mask is index.mask("genres", "COMEDY")
    assert mask.tolist() == ["Comedy" in it.attributes["genres"] for it in DATASET.items]
    with pytest.raises(ValueError):
        mask[0] = not mask[0]


def test_normalise_and_blend() -> None:
    s = np.array([1.0, 3.0, 5.0, np.nan, -np.inf])
    n = normalise_scores(s)
    np.testing.assert_allclose(n[:3], [0.0, 0.5, 1.0])
    assert np.isnan(n[3]) and n[4] == -np.inf
    within = np.array([True, True, False, False, False])
    np.testing.assert_allclose(normalise_scores(s, within)[:3], [0.0, 1.0, 2.0])
    a, b = np.array([0.0, 10.0, 5.0]), np.array([1.0, 0.0, 3.0])
    np.testing.assert_allclose(blend_scores(a, b, 1.0, 0.5), [1 / 6, 1.0, 0.5 + 0.5])
    np.testing.assert_allclose(blend_scores(None, b, 1.0, 2.0), 2 * normalise_scores(b))
    with pytest.raises(ValueError):
        blend_scores(None, None)


def test_hybrid_weights_decide_the_order() -> None:
    collaborative = np.arange(DATASET.n_items, dtype=float)
    content = collaborative[::-1].copy()
    history = History.of([0])
    only_cf = hybrid_candidates(
        DATASET, history, k=3, collaborative=collaborative, content=content, content_weight=0.0
    )
    only_content = hybrid_candidates(
        DATASET, history, k=3, collaborative=collaborative, content=content, collaborative_weight=0
    )
    assert [c.item_index for c in only_cf] == [23, 22, 21]
    assert [c.item_index for c in only_content] == [1, 2, 3]  # 0 is seen
    assert {c.source for c in only_cf + only_content} == {"hybrid"}


def test_hybrid_with_a_query_and_no_history_uses_the_query() -> None:
    content = np.zeros(DATASET.n_items)
    content[[7, 9]] = [0.9, 0.4]
    got = hybrid_candidates(
        DATASET,
        History.of([]),
        CandidateFilters(exclude_item_ids=["m9"]),
        k=2,
        collaborative=np.ones(DATASET.n_items),
        content=content,
    )
    assert [c.source for c in got] == ["content", "content"]
    assert got[0].item_index == 7 and 9 not in [c.item_index for c in got]
    fallback = hybrid_candidates(DATASET, History.of([]), k=2)
    assert [c.source for c in fallback] == ["fallback", "fallback"]


def test_no_filter_combination_lets_an_excluded_item_through() -> None:
    history = History.of([4, 11])
    scores = np.random.default_rng(2).random(DATASET.n_items)
    for include, exclude in itertools.product(
        [{}, {"genres": ["Drama", "Action"]}, {"decade": ["2000s"]}],
        [{}, {"genres": ["Comedy"]}, {"decade": ["1990s"]}],
    ):
        filters = CandidateFilters(include=include, exclude=exclude, exclude_item_ids=["m2"])
        got = generate_candidates(scores, DATASET, history, filters, k=DATASET.n_items)
        allowed = {i for i, it in enumerate(DATASET.items) if passes(it, filters, history)}
        assert {c.item_index for c in got} == allowed


def test_unknown_attribute_values_select_nothing_and_are_not_cached() -> None:
    index = catalog_index(DATASET)
    before = len(index._masks)
    for n in range(50):
        assert not index.mask("genres", f"made-up-{n}").any()
    assert len(index._masks) == before
    got = generate_candidates(
        np.arange(DATASET.n_items, dtype=float),
        DATASET,
        History.of([0]),
        CandidateFilters(exclude={"genres": ["made-up"]}),
        k=3,
    )
    assert [c.item_index for c in got] == [23, 22, 21]
