"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019).

EASE learns an item-item weight matrix B minimising ||X - XB||² + λ||B||² subject to
diag(B) = 0, on the binarised user-item matrix X. The closed form is

    P = (XᵀX + λI)⁻¹,   B[i, j] = -P[i, j] / P[j, j]  (i != j),   B[j, j] = 0.

Cost: the Gram matrix and its inverse are dense, so training takes O(n_items³) time and
O(n_items²) memory (the float64 Gram matrix, inverted in place: 8·n_items² bytes, plus B in
float32 for scoring). At 20,000 items that measured 144 s and a 4.7 GB peak on the 2-core
benchmark machine (benchmarks/results/scale_ease_20k.json). That is why `max_items` guards
it: above it, use the project's own default model (`default` in tools.registry), which
scales to large catalogs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

import numpy as np
import scipy.linalg

from core.errors import ConfigError
from tools.base import History, Recommender, TrainSet, histories_matrix


class EASE(Recommender):
    name = "ease"

    def __init__(self, l2: float = 500.0, max_items: int = 20_000) -> None:
        if l2 <= 0:
            raise ValueError(f"l2 must be positive, got {l2}")
        self.l2 = float(l2)
        self.max_items = int(max_items)
        self.weights: np.ndarray | None = None

    def fit(self, train: TrainSet) -> Self:
        n = train.n_items
        if n > self.max_items:
            gib = 8 * n * n / 2**30
            raise ConfigError(
                f"EASE needs a dense {n} x {n} matrix inverse (O(n_items³) time, about "
                f"{gib:.1f} GiB of float64 memory) and is limited to max_items={self.max_items} "
                f"items; this catalog has {n}. Use the 'default' model, which scales to large "
                "catalogs, or raise max_items if this machine can afford it."
            )
        x = train.binary_matrix.astype(np.float64)
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
        gram[np.diag_indices(n)] += self.l2
        with _single_threaded_openblas():
            precision = _spd_inverse(gram)
        diagonal = np.diag(precision).copy()
        precision /= -diagonal[np.newaxis, :]
        precision[np.diag_indices(n)] = 0.0
        self.weights = np.ascontiguousarray(precision, dtype=np.float32)
        return self

    def score(self, histories: Sequence[History]) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("ease is not fitted: call fit(train) first")
        h = histories_matrix(histories, self.weights.shape[0])
        return np.asarray(h @ self.weights, dtype=np.float32)


@contextmanager
def _single_threaded_openblas() -> Iterator[None]:
    """Run OpenBLAS single-threaded in this thread, for every OpenBLAS loaded (Linux).

    Workaround: the threaded Cholesky of OpenBLAS 0.3.31 (as shipped in the numpy and scipy
    wheels) segfaulted on a 20,000-item Gram matrix on the 2-core benchmark machine, while
    the single-threaded one ran, and no slower there. Elsewhere this is a no-op.
    """
    restore: list[tuple[Any, int]] = []
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        paths = set()
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            set_threads = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        set_threads.restype = ctypes.c_int
        set_threads.argtypes = [ctypes.c_int]
        restore.append((set_threads, int(set_threads(1))))
    try:
        yield
    finally:
        for set_threads, previous in restore:
            set_threads(previous)


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix via Cholesky, overwriting `matrix`."""
    # LAPACK overwrites Fortran-ordered arrays in place; a C-ordered symmetric matrix is its
    # own transpose, and the transpose is Fortran-ordered
    fortran = matrix if matrix.flags.f_contiguous else matrix.T
    factor, info = scipy.linalg.lapack.dpotrf(fortran, lower=True, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed (info={info})")
    inverse, info = scipy.linalg.lapack.dpotri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse from the Cholesky factor failed (info={info})")
    # dpotri fills the lower triangle only: mirror it, a block of rows at a time
    n = inverse.shape[0]
    block = 1024
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        inverse[lo:hi, hi:] = inverse[hi:, lo:hi].T
        diagonal_block = np.tril(inverse[lo:hi, lo:hi])
        inverse[lo:hi, lo:hi] = diagonal_block + np.tril(diagonal_block, -1).T
    return np.asarray(inverse)
