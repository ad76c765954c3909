"""Rating predictors: they learn real structure, clip, and are looked up by name."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from evaluation.metrics import rmse
from evaluation.protocols import RatingCases, rate_cases
from tests.evaluation.synthetic import taste_groups
from tools.base import History, TrainSet
from tools.rating import PREDICTORS, BiasBaseline, EASERating, ItemKNNRating, create_predictor


@pytest.fixture(scope="module")
def cases() -> RatingCases:
    # several held-out ratings per user would need another split; many users give enough
    return rate_cases(taste_groups(n_users=400, n_items=60, per_user=20, seed=1))


def test_every_model_predicts_within_the_training_range(cases: RatingCases) -> None:
    histories = cases.train.histories(cases.users)
    for name in PREDICTORS:
        predicted = create_predictor(name).fit(cases.train).predict(histories, cases.items)
        assert predicted.shape == (len(cases),)
        assert predicted.min() >= cases.train.ratings.min()
        assert predicted.max() <= cases.train.ratings.max()


def test_models_beat_the_global_mean_and_the_baseline(cases: RatingCases) -> None:
    histories = cases.train.histories(cases.users)
    error = {
        name: rmse(
            create_predictor(name).fit(cases.train).predict(histories, cases.items), cases.ratings
        )
        for name in PREDICTORS
    }
    assert error["pop"] < error["mean"] < error["random"]
    # the taste groups are structure a bias model cannot see
    for name in ("itemknn", "ease", "default"):
        assert error[name] < error["pop"], error


def test_user_bias_comes_from_the_history_given() -> None:
    train = TrainSet.from_interactions(taste_groups(n_users=50).interactions, 50, 60)
    model = create_predictor("pop").fit(train)
    items = np.array([3, 4, 5])
    lover = History(items, ratings=np.array([5.0, 5.0, 5.0]))
    hater = History(items, ratings=np.array([1.0, 1.0, 1.0]))
    high, low = model.predict([lover, hater], [7, 7])
    assert high > low
    # a history without ratings gets no user bias
    unrated = model.predict([History(items)], [7])[0]
    assert low < unrated < high


def test_large_catalogs_make_ease_fall_back_to_item_knn(cases: RatingCases) -> None:
    histories = cases.train.histories(cases.users)
    small = EASERating(max_items=10).fit(cases.train).predict(histories, cases.items)
    knn = ItemKNNRating().fit(cases.train).predict(histories, cases.items)
    assert np.allclose(small, knn)


def test_random_is_seeded(cases: RatingCases) -> None:
    histories = cases.train.histories(cases.users)
    a = create_predictor("random", seed=3).fit(cases.train).predict(histories, cases.items)
    b = create_predictor("random", seed=3).fit(cases.train).predict(histories, cases.items)
    assert np.array_equal(a, b)


def test_lookup_and_argument_errors(cases: RatingCases) -> None:
    with pytest.raises(ConfigError, match="unknown rating model 'svd'"):
        create_predictor("svd")
    model = create_predictor("mean").fit(cases.train)
    with pytest.raises(ValueError, match="one item per history"):
        model.predict(cases.train.histories(cases.users[:2]), [1])


def test_a_half_life_makes_the_user_bias_follow_the_latest_ratings() -> None:
    train = TrainSet.from_interactions(taste_groups(n_users=50).interactions, 50, 60)
    items = np.array([1, 2, 3, 4, 5, 6])
    rising = History(items, ratings=np.array([1.0, 1.0, 1.0, 1.0, 5.0, 5.0]))
    falling = History(items, ratings=np.array([5.0, 5.0, 1.0, 1.0, 1.0, 1.0]))
    plain = create_predictor("pop").fit(train)
    assert plain.predict([rising], [9])[0] == pytest.approx(plain.predict([falling], [9])[0])
    recent = BiasBaseline(half_life=2.0).fit(train)
    assert recent.predict([rising], [9])[0] > recent.predict([falling], [9])[0]
