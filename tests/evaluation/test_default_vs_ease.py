"""The issue's quality bar, checked on every run: the default model beats EASE on MovieLens 100K.

full: NDCG@10 at least 1.5x EASE's; macrec: higher HR@1 and NDCG@5. The default model tunes
itself inside `fit` on the training data it is given, so the test targets play no part.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.harness import evaluate
from evaluation.protocols import Protocol
from recdata.loaders import load_dataset


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["full", "macrec"])
def test_default_beats_ease(ml100k_path: Path, protocol: Protocol) -> None:
    data = load_dataset(ml100k_path, "movielens-100k")
    report = evaluate(data, protocol, ["ease", "default"])
    r = {m.name: m.metrics for m in report.results}
    if protocol == "full":
        assert r["default"]["NDCG@10"] >= 1.5 * r["ease"]["NDCG@10"]
        assert r["default"]["HR@10"] > r["ease"]["HR@10"]
    else:
        assert r["default"]["HR@1"] > r["ease"]["HR@1"]
        assert r["default"]["NDCG@5"] > r["ease"]["NDCG@5"]
