"""The quality bar against EASE on MovieLens 100K, as margins the test cases can tell apart.

Each assertion is on the paired per-case difference (default minus EASE, same cases):
its mean and its standard error, so that no assertion passes or fails by the luck of a few
cases. full (943 cases): the default model wins NDCG@10 and HR@10 by more than
`WIN_SES` standard errors. macrec (~490 cases, 8 candidates): the default model is at least
EASE's level, not below it by more than `LEVEL_SES` standard errors (its win there, 0.659 vs
0.649 HR@1, is 5 cases: within the noise). The default model tunes itself inside `fit` on
the training data it is given, so the test targets play no part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.harness import rank_cases
from evaluation.metrics import paired_difference
from evaluation.protocols import RankingCases, full_cases, macrec_cases
from recdata.loaders import load_dataset
from tools import registry
from tools.base import ndcg_gains

WIN_SES = 3.0
LEVEL_SES = 2.0


def _ranks(cases: RankingCases) -> dict[str, np.ndarray]:
    return {
        name: rank_cases(registry.create(name).fit(cases.train), cases)
        for name in ("ease", "default")
    }


@pytest.mark.slow
def test_default_beats_ease_on_full_ranking(ml100k_path: Path) -> None:
    ranks = _ranks(full_cases(load_dataset(ml100k_path, "movielens-100k")))
    for per_case in (lambda r: ndcg_gains(r, 10), lambda r: (r < 10).astype(np.float64)):
        mean, se = paired_difference(per_case(ranks["default"]), per_case(ranks["ease"]))
        assert se > 0 and mean > WIN_SES * se, (mean, se)


@pytest.mark.slow
def test_default_is_at_eases_level_on_sampled_candidates(ml100k_path: Path) -> None:
    ranks = _ranks(macrec_cases(load_dataset(ml100k_path, "movielens-100k")))
    for per_case in (lambda r: (r < 1).astype(np.float64), lambda r: ndcg_gains(r, 5)):
        mean, se = paired_difference(per_case(ranks["default"]), per_case(ranks["ease"]))
        assert se > 0 and mean > -LEVEL_SES * se, (mean, se)
