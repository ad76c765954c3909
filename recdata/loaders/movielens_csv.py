"""MovieLens CSV releases ("latest", "latest-small", 20M, 25M, 32M) and the 1M/10M `.dat` layout.

CSV layout (UTF-8, header row, standard CSV quoting):
- `ratings.csv`: `userId,movieId,rating,timestamp` (unix seconds).
- `movies.csv`: `movieId,title,genres` with genres separated by `|`;
  "(no genres listed)" means none.
- `tags.csv` (optional): `userId,movieId,tag,timestamp`.

`.dat` layout, used when the folder has `ratings.dat` and no `ratings.csv` (MovieLens 1M and
10M; fields separated by "::", no header, UTF-8 or else latin-1):
- `ratings.dat`: `UserID::MovieID::Rating::Timestamp`.
- `movies.dat`: `MovieID::Title::Genres`.
- `users.dat` (optional, 1M only): `UserID::Gender::Age::Occupation::Zip-code`; age and
  occupation stay as the release's codes.
- `tags.dat` (optional, 10M only): `UserID::MovieID::Tag::Timestamp`.

Items get "genres", "year" (from the title's "(1995)") and, when tags exist, "tags": the
movie's distinct tags (compared case-insensitively), most frequent first, at most `MAX_TAGS`.
Genres and tags go into the item text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.errors import DataError
from recdata.dataset import Dataset, Item, User
from recdata.loaders._files import (
    CsvTable,
    item_text,
    parse_epoch_seconds,
    parse_rating,
    read_text,
    require_file,
    require_folder,
    split_lines,
    year_from_title,
)

FORMAT = "movielens-csv"
EXPECTED = (
    "ratings.csv and movies.csv (tags.csv optional), "
    "or ratings.dat and movies.dat (users.dat, tags.dat optional)"
)
MAX_TAGS = 20
NO_GENRES = "(no genres listed)"
_DAT_SEPARATOR = "::"
_DAT_ENCODING = "utf-8/latin-1"
_DAT_USER_FIELDS = ("gender", "age", "occupation", "zip_code")

Row = tuple[str, str, float | None, int | None]


def load(folder: Path) -> Dataset:
    require_folder(folder, FORMAT, EXPECTED)
    if not (folder / "ratings.csv").exists() and (folder / "ratings.dat").exists():
        return _load_dat(folder)
    ratings_path = require_file(folder, "ratings.csv", FORMAT, EXPECTED)
    movies_path = require_file(folder, "movies.csv", FORMAT, EXPECTED)
    tags_path = folder / "tags.csv"
    tags = read_tags_csv(tags_path) if tags_path.exists() else {}
    items = list(_items(read_movies_csv(movies_path), tags))
    interactions = read_ratings_csv(ratings_path)
    return Dataset.build(folder.name, items, interactions, source=str(ratings_path))


def _load_dat(folder: Path) -> Dataset:
    ratings_path = require_file(folder, "ratings.dat", FORMAT, EXPECTED)
    movies_path = require_file(folder, "movies.dat", FORMAT, EXPECTED)
    users_path, tags_path = folder / "users.dat", folder / "tags.dat"
    tags = read_tags_dat(tags_path) if tags_path.exists() else {}
    items = list(_items(read_movies_dat(movies_path), tags))
    users = read_users_dat(users_path) if users_path.exists() else []
    interactions = read_ratings_dat(ratings_path)
    return Dataset.build(folder.name, items, interactions, users, source=str(ratings_path))


def _items(
    movies: Iterable[tuple[str, str, tuple[str, ...]]], tags: dict[str, tuple[str, ...]]
) -> Iterator[Item]:
    for movie_id, title, genres in movies:
        attributes: dict[str, tuple[str, ...]] = {"genres": genres}
        year = year_from_title(title)
        if year is not None:
            attributes["year"] = (year,)
        movie_tags = tags.get(movie_id, ())
        if movie_tags:
            attributes["tags"] = movie_tags
        text = item_text(title, {"genres": genres, "tags": movie_tags})
        yield Item(movie_id, title or movie_id, attributes, text)


def _split_genres(value: str) -> tuple[str, ...]:
    value = value.strip()
    if not value or value == NO_GENRES:
        return ()
    return tuple(g.strip() for g in value.split("|") if g.strip())


class _UniqueIds:
    """Reports an id seen twice in one file, naming the line of its first appearance."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = path, what
        self.first_line: dict[str, int] = {}

    def check(self, value: str, line: int) -> None:
        first = self.first_line.setdefault(value, line)
        if first != line:
            raise DataError(
                self.path, f"{self.what} {value!r} appears twice (first on line {first})", line
            )


