"""Every metric against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics import (
    MRR,
    NDCG,
    Hit,
    Recall,
    hit_at,
    hit_rate,
    mae,
    mean_ndcg,
    mean_reciprocal_rank,
    ndcg_at,
    paired_difference,
    rank_of_target,
    ranks_of_targets,
    rmse,
)

RANKED = ["a", "b", "c", "d", "e"]


def test_hit_counts_a_relevant_item_only_within_the_cutoff() -> None:
    assert Hit(3)(RANKED, {"c"}) == 1.0
    assert Hit(2)(RANKED, {"c"}) == 0.0
    assert Hit(1)(RANKED, {"a", "z"}) == 1.0
    assert Hit(5)(RANKED, set()) == 0.0
    assert Hit(3).name == "HR@3"


def test_ndcg_single_relevant_item() -> None:
    # relevant at 0-based rank 2: DCG = 1/log2(4) = 0.5, ideal = 1
    assert NDCG(3)(RANKED, {"c"}) == pytest.approx(0.5)
    assert NDCG(2)(RANKED, {"c"}) == 0.0
    assert NDCG(1)(RANKED, {"a"}) == 1.0


def test_ndcg_several_relevant_items() -> None:
    # ranks 0 and 2: DCG = 1 + 1/2 = 1.5; ideal (2 relevant) = 1 + 1/log2(3) = 1.6309...
    assert NDCG(3)(RANKED, {"a", "c"}) == pytest.approx(0.9197207891481876)
    # rank 1 only within @2, three relevant: DCG = 1/log2(3); ideal @2 = 1 + 1/log2(3)
    assert NDCG(2)(RANKED, {"b", "d", "e"}) == pytest.approx(0.38685280723454163)
    # ranks 1 and 3 of three relevant @5: (1/log2(3) + 1/log2(5)) / (1 + 1/log2(3) + 1/2)
    value = (0.6309297535714575 + 0.43067655807339306) / (1 + 0.6309297535714575 + 0.5)
    assert NDCG(5)(RANKED, {"b", "d", "z"}) == pytest.approx(value)
    assert NDCG(5)(RANKED, {"a", "b", "c", "d", "e"}) == pytest.approx(1.0)
    assert NDCG(5)(RANKED, set()) == 0.0


def test_recall_is_the_share_of_relevant_items_retrieved() -> None:
    assert Recall(3)(RANKED, {"a", "d", "z"}) == pytest.approx(1 / 3)
    assert Recall(4)(RANKED, {"a", "d", "z"}) == pytest.approx(2 / 3)
    assert Recall(5)(RANKED, {"b"}) == 1.0
    assert Recall(5)(RANKED, set()) == 0.0


def test_mrr_uses_the_first_relevant_item() -> None:
    assert MRR()(RANKED, {"c", "e"}) == pytest.approx(1 / 3)
    assert MRR()(RANKED, {"a"}) == 1.0
    assert MRR()(RANKED, {"z"}) == 0.0


def test_rmse_and_mae() -> None:
    # errors -1, 0, -2
    assert rmse([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(1.2909944487358056)
    assert mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(1.0)
    assert rmse([4.0], [4.0]) == 0.0
    assert np.isnan(rmse([], [])) and np.isnan(mae([], []))


def test_single_target_helpers() -> None:
    assert hit_at(2, 3) == 1.0 and hit_at(3, 3) == 0.0
    assert ndcg_at(0, 1) == 1.0 and ndcg_at(2, 3) == pytest.approx(0.5)
    ranks = np.array([0, 2, 5])
    assert hit_rate(ranks, 3) == pytest.approx(2 / 3)
    assert mean_ndcg(ranks, 3) == pytest.approx((1 + 0.5 + 0) / 3)
    assert mean_ndcg(ranks, 10) == pytest.approx((1 + 0.5 + 1 / np.log2(7)) / 3)
    assert mean_reciprocal_rank(np.array([0, 1, 3])) == pytest.approx((1 + 0.5 + 0.25) / 3)


def test_rank_of_target_breaks_ties_by_lower_index() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5])
    assert rank_of_target(scores, 2) == 2  # item 1 scores higher, item 0 ties with a lower index
    assert rank_of_target(scores, 0) == 1
    assert rank_of_target(scores, 2, exclude=np.array([1, 2])) == 1  # the target is never excluded


def test_ranks_of_targets_matches_the_single_case_rank() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(40, 30)).astype(np.float32)  # many ties
    targets = rng.integers(0, 30, size=40)
    exclude = rng.random((40, 30)) < 0.3
    got = ranks_of_targets(scores, targets, exclude)
    for row in range(40):
        expected = rank_of_target(scores[row], int(targets[row]), np.flatnonzero(exclude[row]))
        assert got[row] == expected


def test_nan_scores_rank_last() -> None:
    scores = np.array([[np.nan, 0.2, 0.1], [0.3, np.nan, 0.1]])
    assert ranks_of_targets(scores, np.array([0, 2])).tolist() == [2, 1]


def test_paired_difference_is_the_mean_difference_and_its_standard_error() -> None:
    mean, se = paired_difference([1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0])
    # differences 1, 0, 0, 1: mean 0.5, sample sd sqrt(1/3), n = 4
    assert mean == pytest.approx(0.5)
    assert se == pytest.approx(np.sqrt(1 / 3) / 2)
    assert paired_difference([0.3, 0.7], [0.3, 0.7]) == (0.0, 0.0)
    assert np.isnan(paired_difference([1.0], [0.0])[1])
    assert all(np.isnan(paired_difference([], [])))
