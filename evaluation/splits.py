"""Splits as verbs. Every split orders a user's interactions by timestamp with a stable sort
(ties keep the file's order) and takes an explicit random generator where it samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdata.dataset import Interactions


def k_core(inter: Interactions, k: int = 5) -> Interactions:
    """Iteratively keep only users and items with at least `k` interactions.

    Repeats until every remaining user and item has `k` or more rows (the "iterative k-core").
    """
    keep = np.ones(len(inter), dtype=bool)
    while True:
        users, items = inter.user[keep], inter.item[keep]
        ucount = np.bincount(users, minlength=int(inter.user.max(initial=-1)) + 1)
        icount = np.bincount(items, minlength=int(inter.item.max(initial=-1)) + 1)
        ok = (ucount[inter.user] >= k) & (icount[inter.item] >= k) & keep
        if ok.sum() == keep.sum():
            return inter.take(np.flatnonzero(keep))
        keep = ok


@dataclass(frozen=True)
class HoldOut:
    """A leave-last-out split: `train` rows, and per held-out user the target row."""

    train: Interactions
    users: np.ndarray  # int user indices with a held-out interaction
    targets: np.ndarray  # int item index held out for each user
    ratings: np.ndarray  # float rating of each held-out interaction
    timestamps: np.ndarray  # int timestamp of each held-out interaction


def leave_last_out(inter: Interactions, min_history: int = 1) -> HoldOut:
    """Hold out each user's most recent interaction (stable time order).

    Users with fewer than `min_history + 1` interactions keep all rows in `train` and get no
    target.
    """
    order = inter.time_order()
    users = inter.user[order]
    # the last row of each user's block in time order
    is_last = np.ones(len(order), dtype=bool)
    is_last[:-1] = users[:-1] != users[1:]
    counts = np.bincount(users, minlength=int(users.max(initial=-1)) + 1)
    held = is_last & (counts[users] > min_history)
    held_rows = order[held]
    train_rows = np.sort(order[~held])
    return HoldOut(
        train=inter.take(train_rows),
        users=inter.user[held_rows].astype(np.int64),
        targets=inter.item[held_rows].astype(np.int64),
        ratings=inter.rating[held_rows].astype(np.float64),
        timestamps=inter.timestamp[held_rows].astype(np.int64),
    )


def sample_negatives(
    inter: Interactions,
    users: np.ndarray,
    n_items: int,
    n: int,
    rng: np.random.Generator,
    pool: np.ndarray | None = None,
) -> np.ndarray:
    """For each user, `n` distinct items drawn uniformly from those the user never touched.

    "Never touched" means absent from every interaction of the user in `inter` (pass the
    full data, not a training split). Items are drawn from `pool` (distinct item indices,
    e.g. the items left by a k-core) when given, else from all `n_items`. Returns an int
    array of shape (len(users), n).
    """
    seen: dict[int, set[int]] = {}
    for u, i in zip(inter.user.tolist(), inter.item.tolist(), strict=True):
        seen.setdefault(u, set()).add(i)
    drawable = np.arange(n_items) if pool is None else np.unique(np.asarray(pool, np.int64))
    drawable_set = set(drawable.tolist())
    out = np.empty((len(users), n), dtype=np.int64)
    for row, u in enumerate(users.tolist()):
        excluded = seen.get(u, set())
        n_unseen = len(drawable) - sum(1 for i in excluded if i in drawable_set)
        if n_unseen < n:
            raise ValueError(f"user index {u} has fewer than {n} unseen items to sample")
        chosen: list[int] = []
        taken: set[int] = set()
        while len(chosen) < n:
            cand = int(drawable[rng.integers(len(drawable))])
            if cand not in excluded and cand not in taken:
                taken.add(cand)
                chosen.append(cand)
        out[row] = chosen
    return out
