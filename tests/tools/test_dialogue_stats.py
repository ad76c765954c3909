"""Dialogue statistics: mention and co-mention counts, hand-computed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recdata.dataset import Dataset, Item
from recdata.demo import load_demo
from recdata.store import load_catalog, load_catalog_dialogues, save_catalog, with_item
from tools.dialogue_stats import DialogueStats


def test_counts_mentions_once_per_dialogue_and_pairs_symmetrically() -> None:
    stats = DialogueStats.fit([[0, 1, 1, 2], [1, 2], [3], [9, -1]], n_items=5)
    assert stats.n_dialogues == 4
    assert stats.mentions.tolist() == [1.0, 2.0, 2.0, 1.0, 0.0]  # 9 and -1 are no items
    dense = np.zeros((5, 5))
    for row in range(5):
        lo, hi = stats.indptr[row], stats.indptr[row + 1]
        dense[row, stats.indices[lo:hi]] = stats.counts[lo:hi]
    expected = np.zeros((5, 5))
    expected[0, 1] = expected[1, 0] = 1  # dialogue 0
    expected[0, 2] = expected[2, 0] = 1
    expected[1, 2] = expected[2, 1] = 2  # dialogues 0 and 1
    assert np.array_equal(dense, expected)


def test_co_mentions_sum_the_rows_of_the_named_items() -> None:
    stats = DialogueStats.fit([[0, 1, 2], [1, 2], [2, 3]], n_items=4)
    assert stats.co_mentions([1]).tolist() == [1.0, 0.0, 2.0, 0.0]
    assert stats.co_mentions([1, 3]).tolist() == [1.0, 0.0, 3.0, 0.0]
    assert stats.co_mentions([1, 3], weights=[2.0, 0.5]).tolist() == [2.0, 0.0, 4.5, 0.0]
    assert stats.co_mentions([]).tolist() == [0.0] * 4


def test_arrays_round_trip() -> None:
    stats = DialogueStats.fit([[0, 1], [1, 2, 3]], n_items=4)
    again = DialogueStats.from_arrays(stats.to_arrays())
    assert again.n_dialogues == 2
    assert np.array_equal(again.co_mentions([1]), stats.co_mentions([1]))
    assert all(isinstance(v, np.ndarray) for v in stats.to_arrays().values())


def test_from_redial_maps_mentions_to_the_catalog(tmp_path: Path) -> None:
    demo = load_demo()
    record = {
        "conversationId": "1",
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": {"11": "Alien (1979)", "12": "Aliens (1986)", "13": "No Such Film"},
        "messages": [{"messageId": 1, "text": "@11 @12 @13", "senderWorkerId": 1}],
        "initiatorQuestions": [],
        "respondentQuestions": [],
    }
    path = tmp_path / "dialogues.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    stats = DialogueStats.from_redial(path, demo)
    alien, aliens = demo.item_index["alien-1979"], demo.item_index["aliens-1986"]
    assert stats.mentions.sum() == 2.0
    assert stats.co_mentions([alien])[aliens] == 1.0


def test_statistics_saved_with_a_catalog_follow_its_items_by_id(tmp_path: Path) -> None:
    """A catalog keeps its statistics with the item id of each row: an item added since
    has no mentions, a removed one's counts are gone, the others keep theirs wherever they
    moved; an upsert (a save without new arrays) keeps them, an ingest without them drops
    them."""
    demo = load_demo()
    stats = DialogueStats.fit([[0, 1, 2], [1, 2], [2, 3]], n_items=demo.n_items)
    arrays = stats.to_catalog_arrays(demo.item_ids)
    assert arrays["item_ids"].dtype.kind == "U"  # plain strings: loads without pickle
    same = DialogueStats.for_catalog(arrays, demo)
    assert np.array_equal(same.co_mentions([1]), stats.co_mentions([1]))

    first, second, third, fourth = demo.items[:4]
    new = Item("zz-new", "Brand New Film", {"genres": ("Drama",)})
    changed = Dataset(demo.name, [new, fourth, third, *demo.items[4:], first], demo.users,
                      demo.interactions.take(np.zeros(0, dtype=np.int64)))  # fmt: skip
    moved = DialogueStats.for_catalog(arrays, changed)
    index = changed.item_index
    assert moved.n_items == changed.n_items and moved.n_dialogues == 3
    assert moved.mentions[index["zz-new"]] == 0
    assert moved.mentions[index[first.item_id]] == 1 and moved.mentions[index[third.item_id]] == 3
    assert moved.co_mentions([index[third.item_id]]).tolist() == [
        {index[first.item_id]: 1.0, index[fourth.item_id]: 1.0}.get(i, 0.0)
        for i in range(changed.n_items)
    ]  # the second item (co-mentioned twice with the third) is gone

    save_catalog(demo, tmp_path, "films", dialogues=arrays)
    upserted, _ = with_item(demo, new)
    save_catalog(upserted, tmp_path, "films")  # an upsert keeps them
    kept = load_catalog_dialogues(tmp_path, "films")
    assert kept is not None
    padded = DialogueStats.for_catalog(kept, load_catalog(tmp_path, "films"))
    assert padded.n_items == demo.n_items + 1 and padded.mentions[-1] == 0
    assert np.array_equal(padded.mentions[:-1], stats.mentions)
    save_catalog(demo, tmp_path, "films", dialogues=None)  # an ingest without dialogues
    assert load_catalog_dialogues(tmp_path, "films") is None
    assert second.item_id not in index
