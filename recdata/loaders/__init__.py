"""Dataset loaders, one module per format, behind `load_dataset(path, format)`.

Formats:
- "movielens-100k": the `ml-100k` folder (`u.data`, `u.item`, `u.genre`, optional `u.user`).
- "movielens-csv": MovieLens CSV releases (`ratings.csv`, `movies.csv`, optional `tags.csv`)
  and the 1M/10M `.dat` layout (`ratings.dat`, `movies.dat`, optional `users.dat`/`tags.dat`).
- "csv": generic `interactions.csv`/`.tsv` with named columns, optional `items` and `users`.

Every malformed input raises `core.errors.DataError` naming the file, line and problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.errors import ConfigError
from recdata.dataset import Dataset
from recdata.loaders import generic_csv, movielens_100k, movielens_csv

_LOADERS: dict[str, Callable[[Path], Dataset]] = {
    movielens_100k.FORMAT: movielens_100k.load,
    movielens_csv.FORMAT: movielens_csv.load,
}

FORMATS: tuple[str, ...] = (movielens_100k.FORMAT, movielens_csv.FORMAT, generic_csv.FORMAT)

__all__ = ["FORMATS", "load_dataset"]


def load_dataset(path: str | Path, format: str, columns: str | None = None) -> Dataset:
    """Load the dataset in folder `path`, written in `format` (one of `FORMATS`).

    `columns` is only for the "csv" format: see `recdata.loaders.generic_csv`.
    """
    folder = Path(path).expanduser()
    if format == generic_csv.FORMAT:
        return generic_csv.load(folder, columns)
    loader = _LOADERS.get(format)
    if loader is None:
        raise ConfigError(f"unknown dataset format {format!r}; formats: {', '.join(FORMATS)}")
    if columns is not None:
        raise ConfigError(
            f"columns apply only to the {generic_csv.FORMAT!r} format, not to {format!r}"
        )
    return loader(folder)
