from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics import ndcg_at, rank_of_target
from evaluation.splits import leave_last_out
from recdata.dataset import Interactions
from tools.base import History, TrainSet
from tools.default import DefaultRecommender, inner_split, sample_unseen
from tools.registry import create

N_ITEMS = 60


def _interactions(sequences: list[list[int]]) -> Interactions:
    users = np.concatenate([np.full(len(s), u) for u, s in enumerate(sequences)])
    items = np.concatenate([np.asarray(s) for s in sequences])
    # every user acts at a distinct time, one step per interaction
    stamps = np.concatenate([1000 * u + np.arange(len(s)) for u, s in enumerate(sequences)])
    return Interactions(
        user=users.astype(np.int32),
        item=items.astype(np.int32),
        rating=np.ones(users.shape[0], dtype=np.float32),
        timestamp=stamps.astype(np.int64),
    )


def _pair_sequences(n_users: int, seed: int) -> list[list[int]]:
    """Each user consumes random pairs (a, a + 1), a even: item a is always followed by a + 1."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_users):
        firsts = rng.choice(np.arange(0, N_ITEMS, 2), size=6, replace=False)
        out.append([int(x) for a in firsts for x in (a, a + 1)])
    return out


def _cluster_sequences(n_users: int, seed: int) -> list[list[int]]:
    """Users stay inside one of 6 item clusters and walk through it in order, with noise."""
    rng = np.random.default_rng(seed)
    size = N_ITEMS // 6
    out = []
    for _ in range(n_users):
        cluster = int(rng.integers(6))
        start = int(rng.integers(size))
        seq = []
        for step in range(8):
            if rng.random() < 0.15:
                seq.append(int(rng.integers(N_ITEMS)))
            else:
                seq.append(cluster * size + (start + step) % size)
        out.append(list(dict.fromkeys(seq)))
    return out


def _trainset(inter: Interactions) -> TrainSet:
    return TrainSet.from_interactions(inter, int(inter.user.max()) + 1, N_ITEMS)


def test_learns_an_obvious_sequential_pattern() -> None:
    train = _trainset(_interactions(_pair_sequences(150, seed=1)))
    model = DefaultRecommender().fit(train)
    hits = 0
    for a in range(0, N_ITEMS, 2):
        history = History(np.array([(a + 10) % N_ITEMS, (a + 11) % N_ITEMS, a]))
        best = model.recommend(history, k=1, exclude=history.items)[0][0]
        hits += best == a + 1
    assert hits == N_ITEMS // 2


def test_beats_popularity_on_structured_data() -> None:
    split = leave_last_out(_interactions(_cluster_sequences(300, seed=2)))
    train = _trainset(split.train)
    model = DefaultRecommender().fit(train)
    popularity = train.item_popularity.astype(np.float64)
    histories = train.histories(split.users)
    scores = model.score(histories)

    def mean_ndcg(score_rows: np.ndarray) -> float:
        return float(
            np.mean(
                [
                    ndcg_at(rank_of_target(row, int(t), h.items), 10)
                    for row, t, h in zip(score_rows, split.targets, histories, strict=True)
                ]
            )
        )

    ours = mean_ndcg(scores)
    pop = mean_ndcg(np.broadcast_to(popularity, scores.shape))
    assert ours > pop + 0.2


def test_tuning_sees_only_the_training_data() -> None:
    sequences = _cluster_sequences(200, seed=3)
    rng = np.random.default_rng(4)
    # two worlds that differ only in each user's last (held-out) item
    other = [[*s[:-1], int(rng.integers(N_ITEMS))] for s in sequences]
    trains = [leave_last_out(_interactions(s)).train for s in (sequences, other)]
    a = DefaultRecommender().fit(_trainset(trains[0]))
    b = DefaultRecommender().fit(_trainset(trains[1]))
    assert a.chosen_ == b.chosen_
    probe = [History(np.array([1, 2, 3])), History(np.array([40]))]
    np.testing.assert_array_equal(a.score(probe), b.score(probe))


def test_inner_split_holds_out_each_users_last_interactions() -> None:
    train = _trainset(_interactions([[1, 2, 3], [4], [5, 6], [7, 8, 9, 10]]))
    inner, users, rows = inner_split(train, holdout=2)
    assert users.tolist() == [0, 0, 3, 3]
    assert train.items[rows].tolist() == [2, 3, 9, 10]
    assert [inner.history(u).items.tolist() for u in range(4)] == [[1], [4], [5, 6], [7, 8]]
    inner, users, rows = inner_split(train, holdout=1)
    assert users.tolist() == [0, 2, 3]
    assert train.items[rows].tolist() == [3, 6, 10]


def test_fit_is_deterministic_and_leaves_train_untouched() -> None:
    train = _trainset(_interactions(_cluster_sequences(150, seed=5)))
    before = train.items.copy()
    first = DefaultRecommender().fit(train)
    second = DefaultRecommender().fit(train)
    np.testing.assert_array_equal(train.items, before)
    assert first.chosen_ == second.chosen_
    probe = train.histories(range(10))
    np.testing.assert_array_equal(first.score(probe), second.score(probe))


def test_empty_history_falls_back_on_popularity() -> None:
    train = _trainset(_interactions(_cluster_sequences(150, seed=6)))
    popularity = train.item_popularity
    tuned = DefaultRecommender().fit(train)
    scores = tuned.score([History.of([]), History.of([1, 2])])
    assert scores.shape == (2, N_ITEMS) and scores.dtype == np.float32
    assert np.isfinite(scores).all() and np.ptp(scores[0]) > 0
    # a blend without any history-free component still ranks by popularity
    history_only = DefaultRecommender(tune=False, weights={"cf": 1.0, "transition": 1.0})
    history_only.fit(train)
    ranked = [i for i, _ in history_only.recommend(History.of([]), k=N_ITEMS)]
    assert [popularity[i] for i in ranked] == sorted(popularity, reverse=True)


def test_switches_to_ials_above_the_size_threshold() -> None:
    train = _trainset(_interactions(_pair_sequences(150, seed=7)))
    sparse = DefaultRecommender(dense_max_items=N_ITEMS - 1).fit(train)
    dense = DefaultRecommender(dense_max_items=N_ITEMS).fit(train)
    assert sparse.chosen_["method"] == "ials"
    assert dense.chosen_["method"] == "ease"
    history = History(np.array([8, 9, 20]))
    assert sparse.recommend(history, k=1, exclude=history.items)[0][0] == 21


def test_explain_names_the_history_items_that_drove_a_score() -> None:
    train = _trainset(_interactions(_pair_sequences(150, seed=8)))
    model = DefaultRecommender().fit(train)
    history = History(np.array([30, 31, 12]), timestamps=np.array([5, 6, 7]))
    reasons = model.explain(history, 13)
    assert reasons, "the top recommendation must have an explanation"
    assert {item for item, _, _ in reasons} <= set(history.items.tolist())
    assert {kind for _, _, kind in reasons} <= {"similar", "recent", "transition", "sequence"}
    assert reasons[0][0] == 12 and reasons[0][1] > 0


def test_registered_as_default_and_exposes_its_choice() -> None:
    train = _trainset(_interactions(_pair_sequences(100, seed=9)))
    model = create("default").fit(train)
    assert isinstance(model, DefaultRecommender)
    assert set(model.chosen_) >= {"method", "weights", "variants"}
    assert sum(model.chosen_["weights"].values()) > 0
    assert "blend" in model.validation_


def test_scores_anonymous_histories_and_ignores_unknown_items() -> None:
    train = _trainset(_interactions(_pair_sequences(150, seed=10)))
    model = DefaultRecommender().fit(train)
    timed = History(np.array([4, 5, 16]), timestamps=np.array([1, 2, 3]))
    anonymous = History(np.array([4, 5, 16]))
    with_unknown = History(np.array([4, 5, N_ITEMS + 7, 16]))
    scores = model.score([timed, anonymous, with_unknown])
    assert np.isfinite(scores).all()
    for row in scores:
        assert int(np.argmax(np.where(np.isin(np.arange(N_ITEMS), [4, 5, 16]), -np.inf, row))) == 17


def test_sequential_component_is_tuned_on_small_catalogues() -> None:
    train = _trainset(_interactions(_pair_sequences(150, seed=11)))
    model = DefaultRecommender().fit(train)
    assert any(key.startswith("solo sequential") for key in model.validation_)
    sparse = DefaultRecommender(dense_max_items=10).fit(train)
    assert not any(key.startswith("solo sequential") for key in sparse.validation_)


def test_users_without_interactions_do_not_break_the_fit() -> None:
    """A catalog may list users who never interacted (here the last ones): the sequential
    states index each row's user start, which must not run past the rows."""
    inter = _interactions(_pair_sequences(150, seed=11))
    with_idle = TrainSet.from_interactions(inter, int(inter.user.max()) + 4, N_ITEMS)
    model = DefaultRecommender().fit(with_idle)
    assert any(key.startswith("solo sequential") for key in model.validation_)
    assert model.recommend(History.of([0]), k=1, exclude=np.array([0]))[0][0] == 1


