"""k-core, leave-last-out and negative sampling."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.splits import k_core, leave_last_out, sample_negatives
from recdata.dataset import Interactions


def make(rows: list[tuple[int, int, float, int]]) -> Interactions:
    u, i, r, t = zip(*rows, strict=True) if rows else ((), (), (), ())
    return Interactions(
        user=np.asarray(u, dtype=np.int32),
        item=np.asarray(i, dtype=np.int32),
        rating=np.asarray(r, dtype=np.float32),
        timestamp=np.asarray(t, dtype=np.int64),
    )


def test_leave_last_out_holds_out_the_latest_and_keeps_file_order_among_ties() -> None:
    inter = make(
        [
            (0, 10, 5, 7),  # user 0: latest by time, though not last in the file
            (1, 20, 3, 4),
            (0, 11, 4, 3),
            (1, 21, 2, 4),  # user 1: three rows tie at t=4; the last one in the file wins
            (0, 12, 1, 3),
            (1, 22, 1, 4),
        ]
    )
    held = leave_last_out(inter)
    assert held.users.tolist() == [0, 1]
    assert held.targets.tolist() == [10, 22]
    assert held.ratings.tolist() == [5.0, 1.0]
    assert sorted(held.train.item.tolist()) == [11, 12, 20, 21]
    # the second-last: for user 0 the tie at t=3 keeps the file order (11 then 12)
    again = leave_last_out(held.train)
    assert again.targets.tolist() == [12, 21]


def test_leave_last_out_keeps_users_with_too_short_a_history_in_train() -> None:
    inter = make([(0, 1, 5, 1), (1, 2, 5, 1), (1, 3, 5, 2)])
    held = leave_last_out(inter)
    assert held.users.tolist() == [1]
    kept = zip(held.train.user.tolist(), held.train.item.tolist(), strict=True)
    assert sorted(kept) == [(0, 1), (1, 2)]


def test_k_core_iterates_until_stable() -> None:
    # chain 0-0, 0-1, 1-1, 1-2, 2-2 unravels over several rounds at k=2;
    # the 2x2 block of users 3,4 x items 3,4 survives
    chain = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)]
    block = [(3, 3), (3, 4), (4, 3), (4, 4)]
    inter = make([(u, i, 1.0, n) for n, (u, i) in enumerate(chain + block)])
    cored = k_core(inter, 2)
    assert sorted(zip(cored.user.tolist(), cored.item.tolist(), strict=True)) == block
    # one round alone would have kept part of the chain
    ucount = np.bincount(inter.user)
    icount = np.bincount(inter.item)
    one_round = (ucount[inter.user] >= 2) & (icount[inter.item] >= 2)
    assert one_round.sum() > len(block)


def test_k_core_result_satisfies_k_everywhere() -> None:
    rng = np.random.default_rng(3)
    rows = [(int(u), int(i), 1.0, n) for n, (u, i) in enumerate(rng.integers(0, 40, (400, 2)))]
    cored = k_core(make(rows), 5)
    assert len(cored) > 0
    assert np.bincount(cored.user)[np.unique(cored.user)].min() >= 5
    assert np.bincount(cored.item)[np.unique(cored.item)].min() >= 5


def _seen(inter: Interactions, user: int) -> set[int]:
    return set(inter.item[inter.user == user].tolist())


def test_negatives_are_unseen_distinct_and_seeded() -> None:
    rng = np.random.default_rng(1)
    rows = [(u, int(i), 1.0, 0) for u in range(30) for i in rng.choice(50, 20, replace=False)]
    inter = make(rows)
    users = np.arange(30)
    first = sample_negatives(inter, users, 50, 7, np.random.default_rng(2024))
    again = sample_negatives(inter, users, 50, 7, np.random.default_rng(2024))
    other = sample_negatives(inter, users, 50, 7, np.random.default_rng(2025))
    assert first.shape == (30, 7)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    for u in range(30):
        assert len(set(first[u].tolist())) == 7
        assert not set(first[u].tolist()) & _seen(inter, u)
        assert first[u].min() >= 0 and first[u].max() < 50


def test_negatives_come_from_the_pool_when_given() -> None:
    inter = make([(0, i, 1.0, i) for i in range(5)])
    pool = np.arange(3, 12)
    drawn = sample_negatives(inter, np.array([0]), 20, 6, np.random.default_rng(0), pool=pool)
    assert set(drawn[0].tolist()) <= set(range(5, 12))
    assert len(set(drawn[0].tolist())) == 6
    with pytest.raises(ValueError, match="fewer than 8 unseen"):
        sample_negatives(inter, np.array([0]), 20, 8, np.random.default_rng(0), pool=pool)


def test_negatives_cover_every_unseen_item_uniformly() -> None:
    inter = make([(0, 0, 1.0, 0), (0, 1, 1.0, 1)])
    users = np.zeros(3000, dtype=np.int64)
    drawn = sample_negatives(inter, users, 6, 1, np.random.default_rng(5))
    counts = np.bincount(drawn.ravel(), minlength=6)
    assert counts[:2].sum() == 0
    assert counts[2:].min() > 650  # 750 expected per unseen item
