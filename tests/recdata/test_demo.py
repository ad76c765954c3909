"""The bundled demo dataset: catalog integrity and the behaviour of the generated users."""

from __future__ import annotations

import csv
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError, DataError
from recdata.dataset import Dataset
from recdata.demo import (
    DEMO_USER_ID,
    FRANCHISES,
    GENRES,
    MAX_HISTORY,
    MIN_HISTORY,
    demo_items_path,
    load_demo,
    load_demo_items,
)
from recdata.loaders.generic_csv import read_items


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_demo()


def _catalog_rows() -> list[dict[str, str]]:
    with demo_items_path().open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, strict=True))


def _histories(ds: Dataset) -> dict[int, list[int]]:
    """Item indices per user, in time order."""
    inter = ds.interactions
    out: dict[int, list[int]] = {}
    for row in inter.time_order():
        out.setdefault(int(inter.user[row]), []).append(int(inter.item[row]))
    return out


def _users_with_persona(ds: Dataset, persona: str) -> np.ndarray:
    return np.array([u for u, user in enumerate(ds.users) if user.attributes["persona"] == persona])


def _genre_share(ds: Dataset, rows: np.ndarray, genre: str) -> float:
    items = ds.interactions.item[rows]
    return float(np.mean([genre in ds.items[i].attributes["genres"] for i in items]))


def test_same_seed_gives_equal_data_and_another_seed_differs() -> None:
    a, b, c = load_demo(40, seed=7), load_demo(40, seed=7), load_demo(40, seed=8)
    for name in ("user", "item", "rating", "timestamp"):
        assert np.array_equal(getattr(a.interactions, name), getattr(b.interactions, name))
    assert a.users == b.users
    assert len(a.interactions) != len(c.interactions) or not np.array_equal(
        a.interactions.item, c.interactions.item
    )


def test_sizes_and_ids(demo: Dataset) -> None:
    rows = _catalog_rows()
    assert demo.n_items == len(rows)
    assert demo.item_ids == [r["id"] for r in rows]
    assert demo.n_users == 300
    assert demo.user_ids[:3] == ["u001", "u002", "u003"]
    assert load_demo(12, seed=1).user_ids == [f"u{n:03d}" for n in range(1, 13)]
    lengths = np.bincount(demo.interactions.user, minlength=demo.n_users)
    assert lengths.min() >= MIN_HISTORY and lengths.max() <= MAX_HISTORY
    assert lengths.max() - lengths.min() >= 30, "history lengths should vary"


def test_every_interaction_refers_to_a_catalog_item_and_a_known_user(demo: Dataset) -> None:
    catalog_ids = {r["id"] for r in _catalog_rows()}
    inter = demo.interactions
    assert {demo.item_ids[i] for i in np.unique(inter.item)} <= catalog_ids
    assert set(np.unique(inter.user).tolist()) == set(range(demo.n_users))
    assert all("persona" in u.attributes for u in demo.users)


def test_a_user_never_sees_the_same_item_twice(demo: Dataset) -> None:
    pairs = demo.interactions.user.astype(np.int64) * demo.n_items + demo.interactions.item
    assert len(np.unique(pairs)) == len(pairs)


def test_catalog_has_unique_ids_and_titles_and_well_formed_rows() -> None:
    rows = _catalog_rows()
    assert 250 <= len(rows) <= 450
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["title"] for r in rows}) == len(rows)
    for r in rows:
        assert r["id"].endswith(f"-{r['year']}"), r["id"]
        assert r["description"].endswith("."), r["id"]
        assert r["director"].strip(), r["id"]


def test_every_genre_has_enough_items_and_all_decades_are_covered() -> None:
    items = load_demo_items()
    genres = Counter(g for it in items for g in it.attributes["genres"])
    assert set(genres) == set(GENRES)
    assert min(genres.values()) >= 8, genres
    decades = {it.attributes["decade"][0] for it in items}
    assert {f"{d}s" for d in range(1930, 2030, 10)} <= decades


def test_item_attributes_and_text() -> None:
    alien = next(it for it in load_demo_items() if it.item_id == "alien-1979")
    assert alien.title == "Alien"
    assert alien.attributes["genres"] == ("Horror", "Sci-Fi")
    assert alien.attributes["year"] == ("1979",)
    assert alien.attributes["decade"] == ("1970s",)
    assert alien.attributes["director"] == ("Ridley Scott",)
    row = next(r for r in _catalog_rows() if r["id"] == "alien-1979")
    assert alien.text == row["description"]
    matrix = next(it for it in load_demo_items() if it.item_id == "the-matrix-1999")
    assert len(matrix.attributes["director"]) == 2


def test_catalog_is_readable_by_the_generic_csv_loader() -> None:
    generic = read_items(demo_items_path())
    demo_items = load_demo_items()
    assert [it.item_id for it in generic] == [it.item_id for it in demo_items]
    assert [it.title for it in generic] == [it.title for it in demo_items]
    assert [it.attributes["genres"] for it in generic] == [
        it.attributes["genres"] for it in demo_items
    ]