def test_sampled_negatives_are_unseen_and_seeded() -> None:
    train = _trainset(_interactions(_cluster_sequences(50, seed=12)))
    users = np.arange(50)
    first = sample_unseen(train, users, 7, seed=3)
    assert first.shape == (50, 7)
    np.testing.assert_array_equal(first, sample_unseen(train, users, 7, seed=3))
    for u, row in zip(users, first, strict=True):
        assert len(set(row.tolist())) == 7
        assert not set(row.tolist()) & set(train.history(int(u)).items.tolist())


def test_explain_many_equals_explain_item_by_item() -> None:
    train = _trainset(_interactions(_cluster_sequences(120, seed=13)))
    for model in (
        DefaultRecommender().fit(train),
        DefaultRecommender(dense_max_items=10).fit(train),  # low-rank iALS matrices
    ):
        histories = [
            History(np.array([3, 4, 5, 41]), timestamps=np.array([10, 11, 11, 12])),
            History(np.array([22, 23])),
            History(np.zeros(0, dtype=np.int64)),
        ]
        items = [13, 5, 24, 59, 0, 13]
        for history in histories:
            batched = model.explain_many(history, items)
            assert batched == [model.explain(history, i) for i in items]
            assert model.explain_many(history, items, limit=2) == [e[:2] for e in batched]
        assert any(model.explain_many(histories[0], items)), "something must be explained"
        assert model.explain_many(histories[0], []) == []


