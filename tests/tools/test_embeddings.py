"""The offline hashed-n-gram embedder and the item content index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from recdata.dataset import Dataset, Item
from recdata.loaders import load_dataset
from tools.base import History
from tools.embeddings import HashedNgramEmbeddings, ItemContentIndex, item_text

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["Toy Story (1995) animation comedy", "Heat, a crime thriller", "über café naïve"]


def test_same_vectors_in_a_separate_process() -> None:
    script = (
        "import json, sys\n"
        "from tools.embeddings import HashedNgramEmbeddings\n"
        "texts = json.loads(sys.argv[1])\n"
        "print(json.dumps(HashedNgramEmbeddings(dims=64).embed_documents(texts)))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):  # str hashing differs between these processes
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(TEXTS)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)},
        )
        outputs.append(json.loads(done.stdout))
    here = HashedNgramEmbeddings(dims=64).embed_documents(TEXTS)
    assert outputs[0] == outputs[1]
    np.testing.assert_allclose(np.asarray(outputs[0]), np.asarray(here), rtol=0, atol=1e-7)


def test_implements_the_embeddings_interface() -> None:
    embedder = HashedNgramEmbeddings(dims=32)
    assert isinstance(embedder, Embeddings)
    docs = embedder.embed_documents(TEXTS)
    assert len(docs) == len(TEXTS) and all(len(v) == 32 for v in docs)
    assert all(isinstance(x, float) for x in docs[0])
    assert embedder.embed_query(TEXTS[1]) == docs[1]


def test_vectors_are_unit_length_and_empty_text_is_zero() -> None:
    vectors = HashedNgramEmbeddings().embed_matrix([*TEXTS, "", "   !!! "])
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-6)
    assert not vectors[3:].any()


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    embedder = HashedNgramEmbeddings()
    anchor, similar, unrelated = embedder.embed_matrix(
        [
            "a funny comedy about talking dogs",
            "funny talking dog comedies",
            "submarine warfare documentary in the arctic",
        ]
    )
    assert float(anchor @ similar) > float(anchor @ unrelated) + 0.2


def test_features_cover_words_bigrams_and_marked_trigrams() -> None:
    features = HashedNgramEmbeddings().features("Red fox")
    assert {"w:red", "w:fox", "b:red fox", "c:<re", "c:red", "c:ed>", "c:<fo"} <= set(features)


def catalog() -> Dataset:
    items = [
        Item("1", "Toy Story", {"genres": ("Animation", "Comedy")}, "toys come to life"),
        Item("2", "Heat", {"genres": ("Crime", "Thriller")}, "a bank robbery in los angeles"),
        Item("3", "Toy Soldiers", {"genres": ("Action",)}),
        Item("4", "Apollo 13", {"genres": ("Drama",)}, "astronauts stranded in space"),
        Item("5", "Space Jam", {"genres": ("Animation", "Comedy")}, "basketball in space"),
    ]
    return Dataset.build("tiny", items, [("u", "1", None, None)])


def test_item_text_has_title_attributes_and_text() -> None:
    text = item_text(catalog().items[0])
    assert all(part in text for part in ("Toy Story", "Animation", "Comedy", "toys come"))


def test_content_index_search_and_similarity() -> None:
    index = ItemContentIndex.build(catalog())
    assert index.search("bank robbery thriller", k=1)[0][0] == 1
    assert index.search("astronauts", k=1)[0][0] == 3
    similar = index.similar_items(0, k=4)
    assert 0 not in [i for i, _ in similar] and len(similar) == 4
    assert similar[0][0] == 4  # the other animated comedy
    scores = [s for _, s in similar]
    assert scores == sorted(scores, reverse=True)


def test_content_scores_follow_the_history_profile() -> None:
    index = ItemContentIndex.build(catalog())
    scores = index.content_scores(History.of([1]))
    assert scores.shape == (5,) and int(np.argmax(scores)) == 1
    np.testing.assert_allclose(scores, index.vectors @ index.vectors[1], rtol=1e-6)
    two = index.content_scores(History.of([0, 3]))
    profile = index.vectors[0] + index.vectors[3]
    np.testing.assert_allclose(two, index.vectors @ (profile / np.linalg.norm(profile)), atol=1e-6)
    assert not index.content_scores(History.of([])).any()


class KeywordEmbeddings(Embeddings):
    """A fake embedder: one dimension per keyword present."""

    words = ("space", "toy", "crime")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[2.0 * (w in t.lower()) for w in self.words] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_any_embeddings_can_be_plugged_in() -> None:
    index = ItemContentIndex.build(catalog(), KeywordEmbeddings(), batch_size=2)
    assert index.vectors.shape == (5, 3)
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, rtol=1e-6)
    found = {i for i, s in index.search("space", k=5) if s > 0}
    assert found == {3, 4}


@pytest.mark.parametrize("dims", [1, 0])
def test_rejects_degenerate_dimensions(dims: int) -> None:
    with pytest.raises(ValueError, match="dims"):
        HashedNgramEmbeddings(dims=dims)


def test_search_finds_movielens_titles(ml100k_path: Path) -> None:
    dataset = load_dataset(ml100k_path, "movielens-100k")
    index = ItemContentIndex.build(dataset)
    for query, title in [
        ("toy story", "Toy Story (1995)"),
        ("Star Wars", "Star Wars (1977)"),
        ("godfather", "Godfather, The (1972)"),
    ]:
        found = [dataset.items[i].title for i, _ in index.search(query, k=3)]
        assert title in found, (query, found)
