"""A toolbox fitted on a split knows nothing of the interactions held out of it."""

from __future__ import annotations

import numpy as np
import pytest

from agents.intent import IntentParser
from agents.item_analyst import analyse_items
from agents.toolbox import Toolbox
from evaluation.graph_model import GraphRecommender
from recdata.dataset import Dataset, Interactions
from recdata.demo import load_demo
from tools import registry
from tools.base import History, TrainSet

RARE_ITEMS = 6
"""How many of the least popular training items the held-out interactions pile onto."""


@pytest.fixture(scope="module")
def split() -> tuple[Dataset, Dataset, TrainSet]:
    """(whole, fitted-on, train): `whole` is the demo catalog plus held-out interactions of
    200 users with its least popular items, after everything they did; the model is fitted
    on the demo's own interactions (`fitted-on`), so with a leak the held-out rows would turn
    the rarest items into the most popular ones."""
    demo = load_demo()
    inter = demo.interactions
    train = TrainSet.from_interactions(inter, demo.n_users, demo.n_items)
    rare = np.argsort(train.item_popularity, kind="stable")[:RARE_ITEMS]
    users = np.repeat(np.arange(200), RARE_ITEMS)
    held_out = Interactions(
        user=users.astype(np.int32),
        item=np.tile(rare, 200).astype(np.int32),
        rating=np.full(users.shape[0], 5.0, dtype=np.float32),
        timestamp=np.full(users.shape[0], int(inter.timestamp.max()) + 1, dtype=np.int64),
    )
    whole = demo.with_interactions(
        Interactions(
            user=np.concatenate([inter.user, held_out.user]),
            item=np.concatenate([inter.item, held_out.item]),
            rating=np.concatenate([inter.rating, held_out.rating]),
            timestamp=np.concatenate([inter.timestamp, held_out.timestamp]),
        )
    )
    return whole, demo, train


def test_no_statistic_counts_a_held_out_interaction(
    split: tuple[Dataset, Dataset, TrainSet],
) -> None:
    whole, fitted_on, train = split
    model = registry.create("pop").fit(train)
    box = Toolbox.build(whole, model=model, train=train)
    reference = Toolbox.build(fitted_on, model=model, train=train)

    whole_popularity = np.bincount(whole.interactions.item, minlength=whole.n_items)
    assert not np.array_equal(whole_popularity, np.bincount(train.items, minlength=train.n_items))

    np.testing.assert_array_equal(box.catalog.popularity, train.item_popularity)
    assert box.dataset.item_ids == whole.item_ids  # the catalog stays whole
    assert len(box.dataset.interactions) == train.n_interactions
    np.testing.assert_array_equal(box.title_linker.popularity, reference.title_linker.popularity)
    for ours, theirs in zip(box.rating_stats, reference.rating_stats, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(
        IntentParser(box.dataset).lexicon.popularity,
        IntentParser(reference.dataset).lexicon.popularity,
    )
    history = train.history(3)
    candidates = box.item_ids(np.argsort(whole_popularity)[::-1][:12])
    assert analyse_items(box, history, candidates) == analyse_items(reference, history, candidates)


def test_the_graph_answers_as_if_the_held_out_interactions_never_happened(
    split: tuple[Dataset, Dataset, TrainSet],
) -> None:
    """Cold-start recommendations, a ranking without history and a chat request lean on
    popularity: they must be those of a graph that never saw the held-out rows."""
    whole, fitted_on, train = split
    evaluated = GraphRecommender(whole, count=10).fit(train)
    reference = GraphRecommender(fitted_on, count=10).fit(train)
    try:
        empty = History(np.zeros(0, dtype=np.int64))
        cold = evaluated._run({"task": "recommend", "count": 10})
        assert cold == reference._run({"task": "recommend", "count": 10})
        rare = set(whole.item_ids[i] for i in np.argsort(train.item_popularity)[:RARE_ITEMS])
        assert not rare & set(cold)
        given = np.argsort(train.item_popularity, kind="stable")[: RARE_ITEMS + 2][None, :]
        np.testing.assert_array_equal(
            evaluated.score_candidates([empty], given), reference.score_candidates([empty], given)
        )
        turns = [("user", "Something funny for tonight, please")]
        assert evaluated.chat(turns, 10) == reference.chat(turns, 10)
    finally:
        evaluated.close()
        reference.close()


def test_a_toolbox_fitted_on_all_of_its_dataset_keeps_that_dataset(
    split: tuple[Dataset, Dataset, TrainSet],
) -> None:
    """Artifacts and hot swaps find a catalog's models by its dataset: a toolbox trained on
    every interaction of the dataset holds that very dataset, not a copy."""
    _, fitted_on, train = split
    model = registry.create("pop").fit(train)
    assert Toolbox.build(fitted_on, model=model, train=train).dataset is fitted_on
    assert Toolbox.build(fitted_on, model=model).dataset is fitted_on
