"""Versioned model artifacts: plain `.npy` arrays and a `manifest.json` in one folder.

An artifact lives in `<parent>/<version>/`; versions are UTC timestamps, so the newest sorts
last. It is written into a hidden temporary folder renamed into place in one step (a reader
never sees half an artifact) and read back with `np.load(mmap_mode="r")`: every process that
loads it maps the same page-cache pages, so workers on one machine share the model's memory
instead of each holding a copy, and loading costs no fit.

Each fitted component has a to-arrays / from-arrays form here: `TrainSet`, sparse (CSR) and
dense matrices, `ItemContentIndex` (with the hashed n-gram embedder's parameters) and
`DefaultRecommender` (its parameters, chosen blend and every item-item matrix the blend
scores with). Nothing is pickled: arrays, JSON and text only.
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.errors import ConfigError, DataError
from tools.base import TrainSet
from tools.default import DefaultRecommender, LowRank, Variant, _Fitted
from tools.embeddings import HashedNgramEmbeddings, ItemContentIndex

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,99}$")

Arrays = dict[str, np.ndarray]
Meta = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# The store


def new_version(now: datetime | None = None) -> str:
    """A version name that sorts by creation time: `YYYYmmddTHHMMSS.ffffffZ` (UTC)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def write_artifact(
    parent: Path,
    arrays: Mapping[str, np.ndarray],
    manifest: Mapping[str, Any],
    *,
    files: Mapping[str, bytes] | None = None,
    version: str | None = None,
) -> Path:
    """Write `arrays` (one `<name>.npy` each), extra `files` and the manifest as
    `<parent>/<version>/` in one rename; returns the folder. The manifest gains `format`,
    `version` and `arrays` (name -> dtype and shape)."""
    version = version or new_version()
    if not _VERSION.match(version):
        raise ConfigError(f"bad artifact version {version!r}")
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    try:
        listing: dict[str, dict[str, Any]] = {}
        for name, array in arrays.items():
            if not _NAME.match(name):
                raise ValueError(f"bad array name {name!r}")
            data = np.ascontiguousarray(array)
            np.save(work / f"{name}.npy", data, allow_pickle=False)
            listing[name] = {"dtype": data.dtype.str, "shape": list(data.shape)}
        for name, content in (files or {}).items():
            if not _NAME.match(name) or name == MANIFEST or name.endswith(".npy"):
                raise ValueError(f"bad file name {name!r}")
            (work / name).write_bytes(content)
        full = {"format": FORMAT_VERSION, "version": version, **manifest, "arrays": listing}
        (work / MANIFEST).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
        target = parent / version
        if target.exists():
            raise ConfigError(f"artifact {target} exists already")
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def versions(parent: Path) -> list[Path]:
    """The complete artifacts in `parent`, oldest first (temporary folders skipped)."""
    if not parent.is_dir():
        return []
    found = [
        p
        for p in parent.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda p: p.name)


