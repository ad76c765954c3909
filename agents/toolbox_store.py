"""Toolboxes trained once and loaded memory-mapped: `agentrec train` writes, serving loads.

`fit_toolbox` fits a catalog's models (what `Toolbox.build` does, optionally with feedback
interactions folded into the collaborative model's training data), `save_toolbox` writes
them as a versioned artifact (`tools.artifacts`) in the model store,
`<store>/<catalog>/<version>/`, and `load_toolbox` rebuilds the toolbox from one without
fitting: the model's matrices, the training log, the content vectors and the dialogue
statistics (when the toolbox has them) are memory-mapped, so the workers of one machine share
their pages. The catalog index (attribute postings) is recomputed at load: it is cheap and
built from the catalog itself.

An artifact records the fingerprint of the data it was trained on. `model` hashes what the
fitted model depends on (item ids, user ids and the interactions); `content` hashes what the
content index depends on (item titles, attributes and texts). An artifact whose `model`
hash differs from the catalog's is never loaded (its indices would point at other items or
users); one whose only the `content` hash differs (an item's text was edited) is loaded with
its content index rebuilt in process.

`load_or_build_toolbox` is what the service calls at start-up, and `ArtifactWatcher` swaps
in a newer artifact while serving (hot swap).

Dialogue statistics: a catalog ingested with dialogues (`agentrec ingest --dialogues`) keeps
them beside it (`recdata.store`). Whatever loads the catalog to serve or train gives them to
the toolbox (`catalog_dialogues`): a fit (`fit_toolbox`, so `agentrec train` saves them in
the artifact), a loaded artifact and a hot-swapped one; the catalog's copy wins over an
artifact's (it is what the deployment ingested last), an artifact's is kept when the
catalog has none.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import json
import logging
import shutil
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from agents.toolbox import Toolbox, get_toolbox, replace_toolbox
from core.errors import ConfigError, DataError
from core.settings import Settings
from recdata.dataset import Dataset, Interactions
from recdata.store import check_name, has_catalog, load_catalog, load_catalog_dialogues
from tools import artifacts
from tools.base import TrainSet
from tools.candidates import catalog_index
from tools.dialogue_stats import DialogueStats
from tools.embeddings import ItemContentIndex

log = logging.getLogger("agentrec.models")

FEEDBACK_FILE = "feedback.jsonl"
_REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Fingerprints


@dataclass(frozen=True)
class Fingerprint:
    """sha256 digests of a catalog: `model` (ids and interactions), `content` (item texts)."""

    model: str
    content: str

    @property
    def data(self) -> str:
        return hashlib.sha256(f"{self.model}:{self.content}".encode()).hexdigest()


_fingerprints: weakref.WeakKeyDictionary[Dataset, Fingerprint] = weakref.WeakKeyDictionary()
_fingerprint_lock = threading.Lock()


def fingerprint(dataset: Dataset) -> Fingerprint:
    """The fingerprint of `dataset` (computed once per dataset object: O(items + rows))."""
    with _fingerprint_lock:
        found = _fingerprints.get(dataset)
    if found is not None:
        return found
    with gc_paused():
        found = _fingerprint(dataset)
    with _fingerprint_lock:
        _fingerprints[dataset] = found
    return found


def _fingerprint(dataset: Dataset) -> Fingerprint:
    model = hashlib.sha256(b"agentrec-model-data-1\n")
    for ids in (dataset.item_ids, dataset.user_ids):
        model.update(json.dumps(ids, ensure_ascii=False).encode())
    inter = dataset.interactions
    model.update(json.dumps([len(inter), inter.has_ratings, inter.has_timestamps]).encode())
    for array, dtype in (
        (inter.user, "<i8"),
        (inter.item, "<i8"),
        (inter.rating, "<f8"),
        (inter.timestamp, "<i8"),
    ):
        model.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
    content = hashlib.sha256(b"agentrec-content-data-1\n")
    rows = [
        [item.item_id, item.title, {k: list(v) for k, v in item.attributes.items()}, item.text]
        for item in dataset.items
    ]
    content.update(json.dumps(rows, ensure_ascii=False).encode())
    return Fingerprint(model.hexdigest(), content.hexdigest())


# ---------------------------------------------------------------------------------------------
# Fitting


@dataclass(frozen=True)
class FeedbackRow:
    """A positive feedback event that became a training interaction of the model."""

    event_id: str
    user_id: str  # the event's subject: a user id, or "session:<id>" for a visitor
    item_id: str
    rating: float
    timestamp: int  # seconds since the epoch


def model_trainset(dataset: Dataset, feedback: Sequence[FeedbackRow] = ()) -> TrainSet:
    """The catalog's interactions plus `feedback` as one training set. Feedback of catalog
    users joins their histories; other subjects become users after the catalog's (their
    indices are the model's only: the toolbox's users stay the catalog's). Rows on items
    that are not in the catalog are skipped."""
    n_users = dataset.n_users
    inter = dataset.interactions
    if not feedback:
        return TrainSet.from_interactions(inter, n_users, dataset.n_items)
    users: dict[str, int] = {}
    rows: list[tuple[int, int, float, int]] = []
    for row in feedback:
        item = dataset.item_index.get(row.item_id)
        if item is None:
            continue
        user = dataset.user_index.get(row.user_id)
        if user is None:
            user = users.setdefault(row.user_id, n_users + len(users))
        rows.append((user, item, row.rating, row.timestamp))
    extra = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    merged = Interactions(
        user=np.concatenate([inter.user, extra[:, 0].astype(np.int32)]),
        item=np.concatenate([inter.item, extra[:, 1].astype(np.int32)]),
        rating=np.concatenate([inter.rating, extra[:, 2].astype(np.float32)]),
        timestamp=np.concatenate([inter.timestamp, np.asarray([r[3] for r in rows], np.int64)]),
        has_ratings=inter.has_ratings,
        has_timestamps=inter.has_timestamps,
    )
    return TrainSet.from_interactions(merged, n_users + len(users), dataset.n_items)


def fit_toolbox(
    dataset: Dataset,
    feedback: Sequence[FeedbackRow] = (),
    model_params: dict[str, Any] | None = None,
    dialogues: DialogueStats | None = None,
) -> Toolbox:
    """Fit the default model (on the catalog's interactions plus `feedback`) and index the
    catalog: `Toolbox.build` with feedback. The toolbox's `train` (users' histories) stays
    the catalog's interactions; only the model learns from the feedback. `dialogues`: the
    catalog's dialogue statistics (`catalog_dialogues`), kept by the toolbox."""
    from tools import registry

    train = TrainSet.from_interactions(dataset.interactions, dataset.n_users, dataset.n_items)
    model_train = model_trainset(dataset, feedback) if feedback else train
    model = registry.create("default", **(model_params or {})).fit(model_train)
    return Toolbox.build(dataset, model=model, train=train, dialogues=dialogues)


