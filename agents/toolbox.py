"""The recommender tools the agents share for one catalog, built once and cached by name.

A `Toolbox` bundles the dataset, its training interactions, the fitted default model, the
content index and the catalog index used by filters. Graph runs name their catalog in the
run context (`Context.catalog`), so LangGraph Studio can switch it from its form; the
service and the evaluation register toolboxes they built themselves under their own names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from core.errors import ConfigError
from recdata.dataset import Dataset, Interactions
from tools.base import History, Recommender, TrainSet
from tools.candidates import CatalogIndex, catalog_index
from tools.dialogue_stats import DialogueStats
from tools.embeddings import ItemContentIndex
from tools.rating import RatingPredictor, create_predictor
from tools.titles import TitleLinker

if TYPE_CHECKING:
    from agents.conversation import ConversationReader


@dataclass
class Toolbox:
    """Everything the offline brains compute with, for one catalog."""

    dataset: Dataset
    train: TrainSet
    model: Recommender
    content: ItemContentIndex
    catalog: CatalogIndex
    artifact: str | None = None
    """The model artifact version this toolbox was loaded from (None: fitted in process)."""
    dialogues: DialogueStats | None = None
    """What logged conversations say (mentions, co-mentions), when the deployment has them:
    plain numpy arrays (`DialogueStats.to_arrays`)."""

    @classmethod
    def build(
        cls,
        dataset: Dataset,
        model: Recommender | None = None,
        train: TrainSet | None = None,
        dialogues: DialogueStats | None = None,
    ) -> Toolbox:
        """Fit the default model on `train` (all of `dataset` when not given) unless a fitted
        `model` is passed, and index the catalog; `dialogues`: statistics of logged
        conversations, if any.

        Everything the toolbox knows comes from `train`: when `train` holds other
        interactions than `dataset` (a training split), the toolbox's dataset is the whole
        catalog with `train`'s interactions only, so no statistic (popularity, tie-breaks,
        title and intent priors) counts an interaction the model was not fitted on."""
        from tools import registry

        if train is None:
            train = TrainSet.from_interactions(
                dataset.interactions, dataset.n_users, dataset.n_items
            )
        elif not _trained_on_all_of(train, dataset):
            dataset = dataset.with_interactions(_interactions_of(train, dataset.interactions))
        if model is None:
            model = registry.create("default").fit(train)
        return cls(
            dataset=dataset,
            train=train,
            model=model,
            content=ItemContentIndex.build(dataset),
            catalog=catalog_index(dataset),
            dialogues=dialogues,
        )

    def history_of(self, user_id: str | None) -> History:
        """The training history of a known user; an empty history for anyone else."""
        user = self.dataset.user_index.get(user_id) if user_id is not None else None
        if user is None or user >= self.train.n_users:
            return History(np.zeros(0, dtype=np.int64))
        return self.train.history(user)

    def item_ids(self, indices: np.ndarray | list[int]) -> list[str]:
        return [self.dataset.items[int(i)].item_id for i in indices]

    def indices(self, item_ids: list[str]) -> np.ndarray:
        """Catalog indices of the known ids among `item_ids` (unknown ids are skipped)."""
        index = self.dataset.item_index
        return np.asarray([index[i] for i in item_ids if i in index], dtype=np.int64)

    @cached_property
    def years(self) -> np.ndarray:
        """Release year of every item (NaN where the catalog has none)."""
        years = np.full(self.dataset.n_items, np.nan)
        for i, item in enumerate(self.dataset.items):
            values = item.attributes.get("year", ())
            if values and values[0].isdigit():
                years[i] = float(values[0])
        return years

    @cached_property
    def title_linker(self) -> TitleLinker:
        """Finds catalog titles in free text (built on first use: ~0.6 s for 10,000 titles)."""
        return TitleLinker(self.dataset, popularity=self.catalog.popularity)

    @cached_property
    def conversation_reader(self) -> ConversationReader:
        """Reads chat conversations against this catalog (built on first use)."""
        from agents.conversation import ConversationReader

        return ConversationReader(self.dataset, self.title_linker)

    @cached_property
    def rating_predictor(self) -> RatingPredictor:
        """The damped user + item bias baseline, fitted on first use (the rate task)."""
        return create_predictor("pop").fit(self.train)

    @cached_property
    def rating_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean rating, number of ratings) per item over the training interactions."""
        n = self.train.n_items
        counts = np.bincount(self.train.items, minlength=n).astype(np.float64)
        sums = np.bincount(self.train.items, weights=self.train.ratings, minlength=n)
        means = np.divide(sums, counts, out=np.full(n, np.nan), where=counts > 0)
        return means, counts

    def prepare(self) -> Toolbox:
        """Build now what runs would otherwise build on first use: a chat's conversation
        reader (its title linker and content flags: most of a second on a 10,000-item
        catalog), the release years the searchers filter by and the rating statistics the
        Item Analyst reads. A toolbox is served only once prepared; returns itself."""
        self.conversation_reader  # noqa: B018
        self.years  # noqa: B018
        self.rating_stats  # noqa: B018
        return self


def _trained_on_all_of(train: TrainSet, dataset: Dataset) -> bool:
    """Whether `train` holds exactly `dataset`'s interactions."""
    if (train.n_users, train.n_items, train.n_interactions) != (
        dataset.n_users,
        dataset.n_items,
        len(dataset.interactions),
    ):
        return False
    a, b = train, TrainSet.from_interactions(dataset.interactions, dataset.n_users, dataset.n_items)
    return (
        np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.items, b.items)
        and np.array_equal(a.ratings, b.ratings)
        and np.array_equal(a.timestamps, b.timestamps)
    )


def _interactions_of(train: TrainSet, like: Interactions) -> Interactions:
    """`train`'s rows as interactions (user by user, oldest first), flagged as `like`."""
    return Interactions(
        user=train.user_of_row.astype(np.int32),
        item=train.items.astype(np.int32),
        rating=train.ratings.astype(np.float32),
        timestamp=train.timestamps.astype(np.int64),
        has_ratings=like.has_ratings,
        has_timestamps=like.has_timestamps,
    )


_lock = threading.Lock()
_toolboxes: dict[str, Toolbox] = {}
_factories: dict[str, Callable[[], Toolbox]] = {}


def _demo_toolbox() -> Toolbox:
    from recdata.demo import load_demo

    return Toolbox.build(load_demo())


_factories["demo"] = _demo_toolbox


def register_toolbox(name: str, toolbox: Toolbox) -> None:
    """Make `toolbox` available to graph runs whose context names catalog `name`."""
    with _lock:
        _toolboxes[name] = toolbox


def replace_toolbox(name: str, old: Toolbox, new: Toolbox) -> bool:
    """Register `new` under `name` only if `old` is still the one registered there (a swap
    that never undoes a newer registration); True if it was replaced."""
    with _lock:
        if _toolboxes.get(name) is not old:
            return False
        _toolboxes[name] = new
        return True


def unregister_toolbox(name: str) -> None:
    with _lock:
        _toolboxes.pop(name, None)


def get_toolbox(name: str = "demo") -> Toolbox:
    """The toolbox called `name`, built on first use ("demo" is always available)."""
    with _lock:
        box = _toolboxes.get(name)
        if box is not None:
            return box
        factory = _factories.get(name)
        if factory is None:
            known = ", ".join(sorted({*_toolboxes, *_factories}))
            raise ConfigError(f"unknown catalog {name!r}; known catalogs: {known}")
        box = _toolboxes[name] = factory()
        return box
