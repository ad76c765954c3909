from __future__ import annotations

import pytest

from app.cli import main
from app.demo import recommend_for
from recdata.dataset import Dataset
from recdata.demo import DEMO_USER_ID, load_demo
from tools import registry
from tools.base import Recommender, TrainSet


@pytest.fixture(scope="module")
def fitted() -> tuple[Dataset, TrainSet, Recommender]:
    ds = load_demo()
    train = TrainSet.from_interactions(ds.interactions, ds.n_users, ds.n_items)
    return ds, train, registry.create("default").fit(train)


def test_picks_are_unseen_and_follow_genre_filters(
    fitted: tuple[Dataset, TrainSet, Recommender],
) -> None:
    ds, train, model = fitted
    history = train.history(ds.user_index[DEMO_USER_ID])
    picks = recommend_for(ds, model, history, 10, ["comedy"], ["Horror"])
    assert len(picks) == 10
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)
    for p in picks:
        assert p.item not in set(history.items.tolist())
        genres = ds.items[p.item].attributes["genres"]
        assert "Comedy" in genres and "Horror" not in genres


def test_demo_prints_the_user_and_ranked_titles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--count", "3"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"User {DEMO_USER_ID}" in out and "Top 3" in out
    ds = load_demo()
    assert any(it.title in out.split("Top 3")[1] for it in ds.items)


def test_demo_unknown_user_and_genre_are_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--user", "nobody"]) == 2
    assert "unknown user 'nobody'" in capsys.readouterr().err
    assert main(["demo", "--genre", "Polka"]) == 2
    assert "unknown genre(s) polka" in capsys.readouterr().err