def test_explain_many_rejects_items_outside_the_catalogue() -> None:
    model = DefaultRecommender().fit(_trainset(_interactions(_pair_sequences(60, seed=14))))
    with pytest.raises(ValueError, match="outside the catalogue"):
        model.explain_many(History(np.array([1, 2])), [3, N_ITEMS])


def test_one_history_queries_score_as_in_a_batch_and_do_not_leak_between_histories() -> None:
    train = _trainset(_interactions(_cluster_sequences(120, seed=15)))
    model = DefaultRecommender(tune=False).fit(train)  # its blend has time-aware trending
    first = History(np.array([3, 4, 5]), timestamps=np.array([10, 11, 12]))
    # same items later on: "now" moves, so the trending row must not be the remembered one
    later = History(np.array([3, 4, 5]), timestamps=np.array([60_000, 60_001, 60_002]))
    reordered = History(np.array([5, 4, 3]), timestamps=np.array([10, 11, 12]))
    histories = [first, later, reordered, History(np.array([40, 41]))]
    batch = model.score(histories)
    for _ in range(2):  # the second round reads the remembered rows
        for n, history in enumerate(histories):
            np.testing.assert_array_equal(model.score([history])[0], batch[n])
    assert not np.array_equal(batch[0], batch[1])
    assert not np.array_equal(batch[0], batch[2])
    sparse = DefaultRecommender(dense_max_items=10).fit(train)
    np.testing.assert_array_equal(sparse.score([first])[0], sparse.score(histories)[0])


def test_ials_factors_fit_with_single_threaded_blas_and_no_warning() -> None:
    """implicit warns (RuntimeWarning) when its ALS model is made while OpenBLAS runs a
    thread pool: the factors are made and fitted under a one-thread BLAS limit."""
    import warnings

    import scipy.sparse as sp

    from tools.default import ials_item_factors

    rng = np.random.default_rng(3)
    binary = sp.random(60, 40, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    binary.data[:] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        factors = ials_item_factors(binary, 8, 0.01, 1.0, 3, seed=1)
    assert factors.shape == (40, 8) and factors.dtype == np.float32
    assert np.isfinite(factors).all()
