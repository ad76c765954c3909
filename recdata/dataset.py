"""The one in-memory dataset type: items, users and interactions with dense id maps.

Loaders (one module per format under `recdata.loaders`) build a `Dataset` with
`Dataset.build`, which maps string ids to dense integer indices. Interactions are kept as
parallel numpy arrays in file order so that a stable sort by timestamp keeps the file's
order among ties, as every evaluation protocol requires.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.errors import DataError

Attributes = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Item:
    """A catalog item. `attributes` maps a name (e.g. "genres") to one or more values."""

    item_id: str
    title: str
    attributes: Attributes = field(default_factory=dict)
    text: str = ""


@dataclass(frozen=True, slots=True)
class User:
    """A user with optional attributes (e.g. age, occupation)."""

    user_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Interactions:
    """Parallel arrays, one row per interaction, in the order they were read.

    `rating` holds the explicit rating (or weight); where the source has none it is 1.0 and
    `has_ratings` is False. `timestamp` holds seconds since the epoch; where the source has
    none it is the row's position and `has_timestamps` is False.
    """

    user: np.ndarray  # int32 user indices
    item: np.ndarray  # int32 item indices
    rating: np.ndarray  # float32
    timestamp: np.ndarray  # int64
    has_ratings: bool = True
    has_timestamps: bool = True

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def take(self, rows: np.ndarray) -> Interactions:
        """The interactions at `rows` (an index or boolean array), keeping their order."""
        return Interactions(
            user=self.user[rows],
            item=self.item[rows],
            rating=self.rating[rows],
            timestamp=self.timestamp[rows],
            has_ratings=self.has_ratings,
            has_timestamps=self.has_timestamps,
        )

    def time_order(self) -> np.ndarray:
        """Row order by (user, timestamp), stable: ties keep the order of the file."""
        return np.lexsort((self.timestamp, self.user))


class Dataset:
    """Items, users and interactions of one dataset, with string-id <-> index maps."""

    def __init__(
        self,
        name: str,
        items: Sequence[Item],
        users: Sequence[User],
        interactions: Interactions,
    ) -> None:
        self.name = name
        self.items: tuple[Item, ...] = tuple(items)
        self.users: tuple[User, ...] = tuple(users)
        self.interactions = interactions
        self.item_ids: list[str] = [it.item_id for it in self.items]
        self.user_ids: list[str] = [u.user_id for u in self.users]
        self.item_index: dict[str, int] = {iid: i for i, iid in enumerate(self.item_ids)}
        self.user_index: dict[str, int] = {uid: u for u, uid in enumerate(self.user_ids)}

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.users)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={len(self.interactions)})"
        )

    def with_interactions(self, interactions: Interactions) -> Dataset:
        """The same catalog and users with other interactions (e.g. a training split)."""
        return Dataset(self.name, self.items, self.users, interactions)

    @functools.cached_property
    def attribute_names(self) -> tuple[str, ...]:
        """Every attribute name the catalog's items use, sorted (computed once)."""
        return tuple(sorted({name for it in self.items for name in it.attributes}))

    def attribute_values(self, name: str) -> list[str]:
        """Every distinct value of attribute `name` across the catalog, sorted."""
        return sorted({v for it in self.items for v in it.attributes.get(name, ())})

    @classmethod
    def build(
        cls,
        name: str,
        items: Iterable[Item],
        interactions: Iterable[tuple[str, str, float | None, int | None]],
        users: Iterable[User] = (),
        *,
        source: str = "interactions",
    ) -> Dataset:
        """Build a dataset from string-keyed records.

        `interactions` yields `(user_id, item_id, rating_or_None, timestamp_or_None)`.
        Items or users that appear only in interactions are added with their id as title.
        Ratings and timestamps must be given for every row or for none.
        """
        item_list: list[Item] = []
        item_index: dict[str, int] = {}
        for it in items:
            if it.item_id in item_index:
                raise DataError(source, f"item id {it.item_id!r} appears twice in the catalog")
            item_index[it.item_id] = len(item_list)
            item_list.append(it)
        user_list: list[User] = []
        user_index: dict[str, int] = {}
        for u in users:
            if u.user_id not in user_index:
                user_index[u.user_id] = len(user_list)
                user_list.append(u)

        rows_u: list[int] = []
        rows_i: list[int] = []
        rows_r: list[float] = []
        rows_t: list[int] = []
        rating_seen: bool | None = None
        time_seen: bool | None = None
        for n, (uid, iid, rating, ts) in enumerate(interactions):
            ui = user_index.get(uid)
            if ui is None:
                ui = user_index[uid] = len(user_list)
                user_list.append(User(uid))
            ii = item_index.get(iid)
            if ii is None:
                ii = item_index[iid] = len(item_list)
                item_list.append(Item(iid, iid))
            has_r, has_t = rating is not None, ts is not None
            if rating_seen is None:
                rating_seen, time_seen = has_r, has_t
            elif has_r != rating_seen or has_t != time_seen:
                raise DataError(
                    source, "ratings and timestamps must be given on every row or on none", n + 1
                )
            rows_u.append(ui)
            rows_i.append(ii)
            rows_r.append(float(rating) if rating is not None else 1.0)
            rows_t.append(int(ts) if ts is not None else n)

        inter = Interactions(
            user=np.asarray(rows_u, dtype=np.int32),
            item=np.asarray(rows_i, dtype=np.int32),
            rating=np.asarray(rows_r, dtype=np.float32),
            timestamp=np.asarray(rows_t, dtype=np.int64),
            has_ratings=bool(rating_seen) if rating_seen is not None else False,
            has_timestamps=bool(time_seen) if time_seen is not None else False,
        )
        return cls(name, item_list, user_list, inter)
