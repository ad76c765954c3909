"""The evaluation protocols: the cases each one builds from a dataset, and its metrics.

Every protocol holds out each user's interactions in stable time order (ties keep the file's
order). The `test` split holds out the last interaction and trains on everything before it;
the `dev` split trains on everything but the last two and holds out the second-last, so
models are tuned on dev targets only.

- `macrec`: iterative 5-core, then leave-one-out; a case only where the held-out rating is
  >= 4 (when the data has ratings); the target is ranked among itself and 7 items the user
  never interacted with, drawn uniformly from the core's items with a seeded generator.
- `full`: leave-one-out; the target is ranked among every item not in the user's training
  history.
- `rate`: leave-one-out; the held-out ratings are predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.errors import ConfigError, DataError
from evaluation import metrics
from evaluation.splits import HoldOut, k_core, leave_last_out, sample_negatives
from recdata.dataset import Dataset, Interactions
from tools.base import TrainSet

Protocol = Literal["macrec", "full", "rate"]
Split = Literal["test", "dev"]
PROTOCOLS: tuple[Protocol, ...] = ("macrec", "full", "rate")
SPLITS: tuple[Split, ...] = ("test", "dev")
DEFAULT_SEED = 2024

METRICS: dict[Protocol, tuple[str, ...]] = {
    "macrec": ("HR@1", "HR@3", "HR@5", "NDCG@1", "NDCG@3", "NDCG@5"),
    "full": ("HR@10", "NDCG@10", "Recall@10", "MRR"),
    "rate": ("RMSE", "MAE"),
}


@dataclass(frozen=True)
class DataSummary:
    """Size of the interactions a protocol evaluates on (after any k-core)."""

    users: int
    items: int
    interactions: int

    @classmethod
    def of(cls, inter: Interactions) -> DataSummary:
        return cls(
            users=len(np.unique(inter.user)),
            items=len(np.unique(inter.item)),
            interactions=len(inter),
        )


@dataclass(frozen=True)
class RankingCases:
    """One case per row: rank `targets[c]` for `users[c]` from the user's training history.

    `candidates` (n_cases x (1 + negatives), target first) restricts the ranking to sampled
    items; None ranks the target among every item not in the user's training history.
    """

    train: TrainSet
    users: np.ndarray
    targets: np.ndarray
    candidates: np.ndarray | None
    summary: DataSummary

    def __len__(self) -> int:
        return int(self.users.shape[0])


@dataclass(frozen=True)
class RatingCases:
    """One case per row: predict `ratings[c]` of `users[c]` for `items[c]`."""

    train: TrainSet
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    summary: DataSummary

    def __len__(self) -> int:
        return int(self.users.shape[0])


def check_split(split: str) -> Split:
    for known in SPLITS:
        if split == known:
            return known
    raise ConfigError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")


def check_protocol(protocol: str, extra: Sequence[str] = ()) -> Protocol:
    """One of `PROTOCOLS`; the error names `extra` too (protocols run elsewhere: redial)."""
    for known in PROTOCOLS:
        if protocol == known:
            return known
    names = ", ".join((*PROTOCOLS, *extra))
    raise ConfigError(f"unknown protocol {protocol!r}; choose one of: {names}")


def hold_out(inter: Interactions, split: Split) -> HoldOut:
    """Leave-last-out for `test`; for `dev`, leave-last-out again on the test split's train."""
    test = leave_last_out(inter)
    return test if split == "test" else leave_last_out(test.train)


def _train_set(dataset: Dataset, held: HoldOut) -> TrainSet:
    return TrainSet.from_interactions(held.train, dataset.n_users, dataset.n_items)


def macrec_cases(
    dataset: Dataset,
    split: Split = "test",
    seed: int = DEFAULT_SEED,
    negatives: int = 7,
    core: int = 5,
    min_rating: float = 4.0,
) -> RankingCases:
    """Sampled-candidate ranking cases of the `macrec` protocol (see the module docstring)."""
    cored = k_core(dataset.interactions, core)
    held = hold_out(cored, split)
    keep = held.ratings >= min_rating if cored.has_ratings else np.ones(len(held.users), bool)
    users, targets = held.users[keep], held.targets[keep]
    rng = np.random.default_rng(seed)
    pool = np.unique(cored.item)
    try:
        sampled = sample_negatives(cored, users, dataset.n_items, negatives, rng, pool=pool)
    except ValueError as exc:
        raise DataError(dataset.name, f"cannot sample {negatives} negatives: {exc}") from None
    return RankingCases(
        train=_train_set(dataset, held),
        users=users,
        targets=targets,
        candidates=np.column_stack([targets, sampled]),
        summary=DataSummary.of(cored),
    )


def full_cases(dataset: Dataset, split: Split = "test") -> RankingCases:
    """Full-ranking cases of the `full` protocol (see the module docstring)."""
    held = hold_out(dataset.interactions, split)
    return RankingCases(
        train=_train_set(dataset, held),
        users=held.users,
        targets=held.targets,
        candidates=None,
        summary=DataSummary.of(dataset.interactions),
    )


def rate_cases(dataset: Dataset, split: Split = "test") -> RatingCases:
    """Rating-prediction cases of the `rate` protocol (see the module docstring)."""
    if not dataset.interactions.has_ratings:
        raise DataError(
            dataset.name, "the rate protocol needs explicit ratings; this data has none"
        )
    held = hold_out(dataset.interactions, split)
    return RatingCases(
        train=_train_set(dataset, held),
        users=held.users,
        items=held.targets,
        ratings=held.ratings,
        summary=DataSummary.of(dataset.interactions),
    )


def build_cases(
    dataset: Dataset, protocol: Protocol, split: Split = "test", seed: int = DEFAULT_SEED
) -> RankingCases | RatingCases:
    if protocol == "macrec":
        cases: RankingCases | RatingCases = macrec_cases(dataset, split, seed)
    elif protocol == "full":
        cases = full_cases(dataset, split)
    else:
        cases = rate_cases(dataset, split)
    if len(cases) == 0:
        raise DataError(dataset.name, f"no {split} cases for the {protocol} protocol")
    return cases


def ranking_metrics(protocol: Protocol, ranks: np.ndarray) -> dict[str, float]:
    """The protocol's metrics from the 0-based rank of each case's single target.

    With one relevant item per case, Recall@n equals HR@n and MRR is 1 / (rank + 1).
    """
    values: dict[str, float] = {}
    for name in METRICS[protocol]:
        kind, _, cutoff = name.partition("@")
        if kind in ("HR", "Recall"):
            values[name] = metrics.hit_rate(ranks, int(cutoff))
        elif kind == "NDCG":
            values[name] = metrics.mean_ndcg(ranks, int(cutoff))
        elif kind == "MRR":
            values[name] = metrics.mean_reciprocal_rank(ranks)
        else:
            raise ValueError(f"{name} is not a ranking metric")
    return values


def rating_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    return {"RMSE": metrics.rmse(predicted, actual), "MAE": metrics.mae(predicted, actual)}
