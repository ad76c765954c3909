"""The protocols on MovieLens 100K against figures from an independent implementation.

Reference (EASE lambda 500 binarised, popularity, random): macrec HR@1 ~ 0.63 / 0.44 / 0.13,
EASE macrec NDCG@5 ~ 0.82; full NDCG@10 ~ 0.076 (EASE) and ~ 0.045 (popularity). The macrec
figures rest on ~490 cases with sampled negatives (standard error ~0.02 on HR@1), hence the
tolerances.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.harness import evaluate
from recdata.dataset import Dataset
from recdata.loaders import load_dataset


@pytest.fixture(scope="module")
def ml100k(ml100k_path: Path) -> Dataset:
    return load_dataset(ml100k_path, "movielens-100k")


def test_macrec_matches_the_reference(ml100k: Dataset) -> None:
    report = evaluate(ml100k, "macrec", ["random", "pop", "ease"])
    results = {r.name: r.metrics for r in report.results}
    assert 400 < report.test_cases < report.summary.users
    assert results["ease"]["HR@1"] == pytest.approx(0.63, abs=0.05)
    assert results["ease"]["NDCG@5"] == pytest.approx(0.82, abs=0.03)
    assert results["pop"]["HR@1"] == pytest.approx(0.44, abs=0.05)
    assert results["random"]["HR@1"] == pytest.approx(0.13, abs=0.05)


def test_full_ranking_matches_the_reference(ml100k: Dataset) -> None:
    report = evaluate(ml100k, "full", ["pop", "ease"])
    results = {r.name: r.metrics for r in report.results}
    assert report.test_cases == ml100k.n_users
    assert results["ease"]["NDCG@10"] == pytest.approx(0.076, abs=0.008)
    assert results["pop"]["NDCG@10"] == pytest.approx(0.045, abs=0.006)