def catalog_dialogues(data_dir: Path, catalog: str, dataset: Dataset) -> DialogueStats | None:
    """The dialogue statistics ingested with `catalog` (None: it has none), for `dataset`
    (the catalog as loaded: rows follow its items by id)."""
    arrays = load_catalog_dialogues(data_dir, catalog)
    if arrays is None:
        return None
    try:
        return DialogueStats.for_catalog(arrays, dataset)
    except (KeyError, ValueError) as error:
        raise DataError(
            Path(data_dir) / "catalogs" / catalog, f"malformed dialogue statistics: {error}"
        ) from error


def with_catalog_dialogues(box: Toolbox, data_dir: Path, catalog: str) -> Toolbox:
    """`box` with the dialogue statistics of `catalog` when it has some (they win over the
    artifact's), else `box` itself."""
    stats = catalog_dialogues(data_dir, catalog, box.dataset)
    return box if stats is None else replace(box, dialogues=stats)


# ---------------------------------------------------------------------------------------------
# Saving and loading


def model_store(settings: Settings) -> Path:
    """The model store directory: `model_dir`, else `<data_dir>/models`."""
    return Path(settings.model_dir or Path(settings.data_dir) / "models")


def catalog_store(store: Path, catalog: str) -> Path:
    return Path(store) / check_name(catalog)


def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout, the commit (and whether it was edited)."""
    try:
        package = importlib.metadata.version("agentrec")
    except importlib.metadata.PackageNotFoundError:
        package = "unknown"
    commit: str | None = None
    dirty: bool | None = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return {"package": package, "git_commit": commit, "git_dirty": dirty}


def validation_metrics(box: Toolbox) -> dict[str, Any]:
    """The default model's own dev figures from its self-tuning (no extra evaluation)."""
    from tools.default import DefaultRecommender

    model = box.model
    if not isinstance(model, DefaultRecommender) or not model.validation_:
        return {}
    validation = model.validation_
    solo = {k.removeprefix("solo "): v for k, v in validation.items() if k.startswith("solo ")}
    best = max(solo, key=lambda k: solo[k]) if solo else None
    return {
        "split": f"inner dev: the last {model.tune_holdout} training interactions of each "
        f"user (at most {model.tune_users} users), each ranked among every item outside the "
        "history before it",
        "objective": f"NDCG@10 + {model.sampled_weight} x NDCG@5 against "
        f"{model.sampled_negatives} sampled never-seen items",
        "blend": validation.get("blend"),
        "best_single": {"variant": best, "ndcg@10": solo[best]} if best else None,
    }


