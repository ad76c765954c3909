"""Loaders for the MovieLens formats and the `load_dataset` dispatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError, DataError
from recdata.loaders import FORMATS, load_dataset
from recdata.loaders.movielens_csv import MAX_TAGS
from tests.recdata.data_files import FAKE_ITEMS, FAKE_RATINGS, assert_names, write, write_ml100k

# --- dispatch ---------------------------------------------------------------------------


def test_formats_are_listed_and_unknown_format_is_a_config_error(tmp_path: Path) -> None:
    assert set(FORMATS) == {"movielens-100k", "movielens-csv", "csv"}
    with pytest.raises(ConfigError) as exc:
        load_dataset(tmp_path, "parquet")
    for name in FORMATS:
        assert name in str(exc.value)
    assert "parquet" in str(exc.value)


def test_columns_are_refused_for_movielens_formats(tmp_path: Path) -> None:
    write_ml100k(tmp_path / "ml")
    with pytest.raises(ConfigError, match="only to the 'csv' format"):
        load_dataset(tmp_path / "ml", "movielens-100k", columns="a,b")


# --- movielens-100k on small written files ---------------------------------------------


def test_ml100k_reads_items_users_and_ratings(tmp_path: Path) -> None:
    folder = write_ml100k(tmp_path / "ml-100k")
    ds = load_dataset(folder, "movielens-100k")

    assert ds.name == "ml-100k"
    assert ds.item_ids == [iid for iid, *_ in FAKE_ITEMS]
    for item, (iid, title, _, genres) in zip(ds.items, FAKE_ITEMS, strict=True):
        assert (item.item_id, item.title, item.attributes["genres"]) == (iid, title, genres)
        assert title in item.text
        assert all(g in item.text for g in genres)
    assert ds.items[0].attributes["year"] == ("1995",)
    assert ds.items[1].attributes["year"] == ("1987",)  # no year in the title: release date
    assert "year" not in ds.items[3].attributes
    assert ds.items[2].title == "Misérables, Les (1995)"

    assert ds.user_ids[:2] == ["10", "11"]
    assert ds.users[1].attributes == {
        "age": "53",
        "gender": "F",
        "occupation": "other",
        "zip_code": "94043",
    }
    assert "12" in ds.user_index  # rated but absent from u.user

    inter = ds.interactions
    assert len(inter) == len(FAKE_RATINGS)
    assert inter.has_ratings and inter.has_timestamps
    for row, (u, i, r, t) in enumerate(FAKE_RATINGS):
        assert ds.user_ids[inter.user[row]] == u
        assert ds.item_ids[inter.item[row]] == i
        assert inter.rating[row] == r
        assert inter.timestamp[row] == t


def test_ml100k_without_u_user(tmp_path: Path) -> None:
    folder = write_ml100k(tmp_path / "ml", {"u.user": None})
    ds = load_dataset(folder, "movielens-100k")
    assert sorted(ds.user_ids) == ["10", "11", "12"]
    assert all(not u.attributes for u in ds.users)


def test_ml100k_missing_folder_lists_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "nowhere", "movielens-100k")
    assert_names(exc.value, tmp_path / "nowhere", None, "not found", "u.data", "u.item")


def test_ml100k_path_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "u.data", "1\t2\t3\t4\n")
    with pytest.raises(DataError) as exc:
        load_dataset(path, "movielens-100k")
    assert_names(exc.value, path, None, "not a folder", "u.data")


@pytest.mark.parametrize("name", ["u.data", "u.item", "u.genre"])
def test_ml100k_missing_file(tmp_path: Path, name: str) -> None:
    folder = write_ml100k(tmp_path / "ml", {name: None})
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-100k")
    assert_names(exc.value, folder / name, None, "file not found", "u.data, u.item and u.genre")


@pytest.mark.parametrize("name", ["u.data", "u.item", "u.genre", "u.user"])
def test_ml100k_empty_file(tmp_path: Path, name: str) -> None:
    folder = write_ml100k(tmp_path / "ml", {name: b""})
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-100k")
    assert_names(exc.value, folder / name, None, "empty")


@pytest.mark.parametrize(
    ("name", "content", "line", "words"),
    [
        ("u.data", b"1\t2\t3\t4\n5\t6\t7\n", 2, ("expected 4 fields, found 3",)),
        ("u.data", b"1\t2\t3\t4\n\n5\t6\tgood\t9\n", 3, ("rating 'good' is not a number",)),
        ("u.data", b"1\t2\t3\t4\n5\t6\t4\t12:30\n", 2, ("timestamp '12:30'",)),
        ("u.item", b"1|Only|Two\n", 1, ("expected 10 fields, found 3",)),
        ("u.item", b"1|A|||u|0|1|0|0|2\n", 1, ("genre flags must be 0 or 1",)),
        ("u.item", b"1|A|||u|0|1|0|0|0\n1|B|||u|0|1|0|0|0\n", 2, ("'1' appears twice", "line 1")),
        ("u.genre", b"Action|0\nDrama\n", 2, ("expected 2 fields",)),
        ("u.genre", b"Action|zero\n", 1, ("genre index 'zero'",)),
        ("u.user", b"1|24|M|tech\n", 1, ("expected 5 fields, found 4",)),
    ],
)
def test_ml100k_malformed_lines_name_file_and_line(
    tmp_path: Path, name: str, content: bytes, line: int, words: tuple[str, ...]
) -> None:
    overrides: dict[str, bytes | None] = {name: content}
    if name == "u.genre":
        overrides["u.item"] = b"1|A|||u|1\n"
    folder = write_ml100k(tmp_path / "ml", overrides)
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-100k")
    assert_names(exc.value, folder / name, line, *words)


# --- movielens-100k on the real files --------------------------------------------------


def test_ml100k_real_data(ml100k_path: Path) -> None:
    ds = load_dataset(ml100k_path, "movielens-100k")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    toy_story = ds.items[ds.item_index["1"]]
    assert toy_story.title == "Toy Story (1995)"
    assert toy_story.attributes["genres"] == ("Animation", "Children's", "Comedy")
    assert toy_story.attributes["year"] == ("1995",)
    assert ds.items[ds.item_index["543"]].title == "Misérables, Les (1995)"
    assert ds.users[ds.user_index["1"]].attributes["occupation"] == "technician"
    ratings = ds.interactions.rating
    assert set(np.unique(ratings).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert int(np.count_nonzero(ratings == 5)) == 21201
    assert len(ds.attribute_values("genres")) == 19


# --- movielens-csv ----------------------------------------------------------------------


def write_movielens_csv(folder: Path, tags: str | None = None) -> Path:
    write(
        folder / "movies.csv",
        "movieId,title,genres\n"
        '1,"American President, The (1995)",Comedy|Drama|Romance\n'
        '2,"Say ""Hello"" (2001)",(no genres listed)\n'
        "3,Untitled,Documentary\n",
    )
    write(
        folder / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,964982224\n",
    )
    if tags is not None:
        write(folder / "tags.csv", tags)
    return folder


def test_movielens_csv_quoting_genres_and_years(tmp_path: Path) -> None:
    ds = load_dataset(write_movielens_csv(tmp_path / "ml-latest-small"), "movielens-csv")
    assert ds.item_ids == ["1", "2", "3"]
    first, second, third = ds.items
    assert first.title == "American President, The (1995)"
    assert first.attributes["genres"] == ("Comedy", "Drama", "Romance")
    assert first.attributes["year"] == ("1995",)
    assert second.title == 'Say "Hello" (2001)'
    assert second.attributes["genres"] == ()
    assert "year" not in third.attributes
    assert "Romance" in first.text
    inter = ds.interactions
    assert inter.rating.tolist() == [4.0, 3.5, 5.0]
    assert inter.timestamp.tolist() == [964982703, 964981247, 964982224]
    assert [ds.user_ids[u] for u in inter.user] == ["1", "1", "2"]


def test_movielens_csv_tags_ranked_by_frequency(tmp_path: Path) -> None:
    lines = ["userId,movieId,tag,timestamp"]
    lines += ["1,1,politics,1", "2,1,Funny,2", "3,1,funny,3", "4,1,funny ,4", "5,1,politics,5"]
    lines += ['6,1,"witty, smart",6', "7,2,classic,7"]
    lines += [f"8,3,tag{n},8" for n in range(MAX_TAGS + 5)]
    ds = load_dataset(
        write_movielens_csv(tmp_path / "ml", "\n".join(lines) + "\n"), "movielens-csv"
    )
    first, second, third = ds.items
    assert first.attributes["tags"] == ("Funny", "politics", "witty, smart")
    assert second.attributes["tags"] == ("classic",)
    assert len(third.attributes["tags"]) == MAX_TAGS
    assert "politics" in first.text


def test_movielens_csv_missing_files_and_columns(tmp_path: Path) -> None:
    folder = write_movielens_csv(tmp_path / "ml")
    (folder / "movies.csv").unlink()
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-csv")
    assert_names(exc.value, folder / "movies.csv", None, "file not found", "ratings.csv")

    write(folder / "movies.csv", "movieId,name,genres\n1,A,Drama\n")
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-csv")
    assert_names(exc.value, folder / "movies.csv", 1, "missing column 'title'", "'name'")


@pytest.mark.parametrize(
    ("ratings", "line", "words"),
    [
        ("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,4.0\n", 3, ("found 3",)),
        ("userId,movieId,rating,timestamp\n1,1,four,964982703\n", 2, ("rating 'four'",)),
        ("userId,movieId,rating,timestamp\n\n1,1,4,2001-01-01\n", 3, ("timestamp '2001-01-01'",)),
        ("userId,movieId,timestamp\n1,1,964982703\n", 1, ("missing column 'rating'",)),
        ("userId,movieId,rating,timestamp\n", None, ("header but no ratings",)),
        ('userId,movieId,rating,timestamp\n1,"1,4,5\n', 2, ("malformed CSV", "end of data")),
        (
            'userId,movieId,rating,timestamp\n1,"1,4\n5,6",7\n',
            2,
            ("found 3", "to line 3", "closing quote missing"),
        ),
    ],
)
def test_movielens_csv_malformed_ratings(
    tmp_path: Path, ratings: str, line: int | None, words: tuple[str, ...]
) -> None:
    folder = write_movielens_csv(tmp_path / "ml")
    path = write(folder / "ratings.csv", ratings)
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-csv")
    assert_names(exc.value, path, line, *words)


def test_movielens_csv_undecodable_bytes(tmp_path: Path) -> None:
    folder = write_movielens_csv(tmp_path / "ml")
    path = folder / "movies.csv"
    path.write_bytes(b"movieId,title,genres\n1,Good,Drama\n2,Caf\xe9,Drama\n")
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-csv")
    assert_names(exc.value, path, 3, "undecodable", "e9")


def test_movielens_csv_empty_ratings(tmp_path: Path) -> None:
    folder = write_movielens_csv(tmp_path / "ml")
    path = write(folder / "ratings.csv", "\n")
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-csv")
    assert_names(exc.value, path, None, "empty")


def test_movielens_1m_dat_layout(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    write(
        folder / "movies.dat",
        "1::Toy Story (1995)::Animation|Children's\n2::Café (1999)::Drama\n",
        "latin-1",
    )
    write(folder / "ratings.dat", "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n")
    write(folder / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_dataset(folder, "movielens-csv")
    assert ds.item_ids == ["1", "2"]
    assert ds.items[0].attributes["genres"] == ("Animation", "Children's")
    assert ds.items[1].title == "Café (1999)"
    assert ds.users[1].attributes == {
        "gender": "M",
        "age": "56",
        "occupation": "16",
        "zip_code": "70072",
    }
    assert ds.interactions.rating.tolist() == [5.0, 3.0, 4.0]

    path = write(folder / "ratings.dat", "1::1::5::978300760\n1::2::3\n")
    with pytest.raises(DataError) as exc:
        load_dataset(folder, "movielens-csv")
    assert_names(exc.value, path, 2, "expected 4 fields, found 3")
