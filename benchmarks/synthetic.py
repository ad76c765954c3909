"""A deterministic synthetic catalog and interaction log for scale benchmarks.

Items have power-law (Zipf-like) popularity and belong to one of `n_clusters` taste
clusters; each cluster maps to a genre. Users have a primary and a secondary cluster and
heavy-tailed (log-normal) activity; each interaction comes from the primary cluster, the
secondary cluster or the whole catalog, drawn by popularity within that pool. Timestamps
increase within each user's history. The same spec always gives the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recdata.dataset import Dataset, Interactions, Item, User

_ADJECTIVES = [
    "silent",
    "crimson",
    "hidden",
    "golden",
    "broken",
    "distant",
    "electric",
    "frozen",
    "wild",
    "gentle",
    "last",
    "lost",
    "midnight",
    "quiet",
    "secret",
    "burning",
    "hollow",
    "iron",
    "paper",
    "glass",
    "velvet",
    "northern",
    "urban",
    "lunar",
]
_NOUNS = [
    "river",
    "empire",
    "garden",
    "machine",
    "harbor",
    "letter",
    "mirror",
    "forest",
    "kingdom",
    "signal",
    "orchard",
    "voyage",
    "station",
    "island",
    "engine",
    "theory",
    "canyon",
    "lantern",
    "archive",
    "summer",
    "winter",
    "city",
    "desert",
]
_GENRES = [
    "action",
    "adventure",
    "animation",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "fantasy",
    "horror",
    "musical",
    "mystery",
    "romance",
    "science-fiction",
    "thriller",
    "war",
    "western",
    "family",
    "history",
    "sport",
    "biography",
]


@dataclass(frozen=True)
class SyntheticSpec:
    n_items: int = 100_000
    n_interactions: int = 1_000_000
    n_users: int = 50_000
    n_clusters: int = 200
    popularity_exponent: float = 0.9
    primary_share: float = 0.6
    secondary_share: float = 0.25
    seed: int = 20190513


def synthetic_interactions(spec: SyntheticSpec) -> tuple[Interactions, np.ndarray]:
    """The interaction log (in user, time order) and each item's cluster."""
    if spec.n_interactions < spec.n_users:
        raise ValueError("need at least one interaction per user")
    rng = np.random.default_rng(spec.seed)
    n_items, n_users, n_clusters = spec.n_items, spec.n_users, spec.n_clusters

    popularity_rank = rng.permutation(n_items) + 1
    weight = popularity_rank.astype(np.float64) ** -spec.popularity_exponent
    cluster = rng.integers(n_clusters, size=n_items)

    # per-cluster cumulative distributions laid end to end: cluster c spans (c, c + 1]
    by_cluster = np.lexsort((np.arange(n_items), cluster))
    sorted_cluster = cluster[by_cluster]
    sorted_weight = weight[by_cluster]
    cluster_total = np.bincount(sorted_cluster, weights=sorted_weight, minlength=n_clusters)
    within = np.cumsum(sorted_weight)
    starts = np.searchsorted(sorted_cluster, np.arange(n_clusters))
    offsets = np.where(starts > 0, within[np.maximum(starts - 1, 0)], 0.0)
    cluster_cdf = sorted_cluster + (within - offsets[sorted_cluster]) / np.maximum(
        cluster_total[sorted_cluster], 1e-300
    )
    global_cdf = np.cumsum(weight) / weight.sum()

    activity = rng.lognormal(mean=0.0, sigma=1.2, size=n_users)
    lengths = 1 + rng.multinomial(spec.n_interactions - n_users, activity / activity.sum())
    user = np.repeat(np.arange(n_users), lengths)
    primary = rng.integers(n_clusters, size=n_users)
    secondary = rng.integers(n_clusters, size=n_users)

    n = spec.n_interactions
    pick = rng.random(n)
    u = rng.random(n)
    from_primary = pick < spec.primary_share
    from_secondary = ~from_primary & (pick < spec.primary_share + spec.secondary_share)
    from_catalog = ~(from_primary | from_secondary)
    chosen_cluster = np.where(from_primary, primary[user], secondary[user])
    item = np.empty(n, dtype=np.int64)
    clustered = ~from_catalog
    empty_cluster = cluster_total[chosen_cluster] == 0
    clustered &= ~empty_cluster
    from_catalog |= empty_cluster
    position = np.searchsorted(cluster_cdf, chosen_cluster[clustered] + u[clustered])
    item[clustered] = by_cluster[np.minimum(position, n_items - 1)]
    item[from_catalog] = np.minimum(np.searchsorted(global_cdf, u[from_catalog]), n_items - 1)

    start = rng.integers(1_500_000_000, 1_560_000_000, size=n_users)
    gaps = rng.exponential(3600.0 * 24, size=n).astype(np.int64) + 1
    first_of_user = np.zeros(n, dtype=bool)
    first_of_user[np.cumsum(lengths) - lengths] = True
    gaps[first_of_user] = 0
    cumulative = np.cumsum(gaps)
    user_base = cumulative[np.cumsum(lengths) - lengths]
    timestamp = start[user] + cumulative - user_base[user]

    inter = Interactions(
        user=user.astype(np.int32),
        item=item.astype(np.int32),
        rating=np.ones(n, dtype=np.float32),
        timestamp=timestamp.astype(np.int64),
        has_ratings=False,
        has_timestamps=True,
    )
    return inter, cluster


def synthetic_dataset(spec: SyntheticSpec) -> Dataset:
    """A `Dataset` with titled items (genre, decade attributes) and the synthetic log."""
    inter, cluster = synthetic_interactions(spec)
    rng = np.random.default_rng(spec.seed + 1)
    adjectives = rng.integers(len(_ADJECTIVES), size=spec.n_items)
    nouns = rng.integers(len(_NOUNS), size=spec.n_items)
    decades = rng.integers(1950, 2030, size=spec.n_items) // 10 * 10
    second_genre = rng.integers(len(_GENRES), size=spec.n_items)
    items = []
    for i in range(spec.n_items):
        genres = (_GENRES[cluster[i] % len(_GENRES)], _GENRES[second_genre[i]])
        items.append(
            Item(
                item_id=f"item{i}",
                title=f"The {_ADJECTIVES[adjectives[i]]} {_NOUNS[nouns[i]]} {i}",
                attributes={
                    "genres": tuple(dict.fromkeys(genres)),
                    "decade": (f"{decades[i]}s",),
                },
            )
        )
    users = [User(f"user{u}") for u in range(spec.n_users)]
    return Dataset("synthetic", items, users, inter)
