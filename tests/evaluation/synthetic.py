"""Small synthetic datasets with real structure, shared by the evaluation and rating tests."""

from __future__ import annotations

import numpy as np

from recdata.dataset import Dataset, Item


def taste_groups(
    n_users: int = 120,
    n_items: int = 60,
    per_user: int = 20,
    seed: int = 7,
    with_ratings: bool = True,
) -> Dataset:
    """Users and items fall into two taste groups; users mostly pick, and rate higher, items
    of their own group, on top of user and item biases. Timestamps repeat, so ties occur."""
    rng = np.random.default_rng(seed)
    user_group = np.arange(n_users) % 2
    item_group = np.arange(n_items) % 2
    user_bias = rng.normal(0.0, 0.4, n_users)
    item_bias = rng.normal(0.0, 0.6, n_items)
    popularity = np.exp(rng.normal(0.0, 0.7, n_items))
    rows: list[tuple[str, str, float | None, int | None]] = []
    for u in range(n_users):
        weight = popularity * np.where(item_group == user_group[u], 4.0, 1.0)
        items = rng.choice(n_items, size=per_user, replace=False, p=weight / weight.sum())
        times = rng.integers(0, per_user // 2, size=per_user)
        for i, t in zip(items.tolist(), times.tolist(), strict=True):
            match = 1.0 if item_group[i] == user_group[u] else -1.0
            value = 3.2 + user_bias[u] + item_bias[i] + 0.8 * match + rng.normal(0.0, 0.3)
            rating = float(np.clip(np.rint(value), 1, 5)) if with_ratings else None
            rows.append((f"u{u}", f"i{i}", rating, int(t)))
    catalog = [Item(f"i{i}", f"Item {i}") for i in range(n_items)]
    return Dataset.build("taste-groups", catalog, rows)