def read_movies_csv(path: Path) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    table = CsvTable(path, delimiter=",")
    columns = ("movieId", "title", "genres")
    absent = [c for c in columns if c not in table.header]
    if absent:
        raise table.missing(absent)
    id_col, title_col, genres_col = (table.column(c) for c in columns)
    unique = _UniqueIds(path, "movie id")
    for line, fields in table.rows():
        movie_id = fields[id_col].strip()
        unique.check(movie_id, line)
        yield movie_id, fields[title_col].strip(), _split_genres(fields[genres_col])


def read_ratings_csv(path: Path) -> list[Row]:
    table = CsvTable(path, delimiter=",")
    columns = ("userId", "movieId", "rating", "timestamp")
    absent = [c for c in columns if c not in table.header]
    if absent:
        raise table.missing(absent)
    u_col, i_col, r_col, t_col = (table.column(c) for c in columns)
    rows: list[Row] = []
    append = rows.append
    for line, fields in table.rows():
        try:
            append((fields[u_col], fields[i_col], float(fields[r_col]), int(fields[t_col])))
        except ValueError:
            parse_rating(path, fields[r_col], line)
            parse_epoch_seconds(path, fields[t_col], line)
            raise
    if not rows:
        raise DataError(path, "has a header but no ratings")
    return rows


def read_tags_csv(path: Path) -> dict[str, tuple[str, ...]]:
    table = CsvTable(path, delimiter=",")
    absent = [c for c in ("movieId", "tag") if c not in table.header]
    if absent:
        raise table.missing(absent)
    i_col, tag_col = table.column("movieId"), table.column("tag")
    return _rank_tags((fields[i_col].strip(), fields[tag_col]) for _, fields in table.rows())


def _rank_tags(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Per movie: distinct tags, most frequent first (ties: first seen), at most MAX_TAGS.

    Tags differing only in case count as one, spelled as first seen.
    """
    counts: dict[str, Counter[str]] = {}
    spelling: dict[tuple[str, str], str] = {}
    for movie_id, raw_tag in pairs:
        tag = " ".join(raw_tag.split())
        if not tag:
            continue
        key = tag.casefold()
        counts.setdefault(movie_id, Counter())[key] += 1
        spelling.setdefault((movie_id, key), tag)
    return {
        movie_id: tuple(spelling[movie_id, key] for key, _ in counter.most_common(MAX_TAGS))
        for movie_id, counter in counts.items()
    }


def _dat_lines(path: Path, n_fields: int) -> Iterator[tuple[int, list[str]]]:
    return split_lines(path, read_text(path, _DAT_ENCODING), _DAT_SEPARATOR, n_fields)


def read_movies_dat(path: Path) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    unique = _UniqueIds(path, "movie id")
    for line, (movie_id, title, genres) in _dat_lines(path, 3):
        movie_id = movie_id.strip()
        unique.check(movie_id, line)
        yield movie_id, title.strip(), _split_genres(genres)


def read_ratings_dat(path: Path) -> list[Row]:
    rows: list[Row] = []
    append = rows.append
    for line, (user, item, rating, timestamp) in _dat_lines(path, 4):
        try:
            append((user.strip(), item.strip(), float(rating), int(timestamp)))
        except ValueError:
            parse_rating(path, rating, line)
            parse_epoch_seconds(path, timestamp, line)
            raise
    return rows


def read_users_dat(path: Path) -> list[User]:
    users: list[User] = []
    unique = _UniqueIds(path, "user id")
    for line, fields in _dat_lines(path, 1 + len(_DAT_USER_FIELDS)):
        user_id = fields[0].strip()
        unique.check(user_id, line)
        values = (v.strip() for v in fields[1:])
        users.append(
            User(user_id, {k: v for k, v in zip(_DAT_USER_FIELDS, values, strict=True) if v})
        )
    return users


def read_tags_dat(path: Path) -> dict[str, tuple[str, ...]]:
    return _rank_tags((item.strip(), tag) for _, (_, item, tag, _) in _dat_lines(path, 4))
