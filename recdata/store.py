"""Catalogs the service keeps in its data directory: `<data_dir>/catalogs/<name>/`.

A catalog is written by `agentrec ingest` (or `POST /v1/admin/ingest`) and by item upserts,
as plain files (no pickle): `items.jsonl`, `users.jsonl`, `interactions.npz` and
`meta.json`, and `dialogues.npz` when dialogues were ingested with it (plain numpy arrays
of `tools.dialogue_stats.DialogueStats.to_catalog_arrays`: what logged conversations say
about the catalog's items, with the item id of each row). Writes go to a temporary folder
that replaces the old one in one rename, so a reader never sees half a catalog; a write
without new dialogue arrays keeps the old ones (an upserted item does not lose them).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from core.errors import ConfigError, DataError
from recdata.dataset import Dataset, Interactions, Item, User

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
DIALOGUES_FILE: Final = "dialogues.npz"
KEEP: Final = "keep"
"""`save_catalog(..., dialogues=KEEP)`: keep the dialogue arrays the catalog has."""


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"bad catalog name {name!r}: use 1-63 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def catalog_dir(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "catalogs" / check_name(name)


def has_catalog(data_dir: Path, name: str) -> bool:
    return (catalog_dir(data_dir, name) / "meta.json").is_file()


def save_catalog(
    dataset: Dataset,
    data_dir: Path,
    name: str,
    dialogues: Mapping[str, np.ndarray] | Literal["keep"] | None = KEEP,
) -> Path:
    """Write `dataset` as catalog `name` (replacing it atomically); returns its folder.
    `dialogues`: the dialogue arrays to save with it, None for none, `KEEP` (default) for
    those the catalog already has."""
    target = catalog_dir(data_dir, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        with (work / "items.jsonl").open("w", encoding="utf-8") as out:
            for item in dataset.items:
                row = {
                    "item_id": item.item_id,
                    "title": item.title,
                    "attributes": {k: list(v) for k, v in item.attributes.items()},
                    "text": item.text,
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        with (work / "users.jsonl").open("w", encoding="utf-8") as out:
            for user in dataset.users:
                out.write(
                    json.dumps({"user_id": user.user_id, "attributes": dict(user.attributes)})
                    + "\n"
                )
        inter = dataset.interactions
        np.savez(
            work / "interactions.npz",
            user=inter.user,
            item=inter.item,
            rating=inter.rating,
            timestamp=inter.timestamp,
        )
        meta = {
            "name": dataset.name,
            "n_items": dataset.n_items,
            "n_users": dataset.n_users,
            "n_interactions": len(inter),
            "has_ratings": inter.has_ratings,
            "has_timestamps": inter.has_timestamps,
        }
        if dialogues == KEEP:
            if (target / DIALOGUES_FILE).is_file():
                shutil.copyfile(target / DIALOGUES_FILE, work / DIALOGUES_FILE)
        elif dialogues is not None:
            np.savez(work / DIALOGUES_FILE, allow_pickle=False, **dialogues)
        (work / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        old = target.with_name(f".{name}-old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        work.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def load_catalog(data_dir: Path, name: str) -> Dataset:
    folder = catalog_dir(data_dir, name)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise ConfigError(
            f"no catalog {name!r} in {folder.parent}; create it with `agentrec ingest`"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        items = [
            Item(
                row["item_id"],
                row["title"],
                {k: tuple(v) for k, v in row["attributes"].items()},
                row.get("text", ""),
            )
            for row in _jsonl(folder / "items.jsonl")
        ]
        users = [User(row["user_id"], row["attributes"]) for row in _jsonl(folder / "users.jsonl")]
        with np.load(folder / "interactions.npz") as arrays:
            interactions = Interactions(
                user=arrays["user"],
                item=arrays["item"],
                rating=arrays["rating"],
                timestamp=arrays["timestamp"],
                has_ratings=bool(meta["has_ratings"]),
                has_timestamps=bool(meta["has_timestamps"]),
            )
    except (OSError, KeyError, ValueError) as error:
        raise DataError(folder, f"unreadable catalog: {error}") from error
    return Dataset(str(meta["name"]), items, users, interactions)


def load_catalog_dialogues(data_dir: Path, name: str) -> dict[str, np.ndarray] | None:
    """The dialogue arrays saved with catalog `name` (None: it has none)."""
    path = catalog_dir(data_dir, name) / DIALOGUES_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError) as error:
        raise DataError(path, f"unreadable dialogue statistics: {error}") from error


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def with_item(dataset: Dataset, item: Item) -> tuple[Dataset, bool]:
    """The dataset with `item` added or replacing the item of the same id; True if new."""
    index = dataset.item_index.get(item.item_id)
    items = list(dataset.items)
    if index is None:
        items.append(item)
    else:
        items[index] = item
    return Dataset(dataset.name, items, dataset.users, dataset.interactions), index is None
