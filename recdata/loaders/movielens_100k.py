"""MovieLens 100K: the `ml-100k` folder as GroupLens distributes it.

- `u.data`: tab-separated `user id, item id, rating, unix timestamp`, no header.
- `u.item` (latin-1): `id|title|release date|video release date|IMDb URL|` followed by one
  0/1 flag per genre, in the order of `u.genre`.
- `u.genre`: `name|flag index` per line.
- `u.user` (optional): `id|age|gender|occupation|zip code`.

Items get the attributes "genres" (names whose flag is 1, in `u.genre` order, the literal
"unknown" genre included) and "year" (from the title's "(1995)", else the release date).
MovieLens ids are kept as the item and user id strings.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import DataError
from recdata.dataset import Dataset, Item, User
from recdata.loaders._files import (
    item_text,
    parse_epoch_seconds,
    parse_rating,
    read_text,
    require_file,
    require_folder,
    split_lines,
    year_from_date,
    year_from_title,
)

FORMAT = "movielens-100k"
EXPECTED = "u.data, u.item and u.genre (u.user optional)"
_FIXED_ITEM_FIELDS = 5  # id, title, release date, video release date, IMDb URL
_USER_FIELDS = ("age", "gender", "occupation", "zip_code")


def load(folder: Path) -> Dataset:
    require_folder(folder, FORMAT, EXPECTED)
    ratings_path = require_file(folder, "u.data", FORMAT, EXPECTED)
    items_path = require_file(folder, "u.item", FORMAT, EXPECTED)
    genres_path = require_file(folder, "u.genre", FORMAT, EXPECTED)
    users_path = folder / "u.user"

    genres = read_genres(genres_path)
    items = read_items(items_path, genres)
    users = read_users(users_path) if users_path.exists() else []
    interactions = read_ratings(ratings_path)
    return Dataset.build(folder.name, items, interactions, users, source=str(ratings_path))


def read_genres(path: Path) -> list[str]:
    """Genre names by flag index; the indices must be 0..n-1, each once."""
    by_index: dict[int, tuple[str, int]] = {}
    for line, (name, index_text) in split_lines(path, read_text(path, "latin-1"), "|", 2):
        try:
            index = int(index_text)
        except ValueError:
            problem = f"genre index {index_text!r} is not a whole number"
            raise DataError(path, problem, line) from None
        if index in by_index:
            raise DataError(path, f"genre index {index} appears twice", line)
        by_index[index] = (name.strip(), line)
    if sorted(by_index) != list(range(len(by_index))):
        raise DataError(
            path, f"genre indices must run from 0 to {len(by_index) - 1}, found {sorted(by_index)}"
        )
    return [by_index[i][0] for i in range(len(by_index))]


def read_items(path: Path, genres: list[str]) -> list[Item]:
    items: list[Item] = []
    first_line: dict[str, int] = {}
    n_fields = _FIXED_ITEM_FIELDS + len(genres)
    for line, fields in split_lines(path, read_text(path, "latin-1"), "|", n_fields):
        item_id, title, release_date = fields[0].strip(), fields[1].strip(), fields[2].strip()
        if item_id in first_line:
            problem = f"item id {item_id!r} appears twice (first on line {first_line[item_id]})"
            raise DataError(path, problem, line)
        first_line[item_id] = line
        flags = fields[_FIXED_ITEM_FIELDS:]
        if any(flag not in ("0", "1") for flag in flags):
            raise DataError(path, f"genre flags must be 0 or 1, found {'|'.join(flags)}", line)
        attributes: dict[str, tuple[str, ...]] = {
            "genres": tuple(g for g, flag in zip(genres, flags, strict=True) if flag == "1")
        }
        year = year_from_title(title) or year_from_date(release_date)
        if year is not None:
            attributes["year"] = (year,)
        text = item_text(title, {"genres": attributes["genres"]})
        items.append(Item(item_id, title or item_id, attributes, text))
    return items


def read_users(path: Path) -> list[User]:
    users: list[User] = []
    seen: set[str] = set()
    text = read_text(path, "latin-1")
    for line, fields in split_lines(path, text, "|", 1 + len(_USER_FIELDS)):
        user_id = fields[0].strip()
        if user_id in seen:
            raise DataError(path, f"user id {user_id!r} appears twice", line)
        seen.add(user_id)
        values = (v.strip() for v in fields[1:])
        users.append(User(user_id, {k: v for k, v in zip(_USER_FIELDS, values, strict=True) if v}))
    return users


def read_ratings(path: Path) -> list[tuple[str, str, float | None, int | None]]:
    rows: list[tuple[str, str, float | None, int | None]] = []
    append = rows.append
    lines = split_lines(path, read_text(path, "latin-1"), None, 4)
    for line, (user, item, rating, timestamp) in lines:
        try:
            append((user, item, float(rating), int(timestamp)))
        except ValueError:
            # Slow path only for the error message.
            parse_rating(path, rating, line)
            parse_epoch_seconds(path, timestamp, line)
            raise
    return rows
