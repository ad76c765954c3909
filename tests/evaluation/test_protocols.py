"""Case building per protocol and split, on small synthetic datasets."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError, DataError
from evaluation.protocols import (
    METRICS,
    build_cases,
    check_protocol,
    check_split,
    full_cases,
    macrec_cases,
    ranking_metrics,
    rate_cases,
)
from evaluation.splits import k_core
from recdata.dataset import Dataset, Item
from tests.evaluation.synthetic import taste_groups
from tools.base import TrainSet


def timeline(dataset: Dataset, user: int) -> list[tuple[int, float]]:
    """(item, rating) of the user's interactions in stable time order."""
    inter = dataset.interactions
    rows = np.flatnonzero(inter.user == user)
    rows = rows[np.argsort(inter.timestamp[rows], kind="stable")]
    return [(int(inter.item[r]), float(inter.rating[r])) for r in rows]


def train_items(train: TrainSet, user: int) -> list[int]:
    items: list[int] = train.history(user).items.tolist()
    return items


@pytest.fixture(scope="module")
def data() -> Dataset:
    return taste_groups()


def test_macrec_test_cases(data: Dataset) -> None:
    cases = macrec_cases(data, "test", seed=11)
    cored = k_core(data.interactions, 5)
    core_items = set(cored.item.tolist())
    assert len(cases) > 0
    assert cases.candidates is not None and cases.candidates.shape == (len(cases), 8)
    assert np.array_equal(cases.candidates[:, 0], cases.targets)
    case_users = set(cases.users.tolist())
    for user in np.unique(cored.user).tolist():
        events = timeline(data.with_interactions(cored), user)
        last_rating = events[-1][1]
        # a case exactly where the held-out rating is >= 4
        assert (user in case_users) == (last_rating >= 4)
        # training = everything but the last interaction, oldest first
        assert train_items(cases.train, user) == [i for i, _ in events[:-1]]
    for row, user in enumerate(cases.users.tolist()):
        assert cases.targets[row] == timeline(data.with_interactions(cored), user)[-1][0]
        negatives = set(cases.candidates[row, 1:].tolist())
        assert len(negatives) == 7
        assert not negatives & {i for i, _ in timeline(data, user)}
        assert negatives <= core_items


def test_macrec_dev_cases_use_the_second_last_interaction(data: Dataset) -> None:
    cases = macrec_cases(data, "dev", seed=11)
    cored = data.with_interactions(k_core(data.interactions, 5))
    assert len(cases) > 0
    for row, user in enumerate(cases.users.tolist()):
        events = timeline(cored, user)
        assert cases.targets[row] == events[-2][0]
        assert events[-2][1] >= 4
        assert train_items(cases.train, user) == [i for i, _ in events[:-2]]
        assert cases.candidates is not None
        assert not set(cases.candidates[row, 1:].tolist()) & {i for i, _ in events}


def test_macrec_is_seeded(data: Dataset) -> None:
    a = macrec_cases(data, "test", seed=5)
    b = macrec_cases(data, "test", seed=5)
    c = macrec_cases(data, "test", seed=6)
    assert a.candidates is not None and b.candidates is not None and c.candidates is not None
    assert np.array_equal(a.candidates, b.candidates)
    assert not np.array_equal(a.candidates, c.candidates)


def test_macrec_without_ratings_keeps_every_user() -> None:
    data = taste_groups(with_ratings=False)
    cases = macrec_cases(data, "test")
    assert len(cases) == len(np.unique(k_core(data.interactions, 5).user))


def test_macrec_applies_the_5_core() -> None:
    # user "rare" has 3 interactions: dropped by the core, so never a case
    base = taste_groups(n_users=40, n_items=20, per_user=10)
    rows = [
        (base.user_ids[u], base.item_ids[i], float(r), int(t))
        for u, i, r, t in zip(
            base.interactions.user,
            base.interactions.item,
            base.interactions.rating,
            base.interactions.timestamp,
            strict=True,
        )
    ]
    rows += [("rare", base.item_ids[i], 5.0, 100 + i) for i in range(3)]
    data = Dataset.build("with-rare", base.items, rows)
    cases = macrec_cases(data)
    assert data.user_index["rare"] not in set(cases.users.tolist())
    assert cases.summary.users == 40


def test_full_cases(data: Dataset) -> None:
    for split, offset in (("test", 1), ("dev", 2)):
        cases = full_cases(data, split)  # type: ignore[arg-type]
        assert cases.candidates is None
        assert len(cases) == data.n_users
        for row, user in enumerate(cases.users.tolist()):
            events = timeline(data, user)
            assert cases.targets[row] == events[-offset][0]
            assert train_items(cases.train, user) == [i for i, _ in events[:-offset]]
    assert full_cases(data).summary.interactions == len(data.interactions)


def test_rate_cases(data: Dataset) -> None:
    cases = rate_cases(data, "test")
    for row, user in enumerate(cases.users.tolist()):
        assert (cases.items[row], cases.ratings[row]) == timeline(data, user)[-1]
    dev = rate_cases(data, "dev")
    for row, user in enumerate(dev.users.tolist()):
        assert (dev.items[row], dev.ratings[row]) == timeline(data, user)[-2]


def test_rate_needs_ratings() -> None:
    with pytest.raises(DataError, match="needs explicit ratings"):
        rate_cases(taste_groups(with_ratings=False))


def test_no_cases_is_a_data_error() -> None:
    rows = [(f"u{u}", f"i{i}", 5.0, i) for u in range(3) for i in range(3)]
    tiny = Dataset.build("tiny", [Item(f"i{i}", "") for i in range(3)], rows)
    with pytest.raises(DataError, match="no test cases for the macrec protocol"):
        build_cases(tiny, "macrec")


def test_names_are_checked() -> None:
    assert check_protocol("full") == "full"
    assert check_split("dev") == "dev"
    with pytest.raises(ConfigError, match="unknown protocol 'ful'"):
        check_protocol("ful")
    with pytest.raises(ConfigError, match="unknown split"):
        check_split("valid")


def test_ranking_metrics_names_and_values() -> None:
    ranks = np.array([0, 1, 4, 20])
    macrec = ranking_metrics("macrec", ranks)
    assert list(macrec) == list(METRICS["macrec"])
    assert macrec["HR@1"] == 0.25 and macrec["HR@5"] == 0.75
    full = ranking_metrics("full", ranks)
    assert list(full) == ["HR@10", "NDCG@10", "Recall@10", "MRR"]
    assert full["Recall@10"] == full["HR@10"] == 0.75
    assert full["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 21) / 4)
