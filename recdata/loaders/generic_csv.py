"""Generic delimited files with named columns.

The folder holds:
- `interactions.csv` or `interactions.tsv` (UTF-8, header row). `.tsv` files are
  tab-separated; for `.csv` the delimiter (comma, semicolon or tab) is guessed from the header.
- `items.csv`/`items.tsv` (optional): column `id`, optional column `title` (the id when
  absent), every other column an attribute; `|` separates several values in one cell and an
  empty cell means no value. Attributes go into the item text.
- `users.csv`/`users.tsv` (optional): column `id`, every other column an attribute.

`columns` names the interaction columns holding user, item and optionally rating and
timestamp, either in that order ("uid,sku" or "uid,sku,stars,ts") or by role
("user=uid,item=sku,timestamp=ts"). The default "user,item,rating,timestamp" treats rating and
timestamp as absent when the header has no such columns; explicitly named columns must exist.

Timestamps are integers or decimals in seconds since the epoch, with values of 1e11 and above
read as milliseconds, or ISO-8601 dates ("2024-03-01", midnight UTC) and datetimes
("2024-03-01T12:30:00", UTC unless an offset is given). Without a rating column every
interaction weighs 1.0; without a timestamp column the file's order is the time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError, DataError
from recdata.dataset import Dataset, Item, User
from recdata.loaders._files import (
    CsvTable,
    item_text,
    parse_rating,
    parse_timestamp,
    require_folder,
)

FORMAT = "csv"
EXPECTED = "interactions.csv or interactions.tsv (items.csv/.tsv and users.csv/.tsv optional)"
DEFAULT_COLUMNS = "user,item,rating,timestamp"
ROLES = ("user", "item", "rating", "timestamp")
VALUE_SEPARATOR = "|"

Row = tuple[str, str, float | None, int | None]


@dataclass(frozen=True)
class ColumnSpec:
    """Which header columns hold each role; `optional` roles may be missing from the header."""

    names: dict[str, str]
    optional: frozenset[str] = frozenset()


def parse_columns(spec: str | None) -> ColumnSpec:
    """Read a `columns` option; a ConfigError explains any malformed value."""
    if spec is None:
        return ColumnSpec(dict(zip(ROLES, ROLES, strict=True)), frozenset({"rating", "timestamp"}))
    parts = [p.strip() for p in spec.split(",")]
    hint = (
        f"columns {spec!r}: give user,item[,rating[,timestamp]] column names in that order "
        "or role=name pairs such as 'user=uid,item=sku,rating=stars,timestamp=ts'"
    )
    if any(not p for p in parts):
        raise ConfigError(f"{hint} (empty name)")
    named = [p for p in parts if "=" in p]
    if named and len(named) != len(parts):
        raise ConfigError(f"{hint} (do not mix the two forms)")
    names: dict[str, str] = {}
    if named:
        for part in parts:
            role, _, column = (s.strip() for s in part.partition("="))
            if role not in ROLES:
                raise ConfigError(f"{hint} (unknown role {role!r}; roles: {', '.join(ROLES)})")
            if role in names:
                raise ConfigError(f"{hint} (role {role!r} given twice)")
            if not column:
                raise ConfigError(f"{hint} (no column name for {role!r})")
            names[role] = column
        absent = [r for r in ("user", "item") if r not in names]
        if absent:
            raise ConfigError(f"{hint} (missing {' and '.join(absent)})")
    else:
        if not 2 <= len(parts) <= len(ROLES):
            raise ConfigError(f"{hint} (found {len(parts)} names)")
        names = dict(zip(ROLES, parts, strict=False))
    if len(set(names.values())) != len(names):
        raise ConfigError(f"{hint} (one column used for two roles)")
    return ColumnSpec(names)


def load(folder: Path, columns: str | None = None) -> Dataset:
    spec = parse_columns(columns)
    require_folder(folder, FORMAT, EXPECTED)
    interactions_path = _find(folder, "interactions")
    if interactions_path is None:
        raise DataError(
            folder / "interactions.csv",
            f"file not found (format {FORMAT!r} expects {EXPECTED} in {folder})",
        )
    items_path = _find(folder, "items")
    users_path = _find(folder, "users")
    items = read_items(items_path) if items_path else []
    users = read_users(users_path) if users_path else []
    interactions = read_interactions(interactions_path, spec)
    return Dataset.build(folder.name, items, interactions, users, source=str(interactions_path))


def _find(folder: Path, stem: str) -> Path | None:
    """`stem.csv` or `stem.tsv` in `folder`, None when neither exists."""
    present = [folder / f"{stem}{ext}" for ext in (".csv", ".tsv")]
    present = [p for p in present if p.is_file()]
    if len(present) > 1:
        raise DataError(folder, f"both {stem}.csv and {stem}.tsv exist; keep only one")
    return present[0] if present else None


def read_interactions(path: Path, spec: ColumnSpec) -> list[Row]:
    table = CsvTable(path)
    roles = {
        role: name
        for role, name in spec.names.items()
        if name in table.header or role not in spec.optional
    }
    absent = [name for name in roles.values() if name not in table.header]
    if absent:
        raise table.missing(absent)
    u_col, i_col = table.column(roles["user"]), table.column(roles["item"])
    r_col = table.column(roles["rating"]) if "rating" in roles else None
    t_col = table.column(roles["timestamp"]) if "timestamp" in roles else None

    rows: list[Row] = []
    append = rows.append
    for line, fields in table.rows():
        user, item = fields[u_col].strip(), fields[i_col].strip()
        if not user or not item:
            role = "user" if not user else "item"
            raise DataError(path, f"empty {role} id in column {roles[role]!r}", line)
        rating = parse_rating(path, fields[r_col], line) if r_col is not None else None
        timestamp = parse_timestamp(path, fields[t_col], line) if t_col is not None else None
        append((user, item, rating, timestamp))
    if not rows:
        raise DataError(path, "has a header but no interactions")
    return rows


def _attribute_columns(table: CsvTable, skip: set[str]) -> list[tuple[int, str]]:
    return [(i, name) for i, name in enumerate(table.header) if name not in skip and name]


def _check_unique(path: Path, seen: dict[str, int], key: str, line: int) -> None:
    if not key:
        raise DataError(path, "empty id", line)
    first = seen.setdefault(key, line)
    if first != line:
        raise DataError(path, f"id {key!r} appears twice (first on line {first})", line)


def read_items(path: Path) -> list[Item]:
    table = CsvTable(path)
    id_col = table.column("id")
    title_col = table.header.index("title") if "title" in table.header else None
    attribute_columns = _attribute_columns(table, {"id", "title"})
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line, fields in table.rows():
        item_id = fields[id_col].strip()
        _check_unique(path, seen, item_id, line)
        title = fields[title_col].strip() if title_col is not None else ""
        attributes: dict[str, tuple[str, ...]] = {}
        for col, name in attribute_columns:
            values = tuple(v.strip() for v in fields[col].split(VALUE_SEPARATOR) if v.strip())
            if values:
                attributes[name] = values
        title = title or item_id
        items.append(Item(item_id, title, attributes, item_text(title, attributes)))
    return items


def read_users(path: Path) -> list[User]:
    table = CsvTable(path)
    id_col = table.column("id")
    attribute_columns = _attribute_columns(table, {"id"})
    users: list[User] = []
    seen: dict[str, int] = {}
    for line, fields in table.rows():
        user_id = fields[id_col].strip()
        _check_unique(path, seen, user_id, line)
        attributes = {name: fields[col].strip() for col, name in attribute_columns}
        users.append(User(user_id, {k: v for k, v in attributes.items() if v}))
    return users
