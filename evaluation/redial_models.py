"""The models the `redial` protocol evaluates, and what they may learn from.

A `ChatModel` is fitted once on `ChatTraining` (the catalog with its ratings, and the
training dialogues), then asked, for each case, for its top `count` catalog item ids after a
conversation given as `Turn`s: (role, text) with role "user" (the seeker) or "assistant"
(the recommender), oldest first, titles written without years. It must not return an item
the conversation already mentions: that is its job, not the harness's.

- `pop`: the catalog's most rated items (distinct raters), whatever was said.
- `dialogue-pop`: the items the most training dialogues mention (ties: catalog popularity),
  whatever was said.
- `linked-cf`: the conversation's titles linked to the catalog (`tools.titles`, each turn
  with the earlier turns' items as context), then the project's `default` model, fitted on
  the catalog's ratings, scoring the linked items as a history (oldest first); the linked
  items are left out. With no title linked, the default model's answer to an empty history
  (popularity).
- `graph`: the agent graph's chat task with offline brains, given the conversation as its
  `messages` (`evaluation.graph_model.GraphRecommender.chat`), on a toolbox holding the same
  fitted default model and the statistics of the training dialogues (`DialogueStats`: how
  often each movie is mentioned, and with which others), as a deployment that ingested
  those dialogues would have.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from core.errors import ConfigError
from recdata.dataset import Dataset
from recdata.redial import Dialogue, MentionMapper, Turn
from tools.base import History, Recommender, TrainSet, top_k
from tools.dialogue_stats import DialogueStats
from tools.titles import TitleLinker

Progress = Callable[[str], None]


@dataclass
class ChatTraining:
    """What a model may fit on: the catalog (items and ratings) and the training dialogues
    (everything in them, questionnaires included). Never the evaluated dialogues.

    Costly shared pieces (the fitted default model, the title linker) are built on first use
    and reused by every model of the run.
    """

    catalog: Dataset
    dialogues: Sequence[Dialogue] = ()
    mapper: MentionMapper | None = None
    default: Recommender | None = None
    """A model already fitted on the catalog's ratings to use as the default model."""
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ratings(self) -> TrainSet:
        if "ratings" not in self._shared:
            inter = self.catalog.interactions
            self._shared["ratings"] = TrainSet.from_interactions(
                inter, self.catalog.n_users, self.catalog.n_items
            )
        ratings: TrainSet = self._shared["ratings"]
        return ratings

    def default_model(self) -> Recommender:
        """The project's `default` model fitted on the catalog's ratings (fitted once)."""
        if self.default is not None:
            return self.default
        if "default" not in self._shared:
            from tools import registry

            self._shared["default"] = registry.create("default").fit(self.ratings)
        model: Recommender = self._shared["default"]
        return model

    def linker(self) -> TitleLinker:
        if "linker" not in self._shared:
            self._shared["linker"] = TitleLinker(self.catalog)
        linker: TitleLinker = self._shared["linker"]
        return linker

    def dialogue_stats(self) -> DialogueStats:
        """Mention and co-mention counts of the training dialogues (computed once)."""
        if "dialogue_stats" not in self._shared:
            items = self.mentioned_items()
            self._shared["dialogue_stats"] = DialogueStats.fit(items, self.catalog.n_items)
        stats: DialogueStats = self._shared["dialogue_stats"]
        return stats

    def mentioned_items(self) -> list[list[int]]:
        """Per training dialogue, the catalog items its mentions map to (each once)."""
        mapper = self.mapper or MentionMapper(self.catalog)
        out = []
        for dialogue in self.dialogues:
            mapped = mapper.map_dialogue(dialogue).values()
            out.append(list(dict.fromkeys(i for i in mapped if i is not None)))
        return out