def read_manifest(folder: Path) -> Meta:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(path, f"unreadable model manifest: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise DataError(path, f"artifact format {found!r}; this agentrec reads {FORMAT_VERSION}")
    return manifest


def load_arrays(folder: Path, manifest: Meta, mmap: bool = True) -> Arrays:
    """Every array the manifest lists, memory-mapped read-only (`mmap`) or read."""
    out: Arrays = {}
    for name, spec in manifest["arrays"].items():
        path = folder / f"{name}.npy"
        try:
            array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(path, f"unreadable model array: {error}") from error
        if array.dtype.str != spec["dtype"] or list(array.shape) != spec["shape"]:
            raise DataError(
                path,
                f"{array.dtype.str} {list(array.shape)} where the manifest says "
                f"{spec['dtype']} {spec['shape']}",
            )
        out[name] = array
    return out


# ---------------------------------------------------------------------------------------------
# Components


def matrix_to_arrays(prefix: str, matrix: Any) -> tuple[Meta, Arrays]:
    """A dense array as one array, a sparse matrix as its CSR data, indices and indptr, a
    low-rank one as its two factors."""
    if isinstance(matrix, LowRank):
        arrays = {f"{prefix}.left": matrix.left, f"{prefix}.right": matrix.right}
        return {"format": "lowrank", "shape": list(matrix.shape)}, arrays
    if sp.issparse(matrix):
        csr = sp.csr_matrix(matrix)
        arrays = {
            f"{prefix}.data": csr.data,
            f"{prefix}.indices": csr.indices,
            f"{prefix}.indptr": csr.indptr,
        }
        return {"format": "csr", "shape": list(csr.shape)}, arrays
    dense = np.asarray(matrix)
    return {"format": "dense", "shape": list(dense.shape)}, {prefix: dense}


def matrix_from_arrays(prefix: str, meta: Meta, arrays: Arrays) -> Any:
    """The matrix back, on the given (memory-mapped) arrays: scipy keeps CSR arrays of its
    own index dtype as they are, so nothing is copied."""
    if meta["format"] == "csr":
        parts = (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"])
        return sp.csr_matrix(parts, shape=tuple(meta["shape"]))
    if meta["format"] == "lowrank":
        return LowRank(arrays[f"{prefix}.left"], arrays[f"{prefix}.right"])
    return arrays[prefix]


def trainset_to_arrays(prefix: str, train: TrainSet) -> tuple[Meta, Arrays]:
    meta = {"n_users": train.n_users, "n_items": train.n_items}
    arrays = {
        f"{prefix}.indptr": train.indptr,
        f"{prefix}.items": train.items,
        f"{prefix}.ratings": train.ratings,
        f"{prefix}.timestamps": train.timestamps,
    }
    return meta, arrays


def trainset_from_arrays(prefix: str, meta: Meta, arrays: Arrays) -> TrainSet:
    return TrainSet(
        n_users=int(meta["n_users"]),
        n_items=int(meta["n_items"]),
        indptr=arrays[f"{prefix}.indptr"],
        items=arrays[f"{prefix}.items"],
        ratings=arrays[f"{prefix}.ratings"],
        timestamps=arrays[f"{prefix}.timestamps"],
    )


def content_to_arrays(prefix: str, index: ItemContentIndex) -> tuple[Meta, Arrays]:
    """The normalised item vectors and the embedder's parameters (the default hashed n-gram
    embedder only: another LangChain embedder cannot be rebuilt from a manifest)."""
    embedder = index.embeddings
    if not isinstance(embedder, HashedNgramEmbeddings):
        raise ConfigError(
            f"cannot save a content index built with {type(embedder).__name__}; "
            "only the default HashedNgramEmbeddings is saved in model artifacts"
        )
    meta = {
        "embedder": "hashed-ngram",
        "dims": embedder.dims,
        "word_weight": embedder.word_weight,
        "bigram_weight": embedder.bigram_weight,
        "char_weight": embedder.char_weight,
    }
    return meta, {f"{prefix}.vectors": index.vectors}


def content_from_arrays(prefix: str, meta: Meta, arrays: Arrays) -> ItemContentIndex:
    if meta.get("embedder") != "hashed-ngram":
        raise DataError(prefix, f"unknown embedder {meta.get('embedder')!r}")
    embedder = HashedNgramEmbeddings(
        dims=int(meta["dims"]),
        word_weight=float(meta["word_weight"]),
        bigram_weight=float(meta["bigram_weight"]),
        char_weight=float(meta["char_weight"]),
    )
    return ItemContentIndex(arrays[f"{prefix}.vectors"], embedder, normalised=True)


def model_params(model: DefaultRecommender) -> Meta:
    """The constructor arguments of `model`, JSON-ready (tuples become lists)."""
    names = [n for n in inspect.signature(type(model).__init__).parameters if n != "self"]
    return {name: _jsonable(getattr(model, name)) for name in names}


def model_to_arrays(prefix: str, model: DefaultRecommender) -> tuple[Meta, Arrays]:
    """A fitted `DefaultRecommender`: parameters, blend, choice and validation figures as
    JSON; popularity, the time-ordered training log and every cached item-item matrix as
    arrays. Its training set is saved by the caller (it is often the toolbox's own)."""
    fitted = model._require_fitted()
    arrays: Arrays = {
        f"{prefix}.popularity": fitted.popularity,
        f"{prefix}.time_sorted": fitted.time_sorted,
        f"{prefix}.items_by_time": fitted.items_by_time,
    }
    matrices: list[Meta] = []
    stores: tuple[tuple[str, Mapping[Any, Any]], ...] = (
        ("cf", fitted.cf),
        ("transition", fitted.transitions),
        ("sequential", fitted.sequential),
    )
    for kind, store in stores:
        for n, (key, matrix) in enumerate(store.items()):
            name = f"{prefix}.{kind}{n}"
            spec, parts = matrix_to_arrays(name, matrix)
            matrices.append({"kind": kind, "key": _jsonable(key), "name": name, **spec})
            arrays.update(parts)
    meta = {
        "class": "default",
        "params": model_params(model),
        "dense": fitted.dense,
        "knn_neighbors": fitted.knn_neighbors,
        "blend": [
            {"family": fam, "params": [[k, v] for k, v in variant.params], "weight": weight}
            for fam, (variant, weight) in model._blend.items()
        ],
        "chosen": model.chosen_,
        "validation": model.validation_,
        "matrices": matrices,
    }
    return meta, arrays


def model_from_arrays(
    prefix: str, meta: Meta, arrays: Arrays, train: TrainSet
) -> DefaultRecommender:
    """The fitted model back, scoring exactly as the saved one; no fit. Refuses an artifact
    that lacks a matrix the blend scores with (the model would refit it lazily)."""
    if meta.get("class") != "default":
        raise DataError(prefix, f"unknown model class {meta.get('class')!r}")
    model = DefaultRecommender(**meta["params"])
    stores: dict[str, dict[Any, Any]] = {"cf": {}, "transition": {}, "sequential": {}}
    for spec in meta["matrices"]:
        key = _matrix_key(spec["kind"], spec["key"])
        stores[spec["kind"]][key] = matrix_from_arrays(spec["name"], spec, arrays)
    fitted = _Fitted(
        train=train,
        dense=bool(meta["dense"]),
        knn_neighbors=int(meta["knn_neighbors"]),
        popularity=arrays[f"{prefix}.popularity"],
        time_sorted=arrays[f"{prefix}.time_sorted"],
        items_by_time=arrays[f"{prefix}.items_by_time"],
        cf=stores["cf"],
        transitions=stores["transition"],
        sequential=stores["sequential"],
    )
    blend = {
        b["family"]: (
            Variant(b["family"], tuple((str(k), float(v)) for k, v in b["params"])),
            float(b["weight"]),
        )
        for b in meta["blend"]
    }
    for variant, _ in blend.values():
        key = fitted.matrix_key(variant)
        if key is not None and key[1] not in stores[key[0]]:
            raise DataError(prefix, f"the artifact lacks the matrix of {variant}")
    model._fitted = fitted
    model._blend = blend
    model.chosen_ = dict(meta["chosen"])
    model.validation_ = {str(k): float(v) for k, v in meta["validation"].items()}
    return model


def _matrix_key(kind: str, key: Any) -> Any:
    """A cache key of `_Fitted` back from JSON, typed as `tools.default` builds it."""
    if kind == "cf":
        return float(key)
    if kind == "transition":
        gap, alpha, back = key
        return int(gap), float(alpha), float(back)
    if kind == "sequential":
        half, window, lam, ties = key
        return float(half), int(window), float(lam), bool(ties)
    raise ValueError(f"unknown matrix kind {kind!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value
