"""The whole agent graph as a model the evaluation harness can score.

`fit` builds a toolbox on the training split (the default model fitted on it) and registers
it under a name of its own; every case then runs the graph: the `rank` task over the sampled
candidates (macrec) or the `recommend` task (full ranking). Items the graph returns get the
top scores in its order; the rest of the catalog follows in the default model's order, so
metrics past the graph's list (e.g. MRR) remain defined.

`chat(turns)` runs the `chat` task on a conversation, its turns as the graph's `messages`
(the `redial` protocol); `use_toolbox`
registers a toolbox built elsewhere instead of fitting one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.context import Context
from agents.state import InputState
from agents.toolbox import Toolbox, register_toolbox, unregister_toolbox
from recdata.dataset import Dataset
from tools.base import History, Recommender, TrainSet

_names = itertools.count()


class GraphRecommender(Recommender):
    name = "graph"

    def __init__(self, dataset: Dataset, count: int = 50, **context: Any) -> None:
        self.dataset = dataset
        self.count = count
        self.context_overrides = context
        self._catalog: str | None = None
        self._box: Toolbox | None = None

    def fit(self, train: TrainSet) -> Self:
        if self._catalog is not None:
            unregister_toolbox(self._catalog)
        self._box = Toolbox.build(self.dataset, train=train)
        self._catalog = f"eval-{next(_names)}"
        register_toolbox(self._catalog, self._box)
        return self

    def use_toolbox(self, box: Toolbox) -> Self:
        """Run on `box` (e.g. one whose default model other evaluated models share)."""
        if self._catalog is not None:
            unregister_toolbox(self._catalog)
        self._box = box
        self._catalog = f"eval-{next(_names)}"
        register_toolbox(self._catalog, box)
        return self

    def close(self) -> None:
        if self._catalog is not None:
            unregister_toolbox(self._catalog)
            self._catalog = None

    def _run(self, payload: dict[str, Any]) -> list[str]:
        from graphs.recommend import graph

        assert self._catalog is not None, "fit() first"
        context = Context(catalog=self._catalog, **self.context_overrides)
        out = graph.invoke(InputState(**payload), context=context)
        return [r.item_id for r in out["recommendations"]]

    def _payload(self, history: History) -> dict[str, Any]:
        ids = [self.dataset.items[int(i)].item_id for i in history.items]
        payload: dict[str, Any] = {"history_item_ids": ids}
        if history.timestamps is not None:
            payload["history_timestamps"] = [int(t) for t in history.timestamps]
        return payload

    def _scores(self, history: History, ranked: list[str]) -> np.ndarray:
        assert self._box is not None
        base = self._box.model.score([history])[0].astype(np.float64)
        finite = base[np.isfinite(base)]
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 0.0
        scores = base.copy()
        top = high - low + 1.0
        for position, item_id in enumerate(ranked):
            scores[self.dataset.item_index[item_id]] = top + (len(ranked) - position)
        return scores.astype(np.float32)

    def score(self, histories: Sequence[History]) -> np.ndarray:
        rows = []
        for history in histories:
            payload = {"task": "recommend", "count": self.count, **self._payload(history)}
            rows.append(self._scores(history, self._run(payload)))
        return np.vstack(rows) if rows else np.zeros((0, self.dataset.n_items), np.float32)

    def chat(self, turns: Sequence[tuple[str, str]], count: int | None = None) -> list[str]:
        """The item ids the `chat` task recommends after a conversation of (role, text) turns,
        oldest first (role "user" or "assistant"), given to the graph as its `messages`."""
        payload = {"task": "chat", "messages": conversation_messages(turns)}
        return self._run({**payload, "count": count or self.count})

    def score_candidates(self, histories: Sequence[History], candidates: np.ndarray) -> np.ndarray:
        """Scores of each row's candidate items, from the graph's `rank` task."""
        out = np.zeros(candidates.shape, dtype=np.float64)
        for row, history in enumerate(histories):
            ids = [self.dataset.items[int(i)].item_id for i in candidates[row]]
            payload = {
                "task": "rank",
                "candidate_item_ids": ids,
                "count": len(ids),
                **self._payload(history),
            }
            ranked = self._run(payload)
            position = {item_id: p for p, item_id in enumerate(ranked)}
            out[row] = [len(ids) - position.get(i, len(ids)) for i in ids]
        return out


def conversation_messages(turns: Sequence[tuple[str, str]]) -> list[BaseMessage]:
    """A conversation's (role, text) turns as LangChain messages: "user" turns as human
    messages, the others as assistant (AI) messages; empty turns are left out."""
    messages: list[BaseMessage] = []
    for role, text in turns:
        if text.strip():
            messages.append(HumanMessage(text) if role == "user" else AIMessage(text))
    return messages