def test_every_franchise_part_is_in_the_catalog() -> None:
    ids = {it.item_id for it in load_demo_items()}
    parts = [part for franchise in FRANCHISES for part in franchise]
    assert set(parts) <= ids
    assert len(parts) == len(set(parts)), "an item belongs to one franchise at most"


def test_ratings_are_whole_stars_and_spread(demo: Dataset) -> None:
    ratings = demo.interactions.rating
    assert demo.interactions.has_ratings and demo.interactions.has_timestamps
    assert set(np.unique(ratings).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.0 < float(ratings.mean()) < 4.2


def test_timestamps_increase_per_user_within_a_few_months(demo: Dataset) -> None:
    inter = demo.interactions
    for u in range(demo.n_users):
        times = inter.timestamp[inter.user == u]
        assert np.all(np.diff(times) > 0), demo.user_ids[u]
    span_days = (inter.timestamp.max() - inter.timestamp.min()) / 86_400
    assert 30 < span_days < 250
    assert inter.timestamp.min() > 1_600_000_000  # seconds since the epoch, not positions


def test_personas_behave_differently(demo: Dataset) -> None:
    inter = demo.interactions
    horror_fans = np.isin(inter.user, _users_with_persona(demo, "horror buff"))
    families = np.isin(inter.user, _users_with_persona(demo, "family & animation"))
    assert horror_fans.any() and families.any()
    assert _genre_share(demo, horror_fans, "Horror") > 0.5
    assert _genre_share(demo, horror_fans, "Horror") > 5 * _genre_share(demo, families, "Horror")
    assert _genre_share(demo, families, "Animation") > 4 * _genre_share(
        demo, horror_fans, "Animation"
    )
    classic = np.isin(inter.user, _users_with_persona(demo, "classic cinema lover"))
    years = np.array([int(demo.items[i].attributes["year"][0]) for i in inter.item])
    assert np.median(years[classic]) < np.median(years[~classic]) - 20


@pytest.mark.parametrize(
    ("persona", "genre"),
    [
        ("sci-fi fan", "Sci-Fi"),
        ("horror buff", "Horror"),
        ("family & animation", "Animation"),
        ("action blockbuster fan", "Action"),
        ("comedy lover", "Comedy"),
        ("romance & drama", "Romance"),
    ],
)
def test_high_ratings_concentrate_on_the_persona_genre(
    demo: Dataset, persona: str, genre: str
) -> None:
    inter = demo.interactions
    mine = np.isin(inter.user, _users_with_persona(demo, persona))
    liked, disliked = mine & (inter.rating >= 4), mine & (inter.rating <= 2)
    assert liked.sum() >= 20 and disliked.sum() >= 5
    assert _genre_share(demo, liked, genre) > _genre_share(demo, disliked, genre) + 0.25


def test_franchises_are_watched_in_order_and_often_back_to_back(demo: Dataset) -> None:
    index = demo.item_index
    in_order = back_to_back = pairs = 0
    for history in _histories(demo).values():
        position = {item: n for n, item in enumerate(history)}
        for franchise in FRANCHISES:
            for earlier, later in pairwise(franchise):
                a, b = index[earlier], index[later]
                if a in position and b in position:
                    pairs += 1
                    in_order += position[a] < position[b]
                    back_to_back += position[b] == position[a] + 1
    assert pairs >= 100
    assert in_order / pairs > 0.8  # chance would be one half
    assert back_to_back / pairs > 0.5


def test_demo_user_is_a_clear_sci_fi_fan_with_a_long_history(demo: Dataset) -> None:
    user = demo.user_index[DEMO_USER_ID]
    assert demo.users[user].attributes["persona"] == "sci-fi fan"
    rows = np.flatnonzero(demo.interactions.user == user)
    assert len(rows) >= 40
    shares = {g: _genre_share(demo, rows, g) for g in GENRES}
    assert max(shares, key=shares.__getitem__) == "Sci-Fi"
    assert DEMO_USER_ID in load_demo(5, seed=99).user_index


def test_at_least_one_user_is_required() -> None:
    with pytest.raises(ConfigError):
        load_demo(0)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('x-2000,"X",2000,Drama|Space Opera,Someone,"A film."', "Space Opera"),
        ('x-2000,"X",20x0,Drama,Someone,"A film."', "four-digit"),
        ('x-2000,"X",2000,Drama,Someone', "expected 6 fields"),
        ('x-2000,"X,2000,Drama,Someone,"A film."', "line 3"),
    ],
)
def test_malformed_catalog_rows_name_the_line(tmp_path: Path, row: str, problem: str) -> None:
    path = tmp_path / "items.csv"
    header = "id,title,year,genres,director,description"
    path.write_text(f'{header}\na-1999,"A",1999,Drama,Someone,"A film."\n{row}\n', "utf-8")
    with pytest.raises(DataError, match=problem) as error:
        load_demo_items(path)
    assert error.value.line == 3
