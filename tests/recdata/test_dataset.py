from __future__ import annotations

import numpy as np
import pytest

from core.errors import DataError
from recdata.dataset import Dataset, Item, User


def test_build_maps_ids_and_adds_unknown_items_and_users() -> None:
    ds = Dataset.build(
        "t",
        items=[Item("a", "Alpha", {"genres": ("Drama",)}), Item("b", "Beta")],
        users=[User("u1", {"age": "30"})],
        interactions=[("u1", "b", 4.0, 10), ("u2", "c", 3.0, 5), ("u1", "a", 5.0, 10)],
    )
    assert ds.item_ids == ["a", "b", "c"]
    assert ds.items[2].title == "c"
    assert ds.user_ids == ["u1", "u2"]
    assert ds.users[0].attributes == {"age": "30"}
    assert ds.interactions.item.tolist() == [1, 2, 0]
    assert ds.interactions.user.tolist() == [0, 1, 0]
    assert ds.interactions.has_ratings and ds.interactions.has_timestamps
    assert ds.attribute_values("genres") == ["Drama"]


def test_missing_ratings_and_times_use_weight_one_and_file_order() -> None:
    ds = Dataset.build("t", [], [("u", "x", None, None), ("u", "y", None, None)])
    assert ds.interactions.rating.tolist() == [1.0, 1.0]
    assert ds.interactions.timestamp.tolist() == [0, 1]
    assert not ds.interactions.has_ratings and not ds.interactions.has_timestamps


def test_mixed_presence_of_ratings_is_an_error_naming_the_row() -> None:
    with pytest.raises(DataError, match="line 2"):
        Dataset.build("t", [], [("u", "x", 4.0, 1), ("u", "y", None, 2)], source="f.csv")


def test_duplicate_catalog_ids_are_an_error() -> None:
    with pytest.raises(DataError, match="appears twice"):
        Dataset.build("t", [Item("a", "A"), Item("a", "A2")], [])


def test_time_order_is_stable_for_ties() -> None:
    ds = Dataset.build(
        "t", [], [("u", "x", 1.0, 5), ("u", "y", 1.0, 3), ("u", "z", 1.0, 5), ("v", "x", 1.0, 1)]
    )
    order = ds.interactions.time_order()
    assert [ds.item_ids[ds.interactions.item[r]] for r in order] == ["y", "x", "z", "x"]
    assert np.array_equal(ds.interactions.user[order], [0, 0, 0, 1])
