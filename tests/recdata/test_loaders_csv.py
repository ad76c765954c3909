"""The generic "csv" format: named columns, optional items and users files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import ConfigError, DataError
from recdata.loaders import load_dataset
from tests.recdata.data_files import assert_names, write


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


def test_default_columns_with_ratings_and_mixed_timestamp_forms(tmp_path: Path) -> None:
    write(
        tmp_path / "shop" / "interactions.csv",
        "user,item,rating,timestamp\n"
        "u1,i1,4,1700000000\n"
        "u1,i2,2.5,1700000000123\n"  # milliseconds
        "u2,i1,5,2024-03-01\n"
        "u2,i3,1,2024-03-01T12:30:00\n"
        "u3,i2,3,2024-03-01T12:30:00+02:00\n"
        "u3,i3,3,1700000000.9\n",
    )
    ds = load_dataset(tmp_path / "shop", "csv")
    assert ds.name == "shop"
    assert ds.user_ids == ["u1", "u2", "u3"]
    assert ds.item_ids == ["i1", "i2", "i3"]
    inter = ds.interactions
    assert inter.has_ratings and inter.has_timestamps
    assert inter.rating.tolist() == [4.0, 2.5, 5.0, 1.0, 3.0, 3.0]
    assert inter.timestamp.tolist() == [
        1_700_000_000,
        1_700_000_000,
        epoch(2024, 3, 1),
        epoch(2024, 3, 1, 12, 30),
        epoch(2024, 3, 1, 10, 30),
        1_700_000_000,
    ]


def test_default_columns_without_rating_and_timestamp(tmp_path: Path) -> None:
    write(tmp_path / "d" / "interactions.csv", "user,item,extra\na,x,1\nb,y,2\na,y,3\n")
    inter = load_dataset(tmp_path / "d", "csv").interactions
    assert not inter.has_ratings and not inter.has_timestamps
    assert inter.rating.tolist() == [1.0, 1.0, 1.0]
    assert inter.timestamp.tolist() == [0, 1, 2]  # file order


def test_positional_and_role_columns(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    write(folder / "interactions.tsv", "ts\tsku\tuid\tstars\n5\tx\ta\t3\n6\ty\tb\t4\n")
    positional = load_dataset(folder, "csv", columns="uid,sku,stars,ts")
    by_role = load_dataset(folder, "csv", columns="item=sku, user=uid, timestamp=ts, rating=stars")
    for ds in (positional, by_role):
        assert ds.user_ids == ["a", "b"] and ds.item_ids == ["x", "y"]
        assert ds.interactions.rating.tolist() == [3.0, 4.0]
        assert ds.interactions.timestamp.tolist() == [5, 6]
    implicit = load_dataset(folder, "csv", columns="uid,sku")
    assert not implicit.interactions.has_ratings
    timed = load_dataset(folder, "csv", columns="user=uid,item=sku,timestamp=ts")
    assert timed.interactions.has_timestamps and not timed.interactions.has_ratings


@pytest.mark.parametrize("delimiter", [";", "\t", ","])
def test_csv_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    rows = [["user", "item", "rating"], ["a", "Tea, green", "4"], ["b", "Coffee", "5"]]
    text = "".join(delimiter.join(f'"{v}"' if "," in v else v for v in r) + "\n" for r in rows)
    write(tmp_path / "d" / "interactions.csv", text)
    ds = load_dataset(tmp_path / "d", "csv")
    assert ds.item_ids == ["Tea, green", "Coffee"]
    assert ds.interactions.rating.tolist() == [4.0, 5.0]


def test_items_and_users_files(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    write(folder / "interactions.csv", "user,item\na,x\nb,z\n")
    write(
        folder / "items.tsv",
        "id\ttitle\tgenres\tbrand\nx\tExtra Tea\tDrink|Hot\tLeaf Co\ny\t\tFood\t\n",
    )
    write(folder / "users.csv", "id,age,city\na,30,Lyon\nc,,Oslo\n")
    ds = load_dataset(folder, "csv")
    assert ds.item_ids == ["x", "y", "z"]
    extra, plain, unknown = ds.items
    assert extra.title == "Extra Tea"
    assert extra.attributes == {"genres": ("Drink", "Hot"), "brand": ("Leaf Co",)}
    assert all(word in extra.text for word in ("Extra Tea", "Drink", "Hot", "Leaf Co"))
    assert plain.title == "y" and plain.attributes == {"genres": ("Food",)}
    assert unknown.title == "z" and not unknown.attributes
    assert ds.user_ids == ["a", "c", "b"]
    assert ds.users[0].attributes == {"age": "30", "city": "Lyon"}
    assert ds.users[1].attributes == {"city": "Oslo"}


def test_items_without_title_column(tmp_path: Path) -> None:
    write(tmp_path / "d" / "interactions.csv", "user,item\na,x\n")
    write(tmp_path / "d" / "items.csv", "id,color\nx,red|blue\n")
    (item,) = load_dataset(tmp_path / "d", "csv").items
    assert item.title == "x" and item.attributes == {"color": ("red", "blue")}


# --- errors -----------------------------------------------------------------------------


def test_missing_folder_and_missing_interactions_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "absent", "csv")
    assert_names(exc.value, tmp_path / "absent", None, "folder not found", "interactions.csv")

    write(tmp_path / "d" / "items.csv", "id\nx\n")
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "d", "csv")
    assert_names(
        exc.value, tmp_path / "d" / "interactions.csv", None, "file not found", "interactions.tsv"
    )


def test_both_csv_and_tsv_is_ambiguous(tmp_path: Path) -> None:
    write(tmp_path / "d" / "interactions.csv", "user,item\na,x\n")
    write(tmp_path / "d" / "interactions.tsv", "user\titem\na\tx\n")
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "d", "csv")
    assert_names(exc.value, tmp_path / "d", None, "both interactions.csv and interactions.tsv")


@pytest.mark.parametrize(
    ("text", "columns", "line", "words"),
    [
        ("", None, None, ("empty",)),
        ("user,item\n", None, None, ("header but no interactions",)),
        ("uid,sku\na,x\n", None, 1, ("missing columns 'user', 'item'", "found: 'uid', 'sku'")),
        ("uid,sku\na,x\n", "uid,sku,stars", 1, ("missing column 'stars'", "'uid', 'sku'")),
        ("user,item,rating\na,x,4\nb,y\n", None, 3, ("expected 3 fields", "found 2")),
        ("user,item,rating\na,x,4\nb,y,lots\n", None, 3, ("rating 'lots' is not a number",)),
        ("user,item,rating\na,x,nan\n", None, 2, ("not a finite number",)),
        ("user,item,timestamp\na,x,5\nb,y,yesterday\n", None, 3, ("timestamp 'yesterday'",)),
        ("user,item,timestamp\na,x,2024-13-45\n", None, 2, ("ISO-8601",)),
        ("user,item\na,x\n,y\n", None, 3, ("empty user id",)),
    ],
)
def test_malformed_interactions_name_file_and_line(
    tmp_path: Path, text: str, columns: str | None, line: int | None, words: tuple[str, ...]
) -> None:
    path = write(tmp_path / "d" / "interactions.csv", text)
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "d", "csv", columns=columns)
    assert_names(exc.value, path, line, *words)


def test_undecodable_interactions(tmp_path: Path) -> None:
    path = tmp_path / "d" / "interactions.csv"
    path.parent.mkdir()
    path.write_bytes(b"user,item\na,x\nb,\xff\xfe\n")
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "d", "csv")
    assert_names(exc.value, path, 3, "undecodable bytes", "ff")


@pytest.mark.parametrize(
    ("name", "text", "line", "words"),
    [
        ("items.csv", "sku,title\nx,X\n", 1, ("missing column 'id'", "'sku', 'title'")),
        ("items.csv", "id,title\nx,X\nx,Y\n", 3, ("'x' appears twice", "line 2")),
        ("items.csv", "id,title\nx,X,extra\n", 2, ("expected 2 fields",)),
        ("users.csv", "id,age\na,3\n,4\n", 3, ("empty id",)),
        ("users.csv", "", None, ("empty",)),
    ],
)
def test_malformed_items_and_users(
    tmp_path: Path, name: str, text: str, line: int | None, words: tuple[str, ...]
) -> None:
    write(tmp_path / "d" / "interactions.csv", "user,item\na,x\n")
    path = write(tmp_path / "d" / name, text)
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "d", "csv")
    assert_names(exc.value, path, line, *words)


@pytest.mark.parametrize(
    ("columns", "words"),
    [
        ("uid", "found 1 names"),
        ("a,b,c,d,e", "found 5 names"),
        ("a,,b", "empty name"),
        ("user=a,item", "do not mix"),
        ("user=a,colour=b", "unknown role 'colour'"),
        ("user=a,user=b,item=c", "given twice"),
        ("user=a,rating=r", "missing item"),
        ("user=a,item=", "no column name"),
        ("a,a", "two roles"),
    ],
)
def test_malformed_columns_option(tmp_path: Path, columns: str, words: str) -> None:
    write(tmp_path / "d" / "interactions.csv", "a,b\n1,2\n")
    with pytest.raises(ConfigError) as exc:
        load_dataset(tmp_path / "d", "csv", columns=columns)
    assert words in str(exc.value)
    assert repr(columns) in str(exc.value)