class ChatModel(ABC):
    """A conversational recommender as the `redial` protocol sees it."""

    name: str = "chat-model"

    @abstractmethod
    def fit(self, training: ChatTraining) -> Self: ...

    @abstractmethod
    def recommend(self, turns: Sequence[Turn], count: int) -> list[str]:
        """Catalog item ids, best first, at most `count`, none the conversation mentions."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what `fit` registered (nothing by default)."""


class _RankedModel(ChatModel):
    """Recommends the same fixed ranking to every conversation."""

    def __init__(self) -> None:
        self._ids: list[str] = []

    def _rank(self, catalog: Dataset, scores: np.ndarray) -> None:
        self._ids = [catalog.item_ids[int(i)] for i in top_k(scores, 1000)]

    def recommend(self, turns: Sequence[Turn], count: int) -> list[str]:
        return self._ids[:count]


class CatalogPopularity(_RankedModel):
    name = "pop"

    def fit(self, training: ChatTraining) -> Self:
        self._rank(training.catalog, training.ratings.item_popularity.astype(np.float64))
        return self


class DialoguePopularity(_RankedModel):
    name = "dialogue-pop"

    def fit(self, training: ChatTraining) -> Self:
        n = training.catalog.n_items
        counts = np.zeros(n, dtype=np.float64)
        for items in training.mentioned_items():
            counts[items] += 1.0
        ratings = training.ratings.item_popularity.astype(np.float64)
        tie_break = ratings / (ratings.max() + 1.0) if n else ratings
        self._rank(training.catalog, counts + tie_break)
        return self


class LinkedCF(ChatModel):
    name = "linked-cf"

    def __init__(self) -> None:
        self._training: ChatTraining | None = None

    def fit(self, training: ChatTraining) -> Self:
        training.linker()
        training.default_model()
        self._training = training
        return self

    def recommend(self, turns: Sequence[Turn], count: int) -> list[str]:
        if self._training is None:
            raise RuntimeError("linked-cf is not fitted: call fit(training) first")
        linked = self._training.linker().link_conversation([text for _, text in turns])
        items = list(dict.fromkeys(i for found in linked for i in found.items))
        history = History(np.asarray(items, dtype=np.int64))
        scores = self._training.default_model().score([history])[0]
        catalog = self._training.catalog
        return [catalog.item_ids[int(i)] for i in top_k(scores, count, history.items)]


class GraphChat(ChatModel):
    name = "graph"

    def __init__(self) -> None:
        from evaluation.graph_model import GraphRecommender

        self._graph: GraphRecommender | None = None
        self._factory = GraphRecommender

    def fit(self, training: ChatTraining) -> Self:
        from agents.toolbox import Toolbox

        box = Toolbox.build(
            training.catalog,
            model=training.default_model(),
            train=training.ratings,
            dialogues=training.dialogue_stats(),
        )
        self.close()
        self._graph = self._factory(training.catalog).use_toolbox(box)
        return self

    def recommend(self, turns: Sequence[Turn], count: int) -> list[str]:
        if self._graph is None:
            raise RuntimeError("graph is not fitted: call fit(training) first")
        return self._graph.chat([(t.role, t.text) for t in turns], count)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None


CHAT_MODELS: dict[str, Callable[[], ChatModel]] = {
    CatalogPopularity.name: CatalogPopularity,
    DialoguePopularity.name: DialoguePopularity,
    LinkedCF.name: LinkedCF,
    GraphChat.name: GraphChat,
}


def check_chat_models(names: Sequence[str]) -> list[str]:
    if not names:
        raise ConfigError("no models given")
    for name in names:
        if name not in CHAT_MODELS:
            known = ", ".join(CHAT_MODELS)
            raise ConfigError(f"unknown model {name!r} for the redial protocol; known: {known}")
    if len(set(names)) != len(names):
        raise ConfigError(f"a model is named twice in {','.join(names)}")
    return list(names)


def create_chat_model(name: str) -> ChatModel:
    check_chat_models([name])
    return CHAT_MODELS[name]()
