"""Offline text embeddings and a content index over the item catalog.

`HashedNgramEmbeddings` is the default embedder: it needs no model download and gives the
same vector for the same text in every process. Word unigrams, word bigrams and character
3-grams of each word (with `<` and `>` marking the word's boundaries, so prefixes and
suffixes count) are hashed with BLAKE2b into `dims` buckets with a hashed sign (which keeps
collisions unbiased), weighted by sublinear term frequency 1 + log(tf) times a per-kind
weight, and the vector is L2-normalised. Character 3-grams let "comedies" meet "comedy".

`ItemContentIndex` holds one normalised vector per catalog item (title, attribute values and
text) from any LangChain `Embeddings`, and answers similarity questions with matrix products.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from langchain_core.embeddings import Embeddings

from recdata.dataset import Dataset, Item
from tools.base import History, top_k

_WORD = re.compile(r"\w+")
_CACHE_LIMIT = 1_000_000


class HashedNgramEmbeddings(Embeddings):
    """Signed feature hashing of word 1-2-grams and character 3-grams; offline, deterministic."""

    def __init__(
        self,
        dims: int = 256,
        word_weight: float = 1.0,
        bigram_weight: float = 0.7,
        char_weight: float = 0.35,
    ) -> None:
        if dims < 2:
            raise ValueError(f"dims must be at least 2, got {dims}")
        self.dims = int(dims)
        self.word_weight = float(word_weight)
        self.bigram_weight = float(bigram_weight)
        self.char_weight = float(char_weight)
        self._buckets: dict[str, tuple[int, float]] = {}
        self._words: dict[str, tuple[str, ...]] = {}

    def _bucket(self, feature: str) -> tuple[int, float]:
        """(index, sign) of a feature; BLAKE2b, unlike hash(), is the same in every process."""
        cached = self._buckets.get(feature)
        if cached is not None:
            return cached
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        bucket = (digest % self.dims, 1.0 if (digest >> 63) & 1 else -1.0)
        if len(self._buckets) >= _CACHE_LIMIT:
            self._buckets.clear()
        self._buckets[feature] = bucket
        return bucket

    def _word_features(self, word: str) -> tuple[str, ...]:
        """The unigram and marked character 3-grams of one word (cached: words repeat)."""
        cached = self._words.get(word)
        if cached is None:
            marked = f"<{word}>"
            grams = ["c:" + marked[start : start + 3] for start in range(len(marked) - 2)]
            cached = ("w:" + word, *grams)
            if len(self._words) >= _CACHE_LIMIT:
                self._words.clear()
            self._words[word] = cached
        return cached

    def features(self, text: str) -> Counter[str]:
        """Raw counts of the features of `text`, prefixed by kind ("w:", "b:", "c:")."""
        words = _WORD.findall(text.casefold())
        found: list[str] = []
        for word in words:
            found.extend(self._word_features(word))
        found.extend(f"b:{first} {second}" for first, second in pairwise(words))
        return Counter(found)

    def _vector(self, text: str) -> np.ndarray:
        kind_weight = {"w": self.word_weight, "b": self.bigram_weight, "c": self.char_weight}
        indices: list[int] = []
        values: list[float] = []
        for feature, tf in self.features(text).items():
            index, sign = self._bucket(feature)
            indices.append(index)
            values.append(sign * kind_weight[feature[0]] * (1.0 + math.log(tf)))
        vector = np.bincount(indices, weights=values, minlength=self.dims)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts` as a float32 array of shape (len(texts), dims)."""
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._vector(text)
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(v) for v in row] for row in self.embed_matrix(texts)]

    def embed_query(self, text: str) -> list[float]:
        return [float(v) for v in self.embed_matrix([text])[0]]


def item_text(item: Item) -> str:
    """The text an item is embedded from: title, attribute values, free text."""
    parts = [item.title]
    for values in item.attributes.values():
        parts.extend(values)
    if item.text:
        parts.append(item.text)
    return " ".join(p for p in parts if p)


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(matrix / norms, dtype=np.float32)


class ItemContentIndex:
    """One L2-normalised content vector per item; cosine similarity by matrix products.

    Any LangChain `Embeddings` can be plugged in; vectors are normalised here, so scores
    are cosine similarities whatever the embedder returns.
    """

    def __init__(
        self, vectors: np.ndarray, embeddings: Embeddings, *, normalised: bool = False
    ) -> None:
        """`normalised=True` keeps `vectors` as given (rows already of unit length, e.g. a
        memory-mapped array saved from another index) instead of normalising a copy."""
        if normalised:
            self.vectors = vectors
        else:
            self.vectors = _normalise_rows(np.asarray(vectors, dtype=np.float32))
        self.embeddings = embeddings

    @property
    def n_items(self) -> int:
        return int(self.vectors.shape[0])

    @classmethod
    def build(
        cls, dataset: Dataset, embeddings: Embeddings | None = None, batch_size: int = 2048
    ) -> ItemContentIndex:
        """Embed every item of `dataset` (default embedder: `HashedNgramEmbeddings()`)."""
        embedder = embeddings if embeddings is not None else HashedNgramEmbeddings()
        texts = [item_text(item) for item in dataset.items]
        if isinstance(embedder, HashedNgramEmbeddings):
            return cls(embedder.embed_matrix(texts), embedder)
        batches = [
            np.asarray(embedder.embed_documents(texts[lo : lo + batch_size]), dtype=np.float32)
            for lo in range(0, len(texts), batch_size)
        ]
        dims = batches[0].shape[1] if batches else 1
        vectors = np.concatenate(batches) if batches else np.zeros((0, dims), np.float32)
        return cls(vectors, embedder)

    def embed_text(self, text: str) -> np.ndarray:
        """The normalised vector of a free-text query."""
        if isinstance(self.embeddings, HashedNgramEmbeddings):
            vector = self.embeddings.embed_matrix([text])[0]
        else:
            vector = np.asarray(self.embeddings.embed_query(text), dtype=np.float32)
        return _normalise_rows(vector[np.newaxis, :])[0]

    def query_scores(self, text: str) -> np.ndarray:
        """Cosine similarity of every item to `text`, shape (n_items,)."""
        return self.vectors @ self.embed_text(text)

    def profile(self, history: History) -> np.ndarray:
        """The normalised mean vector of the history's items (zeros for an empty history)."""
        if len(history) == 0:
            return np.zeros(self.vectors.shape[1], dtype=np.float32)
        mean = self.vectors[np.asarray(history.items, dtype=np.int64)].mean(axis=0)
        return _normalise_rows(mean[np.newaxis, :])[0]

    def content_scores(self, history: History) -> np.ndarray:
        """Cosine similarity of every item to the history's profile vector, shape (n_items,)."""
        return self.vectors @ self.profile(history)

    def similar_items(self, item_index: int, k: int = 10) -> list[tuple[int, float]]:
        """The `k` items most similar to `item_index` (itself excluded), best first."""
        scores = self.vectors @ self.vectors[item_index]
        return self._top(scores, k, exclude=np.array([item_index]))

    def search(self, text: str, k: int = 10) -> list[tuple[int, float]]:
        """The `k` items closest to a free-text query, best first."""
        return self._top(self.query_scores(text), k)

    @staticmethod
    def _top(
        scores: np.ndarray, k: int, exclude: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        return [(int(i), float(scores[i])) for i in top_k(scores, k, exclude)]