def save_toolbox(
    box: Toolbox,
    store: Path,
    catalog: str,
    *,
    feedback: Sequence[FeedbackRow] = (),
    events: dict[str, Any] | None = None,
    fit_s: float | None = None,
    version: str | None = None,
) -> Path:
    """Write `box` as a new version of `catalog` in `store`; returns the artifact folder."""
    from tools.default import DefaultRecommender

    if not isinstance(box.model, DefaultRecommender):
        raise ConfigError(f"only the default model is saved, not {type(box.model).__name__}")
    dataset = box.dataset
    print_ = fingerprint(dataset)
    train_meta, arrays = artifacts.trainset_to_arrays("train", box.train)
    model_meta, model_arrays = artifacts.model_to_arrays("model", box.model)
    arrays.update(model_arrays)
    model_train = box.model._require_fitted().train
    model_train_meta: dict[str, Any] | None = None
    if model_train is not box.train:
        model_train_meta, extra = artifacts.trainset_to_arrays("model_train", model_train)
        arrays.update(extra)
    content_meta, content_arrays = artifacts.content_to_arrays("content", box.content)
    arrays.update(content_arrays)
    dialogues_meta: dict[str, Any] | None = None
    if box.dialogues is not None:
        stats = box.dialogues.to_arrays()
        dialogues_meta = {"n_dialogues": int(stats.pop("n_dialogues"))}
        arrays.update({f"dialogues.{name}": array for name, array in stats.items()})
    manifest = {
        "catalog": catalog,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "data_hash": print_.data,
        "hashes": asdict(print_),
        "dataset": {
            "name": dataset.name,
            "items": dataset.n_items,
            "users": dataset.n_users,
            "interactions": len(dataset.interactions),
        },
        "model": {"name": "default", "params": model_meta["params"], "chosen": box.model.chosen_},
        "fit_s": None if fit_s is None else round(fit_s, 2),
        "metrics": validation_metrics(box),
        "feedback": {
            "rows": len(feedback),
            "users_added": model_train.n_users - dataset.n_users,
            **(events or {}),
        },
        "components": {
            "train": train_meta,
            "model": model_meta,
            "model_train": model_train_meta,
            "content": content_meta,
            "dialogues": dialogues_meta,
        },
    }
    lines = "".join(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in feedback)
    return artifacts.write_artifact(
        catalog_store(store, catalog),
        arrays,
        manifest,
        files={FEEDBACK_FILE: lines.encode()},
        version=version,
    )


class ArtifactMismatch(ConfigError):
    """The artifact was trained on other data than the catalog it is loaded for."""


def check_artifact(manifest: dict[str, Any], dataset: Dataset, folder: Path) -> None:
    """Raise `ArtifactMismatch` unless the artifact's model was trained on `dataset`."""
    expected = fingerprint(dataset).model
    found = manifest.get("hashes", {}).get("model")
    if found != expected:
        raise ArtifactMismatch(
            f"model artifact {folder} was trained on other data than catalog "
            f"{dataset.name!r} (data hash {str(found)[:12]}, the catalog's {expected[:12]})"
        )


