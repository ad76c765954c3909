"""The Ranker's diversity re-ranking is maximal marginal relevance as defined."""

from __future__ import annotations

import numpy as np
import pytest

from agents.ranker import rank
from agents.schemas import CandidatePool, PoolCandidate
from agents.toolbox import Toolbox, get_toolbox
from agents.user_analyst import profiled_attributes


@pytest.fixture(scope="module")
def box() -> Toolbox:
    return get_toolbox("demo")


def _plain_mmr(box: Toolbox, pool: CandidatePool, count: int, diversity: float) -> list[str]:
    """MMR straight from its definition: each step takes the candidate with the highest
    (1 - diversity) x relevance - diversity x (largest Jaccard overlap of attribute values
    with an item already taken); the first one on ties."""
    attributes = profiled_attributes(box)
    ds = box.dataset

    def values(item_id: str) -> set[str]:
        attrs = ds.items[ds.item_index[item_id]].attributes
        return {f"{name}={v}" for name in attributes for v in attrs.get(name, ())}

    cands = pool.candidates
    sets = [values(c.item_id) for c in cands]
    scores = [c.score for c in cands]
    span = (max(scores) - min(scores)) or 1.0
    relevance = [(s - min(scores)) / span for s in scores]
    taken: list[int] = []
    while len(taken) < min(count, len(cands)):
        best, best_value = -1, -np.inf
        for j in range(len(cands)):
            if j in taken:
                continue
            overlap = max(
                (len(sets[j] & sets[p]) / max(len(sets[j] | sets[p]), 1) for p in taken),
                default=0.0,
            )
            value = (1 - diversity) * relevance[j] - diversity * overlap
            if value > best_value:
                best, best_value = j, value
        taken.append(best)
    return [cands[j].item_id for j in taken]


def _pools(box: Toolbox) -> list[CandidatePool]:
    rng = np.random.default_rng(11)
    pools = []
    for size in (1, 5, 40):
        picks = rng.choice(box.dataset.n_items, size, replace=False)
        ids = box.item_ids(picks)
        scores = rng.normal(size=size)
        pools.append(_pool(ids, scores.tolist()))
        pools.append(_pool(ids, np.round(scores).tolist()))  # many ties
        pools.append(_pool(ids, [1.0] * size))  # all tied
    return pools


def _pool(ids: list[str], scores: list[float]) -> CandidatePool:
    return CandidatePool(
        candidates=[
            PoolCandidate(item_id=i, score=s, sources=["collaborative"])
            for i, s in zip(ids, scores, strict=True)
        ]
    )


@pytest.mark.parametrize("diversity", [0.1, 0.3, 0.7, 1.0])
def test_diversity_reranking_is_mmr(box: Toolbox, diversity: float) -> None:
    for pool in _pools(box):
        for count in (1, 4, 10):
            got = [i.item_id for i in rank(box, pool, [], None, count, diversity).items]
            assert got == _plain_mmr(box, pool, count, diversity)


def test_diversity_changes_the_order_of_a_uniform_pool(box: Toolbox) -> None:
    pool = _pools(box)[-1]  # 40 items, all tied: relevance alone keeps the pool order
    plain = [i.item_id for i in rank(box, pool, [], None, 10, 0.0).items]
    varied = [i.item_id for i in rank(box, pool, [], None, 10, 0.7).items]
    assert plain == [c.item_id for c in pool.candidates[:10]]
    assert varied != plain and varied[0] == plain[0]
