"""`--models graph`: the agents keep what the default model knows (they may add to it)."""

from __future__ import annotations

import pytest

from evaluation.harness import evaluate
from evaluation.protocols import Protocol
from recdata.demo import load_demo


@pytest.mark.parametrize(("protocol", "metric"), [("macrec", "NDCG@5"), ("full", "NDCG@10")])
def test_graph_is_at_least_as_good_as_the_default_model(protocol: Protocol, metric: str) -> None:
    report = evaluate(load_demo(), protocol, ["default", "graph"])
    results = {r.name: r.metrics for r in report.results}
    assert results["graph"][metric] >= results["default"][metric] - 1e-9
    assert results["graph"][metric] > 0.1
