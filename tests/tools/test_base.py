from __future__ import annotations

import numpy as np

from recdata.dataset import Dataset
from tools.base import History, TrainSet, histories_matrix, top_k


def _train() -> TrainSet:
    ds = Dataset.build(
        "t",
        [],
        [
            ("u", "a", 5.0, 30),
            ("u", "b", 3.0, 10),
            ("u", "a", 4.0, 40),
            ("v", "c", 2.0, 20),
            ("u", "c", 1.0, 10),
        ],
    )
    return TrainSet.from_interactions(ds.interactions, ds.n_users, ds.n_items)


def test_trainset_orders_histories_by_time_stably() -> None:
    train = _train()
    h = train.history(0)
    # b and c tie at t=10 and keep the file order (b first)
    assert h.items.tolist() == [1, 2, 0, 0]
    assert h.timestamps is not None and h.timestamps.tolist() == [10, 10, 30, 40]
    assert train.history(1).items.tolist() == [2]
    assert train.user_of_row.tolist() == [0, 0, 0, 0, 1]


def test_binary_matrix_collapses_repeats() -> None:
    m = _train().binary_matrix.toarray()
    assert m.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    assert _train().item_popularity.tolist() == [1.0, 1.0, 2.0]


def test_histories_matrix_matches_histories() -> None:
    m = histories_matrix([History.of([2, 0, 2]), History.of([])], 3).toarray()
    assert m.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_top_k_orders_breaks_ties_by_index_and_excludes() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.9])
    assert top_k(scores, 3).tolist() == [1, 4, 0]
    assert top_k(scores, 3, exclude=np.array([1])).tolist() == [4, 0, 2]
    assert top_k(scores, 10).tolist() == [1, 4, 0, 2, 3]
    assert top_k(np.array([1.0, 2.0]), 5, exclude=np.array([0, 1])).tolist() == []


def test_top_k_matches_a_full_sort_with_many_ties() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        scores = rng.integers(0, 4, size=n).astype(float)
        k = int(rng.integers(1, 70))
        expected = sorted(range(n), key=lambda i: (-scores[i], i))[:k]
        assert top_k(scores, k).tolist() == expected