def load_toolbox(folder: Path, dataset: Dataset, mmap: bool = True) -> Toolbox:
    """The toolbox saved in `folder`, for `dataset` (which must be the data it was trained
    on: `ArtifactMismatch` otherwise), its arrays memory-mapped read-only; no fit."""
    folder = Path(folder)
    manifest = artifacts.read_manifest(folder)
    check_artifact(manifest, dataset, folder)
    arrays = artifacts.load_arrays(folder, manifest, mmap=mmap)
    same_content = manifest["hashes"].get("content") == fingerprint(dataset).content
    try:
        parts = manifest["components"]
        train = artifacts.trainset_from_arrays("train", parts["train"], arrays)
        model_train = train
        if parts.get("model_train"):
            model_train = artifacts.trainset_from_arrays(
                "model_train", parts["model_train"], arrays
            )
        model = artifacts.model_from_arrays("model", parts["model"], arrays, model_train)
        if same_content:
            content = artifacts.content_from_arrays("content", parts["content"], arrays)
        dialogues = _dialogues_from_arrays(parts.get("dialogues"), arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(folder, f"malformed model artifact: {error!r}") from error
    if not same_content:
        log.info(
            "catalog %r: item texts changed since %s; content index rebuilt", dataset.name, folder
        )
        content = ItemContentIndex.build(dataset)
    return Toolbox(
        dataset=dataset,
        train=train,
        model=model,
        content=content,
        catalog=catalog_index(dataset),
        artifact=str(manifest["version"]),
        dialogues=dialogues,
    )


def _dialogues_from_arrays(meta: dict[str, Any] | None, arrays: artifacts.Arrays) -> Any:
    """The saved dialogue statistics (`tools.dialogue_stats`), or None if there are none."""
    if meta is None:
        return None
    from tools.dialogue_stats import ARRAY_NAMES, DialogueStats

    saved = {name: arrays[f"dialogues.{name}"] for name in ARRAY_NAMES}
    return DialogueStats.from_arrays({**saved, "n_dialogues": np.asarray(meta["n_dialogues"])})


def read_feedback(folder: Path) -> list[FeedbackRow]:
    """The feedback rows an artifact's model was trained with (none if it has no file)."""
    path = Path(folder) / FEEDBACK_FILE
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8") as lines:
            return [FeedbackRow(**json.loads(line)) for line in lines if line.strip()]
    except (OSError, ValueError, TypeError) as error:
        raise DataError(path, f"unreadable feedback rows: {error}") from error


def find_artifact(
    store: Path, catalog: str, dataset: Dataset, before: str | None = None
) -> tuple[Path | None, list[str]]:
    """The newest artifact of `catalog` trained on `dataset` (older than version `before`
    if given), and why newer ones were skipped (trained on other data, or unreadable)."""
    skipped: list[str] = []
    expected = fingerprint(dataset).model
    for folder in reversed(artifacts.versions(catalog_store(store, catalog))):
        if before is not None and folder.name >= before:
            continue
        try:
            manifest = artifacts.read_manifest(folder)
        except DataError as error:
            skipped.append(str(error))
            continue
        found = manifest.get("hashes", {}).get("model")
        if found == expected:
            return folder, skipped
        skipped.append(
            f"{folder.name} was trained on other data (data hash {str(found)[:12]}, "
            f"the catalog's {expected[:12]})"
        )
    return None, skipped


def prune_versions(store: Path, catalog: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` artifacts of `catalog`; returns what was deleted.
    (A worker that mapped a deleted artifact keeps its pages until it lets go of them.)"""
    if keep < 1:
        return []
    old = artifacts.versions(catalog_store(store, catalog))[:-keep]
    for folder in old:
        shutil.rmtree(folder, ignore_errors=True)
    return old


def load_catalog_dataset(settings: Settings, catalog: str) -> Dataset:
    """The catalog's dataset: the data directory's copy, else the bundled demo."""
    if has_catalog(settings.data_dir, catalog):
        return load_catalog(settings.data_dir, catalog)
    if catalog == "demo":
        from recdata.demo import load_demo

        return load_demo()
    raise ConfigError(
        f"unknown catalog {catalog!r}: no {catalog!r} in {Path(settings.data_dir) / 'catalogs'} "
        "(create it with `agentrec ingest`); 'demo' is bundled"
    )


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a catalog's objects are built: every collection
    of the young generations would walk them (a 100k-item catalog loads ~3x faster)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_or_build_toolbox(settings: Settings, catalog: str | None = None) -> Toolbox:
    """The toolbox a serving process starts with: the newest artifact trained on the
    catalog, memory-mapped, or (`model_artifacts` 'prefer' without one, or 'off') the
    models fitted in process (the bundled demo's once per process, as `get_toolbox`).
    With 'require' and no usable artifact: `ConfigError`. Register it with
    `register_toolbox(catalog, box)`."""
    catalog = check_name(catalog or settings.catalog)
    data_dir = Path(settings.data_dir)
    started = time.perf_counter()
    with gc_paused():
        dataset = load_catalog_dataset(settings, catalog)
        fingerprint(dataset)
        catalog_index(dataset)
    log.info(
        "catalog %r: %d items, %d interactions loaded in %.2f s",
        catalog, dataset.n_items, len(dataset.interactions), time.perf_counter() - started,
    )  # fmt: skip
    store = model_store(settings)
    policy = settings.model_artifacts
    if policy != "off":
        started = time.perf_counter()
        folder, skipped = find_artifact(store, catalog, dataset)
        for reason in skipped:
            log.warning("catalog %r: model artifact skipped: %s", catalog, reason)
        while folder is not None:
            try:
                box = with_catalog_dialogues(load_toolbox(folder, dataset), data_dir, catalog)
            except (DataError, OSError) as error:  # damaged: try the next older one
                log.error("catalog %r: model artifact %s not loaded: %s", catalog, folder, error)
                skipped.append(f"{folder.name} could not be loaded")
                folder, more = find_artifact(store, catalog, dataset, before=folder.name)
                for reason in more:
                    log.warning("catalog %r: model artifact skipped: %s", catalog, reason)
                skipped += more
                continue
            log.info(
                "catalog %r: models loaded from %s (memory-mapped, %.2f s, no fit)",
                catalog, folder, time.perf_counter() - started,
            )  # fmt: skip
            return box
        where = catalog_store(store, catalog)
        problem = (
            f"no model artifact trained on catalog {catalog!r} in {where}"
            if skipped
            else f"no model artifact for catalog {catalog!r} in {where}"
        )
        if policy == "require":
            raise ConfigError(f"{problem}; run `agentrec train --catalog {catalog}`")
        (log.warning if skipped else log.info)(
            "%s; fitting the models in this process (run `agentrec train --catalog %s` "
            "to train them once for every worker)",
            problem,
            catalog,
        )
    started = time.perf_counter()
    if catalog == "demo" and not has_catalog(settings.data_dir, catalog):
        box = get_toolbox("demo")  # the bundled demo, fitted once per process
    else:
        box = fit_toolbox(dataset, dialogues=catalog_dialogues(data_dir, catalog, dataset))
    log.info("catalog %r: models fitted in %.1f s", catalog, time.perf_counter() - started)
    return box


# ---------------------------------------------------------------------------------------------
# Hot swap


class ArtifactWatcher:
    """Swaps in a newer artifact of a served catalog without dropping a request.

    Every `interval_s` it looks for the newest artifact trained on the catalog the served
    toolbox holds; when that is not the one served (and not older), it loads it
    memory-mapped and registers it with `replace_toolbox`: one reference swap under the
    registry's lock, and only if the served toolbox is still the one it started from (a
    catalog edit by the service meanwhile wins). Graph nodes fetch the toolbox by name,
    so new runs use the new models while runs in flight finish on objects they hold; both
    toolboxes share the catalog, so item indices agree. The old arrays are unmapped when
    the last reference goes.
    """

    def __init__(
        self, store: Path, catalog: str, interval_s: float = 30.0, data_dir: Path | None = None
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.store = Path(store)
        self.data_dir = None if data_dir is None else Path(data_dir)
        """Where the catalog's dialogue statistics are read from (None: not read)."""
        self.catalog = check_name(catalog)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, catalog: str | None = None) -> ArtifactWatcher:
        return cls(
            model_store(settings),
            catalog or settings.catalog,
            settings.model_reload_s,
            settings.data_dir,
        )

    def check(self) -> str | None:
        """One look: the version swapped in, or None."""
        current = get_toolbox(self.catalog)
        folder, _ = find_artifact(self.store, self.catalog, current.dataset)
        if folder is None or folder.name == current.artifact or folder.name in self._failed:
            return None
        if current.artifact is not None and folder.name < current.artifact:
            return None
        try:
            box = load_toolbox(folder, current.dataset)
            if self.data_dir is not None:
                box = with_catalog_dialogues(box, self.data_dir, self.catalog)
            box.prepare()  # served only once prepared
        except (ConfigError, DataError, OSError) as error:
            self._failed.add(folder.name)
            log.error("catalog %r: model artifact %s not loaded: %s", self.catalog, folder, error)
            return None
        if not replace_toolbox(self.catalog, current, box):
            return None
        log.info(
            "catalog %r: swapped in model artifact %s (was %s)",
            self.catalog, folder.name, current.artifact or "fitted in process",
        )  # fmt: skip
        return folder.name

    def start(self) -> ArtifactWatcher:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"agentrec-models-{self.catalog}", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # never lose the thread to one bad look
                log.exception("catalog %r: looking for a new model artifact failed", self.catalog)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> ArtifactWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
