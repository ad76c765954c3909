"""Models trained once: artifacts written by `agentrec train`, loaded memory-mapped with the
same answers as the fitted toolbox, refused on other data, swapped in while serving, and
feedback events from the Redis event log folded into the collaborative model."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import scipy.sparse as sp

from agents import toolbox_store as ts
from agents.toolbox import (
    Toolbox,
    get_toolbox,
    register_toolbox,
    replace_toolbox,
    unregister_toolbox,
)
from app.cli import main
from app.train import read_events
from core.errors import ConfigError, DataError
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from memory.short_term import FeedbackRecord, ShortTermMemory
from recdata.dataset import Dataset, Item
from recdata.demo import load_demo
from recdata.store import save_catalog
from tools import artifacts
from tools.base import History
from tools.default import DefaultRecommender, LowRank


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_demo()


@pytest.fixture(scope="module")
def fitted(demo: Dataset) -> Toolbox:
    return ts.fit_toolbox(demo)


@pytest.fixture(scope="module")
def saved(fitted: Toolbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ts.save_toolbox(fitted, tmp_path_factory.mktemp("models"), "demo", fit_s=1.0)


def _model(box: Toolbox) -> DefaultRecommender:
    assert isinstance(box.model, DefaultRecommender)
    return box.model


def _state(box: Toolbox) -> Any:
    state = _model(box)._fitted
    assert state is not None
    return state


def _mapped(array: Any) -> bool:
    """Whether `array` is, or views, a memory-mapped file."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False


def _histories(box: Toolbox) -> list[History]:
    users = ["u001", "u017", "u150", "u299"]
    return [box.history_of(u) for u in users] + [History.of([3, 40, 7]), History.of([])]


def _assert_same_answers(fitted: Toolbox, loaded: Toolbox) -> None:
    histories = _histories(fitted)
    assert np.array_equal(fitted.model.score(histories), loaded.model.score(histories))
    for history in histories:
        assert np.array_equal(fitted.model.score([history]), loaded.model.score([history]))
        assert fitted.model.recommend(history, 20) == loaded.model.recommend(history, 20)
    mine, theirs = _model(fitted), _model(loaded)
    targets = [int(i) for i, _ in mine.recommend(histories[0], 5)]
    assert mine.explain_many(histories[0], targets) == theirs.explain_many(histories[0], targets)
    assert mine.explain(histories[1], targets[0]) == theirs.explain(histories[1], targets[0])
    assert fitted.content.search("funny space adventure", 10) == loaded.content.search(
        "funny space adventure", 10
    )
    assert fitted.content.similar_items(5, 10) == loaded.content.similar_items(5, 10)
    assert np.array_equal(fitted.history_of("u017").items, loaded.history_of("u017").items)
    for before, after in zip(fitted.rating_stats, loaded.rating_stats, strict=True):
        assert np.array_equal(before, after, equal_nan=True)
    assert mine.chosen_ == theirs.chosen_


def test_a_loaded_toolbox_is_memory_mapped_and_answers_exactly_as_the_fitted_one(
    fitted: Toolbox, saved: Path, demo: Dataset
) -> None:
    loaded = ts.load_toolbox(saved, demo)
    assert loaded.artifact == saved.name and fitted.artifact is None
    state = _state(loaded)
    for array in (
        state.popularity,
        state.time_sorted,
        loaded.train.items,
        loaded.train.indptr,
        loaded.content.vectors,
        *state.cf.values(),
    ):
        assert isinstance(array, np.memmap)
    assert state.transitions, "the demo blend scores with a transition matrix"
    for matrix in state.transitions.values():
        assert sp.issparse(matrix)
        assert _mapped(matrix.data) and _mapped(matrix.indices) and _mapped(matrix.indptr)
    assert state.train is loaded.train
    _assert_same_answers(fitted, loaded)


def test_the_manifest_records_data_hash_parameters_metrics_and_code(
    fitted: Toolbox, saved: Path, demo: Dataset
) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    print_ = ts.fingerprint(demo)
    assert manifest["data_hash"] == print_.data
    assert manifest["hashes"] == {"model": print_.model, "content": print_.content}
    assert manifest["dataset"] == {
        "name": "demo",
        "items": demo.n_items,
        "users": demo.n_users,
        "interactions": len(demo.interactions),
    }
    assert manifest["model"]["params"]["dense_max_items"] == 8000
    assert manifest["model"]["chosen"] == _model(fitted).chosen_
    assert manifest["metrics"]["blend"] == pytest.approx(_model(fitted).validation_["blend"])
    assert manifest["code_version"]["package"]
    assert manifest["created"] and manifest["version"] == saved.name
    for name, spec in manifest["arrays"].items():
        array = np.load(saved / f"{name}.npy", mmap_mode="r")
        assert [array.dtype.str, list(array.shape)] == [spec["dtype"], spec["shape"]]


def test_dialogue_statistics_are_saved_and_memory_mapped_too(
    fitted: Toolbox, demo: Dataset, tmp_path: Path
) -> None:
    from tools.dialogue_stats import DialogueStats

    stats = DialogueStats.fit([[0, 1, 2], [1, 2], [2, 5]], demo.n_items)
    box = Toolbox.build(demo, model=fitted.model, train=fitted.train, dialogues=stats)
    loaded = ts.load_toolbox(ts.save_toolbox(box, tmp_path, "demo"), demo)
    assert loaded.dialogues is not None and loaded.dialogues.n_dialogues == 3
    assert _mapped(loaded.dialogues.counts) and _mapped(loaded.dialogues.indptr)
    assert np.array_equal(loaded.dialogues.co_mentions([1, 2]), stats.co_mentions([1, 2]))
    assert np.array_equal(loaded.dialogues.mentions, stats.mentions)
    assert ts.load_toolbox(ts.save_toolbox(fitted, tmp_path, "demo"), demo).dialogues is None


def test_the_sparse_model_round_trips_too(demo: Dataset, tmp_path: Path) -> None:
    params = {"dense_max_items": 100, "ials_factors": 16, "tune_users": 100}
    fitted = ts.fit_toolbox(demo, model_params=params)
    assert _model(fitted).chosen_["method"] == "ials"
    loaded = ts.load_toolbox(ts.save_toolbox(fitted, tmp_path, "demo"), demo)
    (low_rank,) = _state(loaded).cf.values()
    assert isinstance(low_rank, LowRank)
    assert _mapped(low_rank.left) and _mapped(low_rank.right)
    _assert_same_answers(fitted, loaded)


def test_an_artifact_trained_on_other_data_is_refused(saved: Path, demo: Dataset) -> None:
    inter = demo.interactions
    other = demo.with_interactions(inter.take(np.arange(len(inter) - 1)))
    with pytest.raises(ts.ArtifactMismatch, match="trained on other data"):
        ts.load_toolbox(saved, other)
    found, skipped = ts.find_artifact(saved.parent.parent, "demo", other)
    assert found is None and len(skipped) == 1 and "other data" in skipped[0]
    found, skipped = ts.find_artifact(saved.parent.parent, "demo", demo)
    assert found == saved and skipped == []


def test_edited_item_texts_keep_the_model_and_rebuild_the_content_index(
    saved: Path, demo: Dataset
) -> None:
    items = list(demo.items)
    items[0] = Item(items[0].item_id, "A completely different title", items[0].attributes)
    edited = Dataset(demo.name, items, demo.users, demo.interactions)
    loaded = ts.load_toolbox(saved, edited)
    assert loaded.artifact == saved.name
    assert all(isinstance(m, np.memmap) for m in _state(loaded).cf.values())
    assert not isinstance(loaded.content.vectors, np.memmap)
    assert loaded.content.search("completely different", 1)[0][0] == 0


def test_a_damaged_artifact_is_refused_with_a_clear_error_and_never_served(
    fitted: Toolbox, demo: Dataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "models"
    name = "damaged-catalog"
    good = ts.save_toolbox(fitted, store, name, version="20000101T000000.000000Z")
    truncated = ts.save_toolbox(fitted, store, name, version="20000102T000000.000000Z")
    (truncated / "model.cf0.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(DataError, match="unreadable model array"):
        ts.load_toolbox(truncated, demo)
    no_parts = ts.save_toolbox(fitted, store, name, version="20000103T000000.000000Z")
    manifest = json.loads((no_parts / "manifest.json").read_text())
    del manifest["components"]
    (no_parts / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="malformed model artifact"):
        ts.load_toolbox(no_parts, demo)
    register_toolbox(name, ts.load_toolbox(good, demo))
    try:
        watcher = ts.ArtifactWatcher(store, name, interval_s=60)
        with caplog.at_level(logging.ERROR, logger="agentrec.models"):
            assert watcher.check() is None and watcher.check() is None
        assert get_toolbox(name).artifact == good.name
        assert caplog.text.count("not loaded") == 1  # one log line, not one per look
    finally:
        unregister_toolbox(name)
    # a service starting on this store falls back on the newest artifact that loads
    save_catalog(demo, tmp_path, name)
    with caplog.at_level(logging.ERROR, logger="agentrec.models"):
        box = ts.load_or_build_toolbox(_settings(tmp_path, model_artifacts="require"), name)
    assert box.artifact == good.name
    assert truncated.name in caplog.text and no_parts.name in caplog.text


def _settings(data_dir: Path, **values: Any) -> Settings:
    return Settings(data_dir=data_dir, **values)


def test_serving_loads_the_newest_matching_artifact_without_fitting(
    fitted: Toolbox, demo: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_catalog(demo, tmp_path, "films")
    store = tmp_path / "models"
    older = ts.save_toolbox(fitted, store, "films", version="20000101T000000.000000Z")
    newer = ts.save_toolbox(fitted, store, "films", version="20000102T000000.000000Z")
    other = demo.with_interactions(demo.interactions.take(np.arange(100)))
    newest = ts.save_toolbox(
        Toolbox.build(other, model=fitted.model), store, "films", version="20000103T0000Z"
    )

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("serving must not fit when an artifact matches")

    monkeypatch.setattr(DefaultRecommender, "fit", no_fit)
    box = ts.load_or_build_toolbox(_settings(tmp_path), "films")
    assert box.artifact == newer.name != older.name
    assert newest.name > newer.name  # skipped: trained on other interactions
    assert all(isinstance(m, np.memmap) for m in _state(box).cf.values())


def test_without_a_matching_artifact_serving_fits_with_a_log_line_or_refuses(
    fitted: Toolbox, demo: Dataset, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    small = demo.with_interactions(demo.interactions.take(np.arange(3000)))
    save_catalog(small, tmp_path, "films")
    ts.save_toolbox(fitted, tmp_path / "models", "films")  # trained on the full demo
    with caplog.at_level(logging.WARNING, logger="agentrec.models"):
        box = ts.load_or_build_toolbox(_settings(tmp_path), "films")
    assert box.artifact is None and _model(box).chosen_
    assert "trained on other data" in caplog.text
    assert "fitting the models in this process" in caplog.text
    with pytest.raises(ConfigError, match="agentrec train --catalog films"):
        ts.load_or_build_toolbox(_settings(tmp_path, model_artifacts="require"), "films")
    with pytest.raises(ConfigError, match="unknown catalog"):
        ts.load_or_build_toolbox(_settings(tmp_path), "nothing")


def test_the_watcher_swaps_in_a_newer_artifact_only_over_the_toolbox_it_saw(
    fitted: Toolbox, demo: Dataset, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    name = "watched-catalog"
    register_toolbox(name, fitted)
    try:
        watcher = ts.ArtifactWatcher(store, name, interval_s=60)
        assert watcher.check() is None  # nothing in the store yet
        first = ts.save_toolbox(fitted, store, name, version="20000101T000000.000000Z")
        assert watcher.check() == first.name
        served = get_toolbox(name)
        assert served.artifact == first.name and served.dataset is demo
        assert watcher.check() is None  # already served
        second = ts.save_toolbox(fitted, store, name, version="20000102T000000.000000Z")
        edited = Toolbox.build(demo, model=fitted.model)
        register_toolbox(name, edited)  # e.g. the service refitted after a catalog edit
        watched = watcher.check()
        assert watched == second.name and get_toolbox(name).artifact == second.name
        # a swap never undoes a registration made while it loaded
        third = ts.save_toolbox(fitted, store, name, version="20000103T000000.000000Z")
        current = get_toolbox(name)
        assert replace_toolbox(name, current, edited)
        assert not replace_toolbox(name, current, fitted)
        assert get_toolbox(name) is edited
        assert watcher.check() == third.name
    finally:
        unregister_toolbox(name)


def test_runs_keep_answering_while_artifacts_are_swapped_in(
    fitted: Toolbox, demo: Dataset, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    name = "busy-catalog"
    register_toolbox(name, fitted)
    expected = _model(fitted).score(_histories(fitted))
    errors: list[BaseException] = []
    answers = 0
    stop = threading.Event()

    def serve() -> None:  # what graph nodes do: fetch the toolbox by name, then use it
        nonlocal answers
        while not stop.is_set():
            try:
                box = get_toolbox(name)
                assert np.array_equal(box.model.score(_histories(box)), expected)
                answers += 1
            except BaseException as error:
                errors.append(error)
                return

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        watcher = ts.ArtifactWatcher(store, name, interval_s=60)
        swapped = []
        for day in range(1, 4):
            ts.save_toolbox(fitted, store, name, version=f"2000010{day}T000000.000000Z")
            swapped.append(watcher.check())
        while answers < 20 and thread.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
        unregister_toolbox(name)
    assert errors == [] and answers >= 20
    assert swapped == [f"2000010{day}T000000.000000Z" for day in range(1, 4)]


# -- feedback events -----------------------------------------------------------------------


def _pair(demo: Dataset) -> tuple[int, int]:
    """Two popular items that no user of the demo has both of."""
    inter = demo.interactions
    popularity = np.bincount(inter.item, minlength=demo.n_items)
    by_user: dict[int, set[int]] = {}
    for u, i in zip(inter.user.tolist(), inter.item.tolist(), strict=True):
        by_user.setdefault(u, set()).add(i)
    ranked = np.argsort(-popularity, kind="stable")[:120].tolist()
    for a in ranked:
        for b in ranked:
            if a != b and not any(a in s and b in s for s in by_user.values()):
                return a, b
    raise AssertionError("no such pair in the demo")


def _log_events(memory: ShortTermMemory, subject: str, events: list[dict[str, Any]]) -> None:
    records = [
        FeedbackRecord(
            event_id=e["event_id"],
            event={"user_id": subject, **e},
            item_id=e["item_id"],
            positive=e["type"] != "dislike",
        )
        for e in events
    ]
    assert all(memory.record_feedback(subject, records, eta=0.2))
    time.sleep(0.005)  # a read reads up to the Redis clock minus 1 ms


def _rank(box: Toolbox, history: History, item: int) -> int:
    scores = box.model.score([history])[0]
    return int((scores > scores[item]).sum())


def test_feedback_events_fold_into_the_collaborative_model(
    redis_client: redis.Redis, demo: Dataset, fitted: Toolbox
) -> None:
    memory = ShortTermMemory(redis_client)
    a, b = _pair(demo)
    ida, idb = demo.item_ids[a], demo.item_ids[b]
    for n in range(40):
        _log_events(
            memory,
            f"fan{n:02d}",
            [
                {"event_id": f"f{n}-1", "type": "like", "item_id": ida, "timestamp": 2e9 + n},
                {"event_id": f"f{n}-2", "type": "click", "item_id": idb, "timestamp": 2e9 + n + 1},
                {"event_id": f"f{n}-3", "type": "view", "item_id": demo.item_ids[0]},
            ],
        )
    known = demo.user_ids[0]
    _log_events(
        memory,
        known,
        [
            {"event_id": "k-1", "type": "rating", "item_id": idb, "value": 5.0},
            {"event_id": "k-2", "type": "rating", "item_id": ida, "value": 4.0},
            {"event_id": "k-3", "type": "rating", "item_id": ida, "value": 1.0},
        ],
    )
    log = read_events(redis_client, [], 0)
    assert log.new_events == 123 and log.positive == 82 and log.removed == 1
    pairs = {(r.user_id, r.item_id) for r in log.rows}
    assert (known, idb) in pairs and (known, ida) not in pairs  # the 1-star rating withdrew it
    assert len(log.rows) == 81 and all(r.item_id in (ida, idb) for r in log.rows)
    assert {r.rating for r in log.rows if r.user_id == known} == {5.0}

    learned = ts.fit_toolbox(demo, log.rows)
    assert _state(learned).train.n_users == demo.n_users + 40
    assert learned.train.n_users == demo.n_users  # histories stay the catalog's
    assert learned.history_of(known).items.tolist() == fitted.history_of(known).items.tolist()
    before, after = _rank(fitted, History.of([a]), b), _rank(learned, History.of([a]), b)
    assert after < before and after < 10, (before, after)

    # the next read takes only what was logged since, on top of the rows folded before
    again = read_events(redis_client, log.rows, log.until_ms)
    assert again.new_events == 0 and again.rows == log.rows
    _log_events(memory, "fan00", [{"event_id": "f0-4", "type": "dislike", "item_id": idb}])
    later = read_events(redis_client, log.rows, log.until_ms)
    assert later.new_events == 1 and later.removed == 1 and len(later.rows) == 80


def test_train_cli_with_events_keeps_a_cursor_in_the_manifest(
    redis_server: EmbeddedRedis,
    redis_client: redis.Redis,
    demo: Dataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGENTREC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTREC_MODEL_DIR", raising=False)
    monkeypatch.delenv("AGENTREC_CATALOG", raising=False)
    url = redis_server.url
    memory = ShortTermMemory(redis_client)
    a, b = _pair(demo)
    for n in range(5):
        _log_events(
            memory,
            f"visitor{n}",
            [
                {"event_id": f"v{n}-1", "type": "purchase", "item_id": demo.item_ids[a]},
                {"event_id": f"v{n}-2", "type": "like", "item_id": demo.item_ids[b]},
            ],
        )
    assert main(["train", "--events", "--redis-url", url]) == 0
    first = artifacts.versions(tmp_path / "models" / "demo")[-1]
    feedback = artifacts.read_manifest(first)["feedback"]
    assert feedback["new_events"] == 10 and feedback["rows"] == 10
    assert feedback["users_added"] == 5 and feedback["previous_artifact"] is None
    assert len(ts.read_feedback(first)) == 10
    assert "10 new since the start of the log" in capsys.readouterr().out

    assert main(["train", "--events", "--redis-url", url, "--keep", "1"]) == 0
    (second,) = artifacts.versions(tmp_path / "models" / "demo")
    feedback = artifacts.read_manifest(second)["feedback"]
    assert feedback["new_events"] == 0 and feedback["carried_rows"] == 10
    assert feedback["rows"] == 10 and feedback["previous_artifact"] == first.name
    box = ts.load_toolbox(second, demo)
    assert _state(box).train.n_users == demo.n_users + 5


# -- the command line ------------------------------------------------------------------------


def test_train_cli_writes_an_artifact_the_service_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTREC_DATA_DIR", str(tmp_path))
    for name in ("AGENTREC_MODEL_DIR", "AGENTREC_CATALOG", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["train"]) == 0
    out = capsys.readouterr().out
    assert "Fitting the default model on 6,901 interactions" in out
    (folder,) = artifacts.versions(tmp_path / "models" / "demo")
    manifest = artifacts.read_manifest(folder)
    assert manifest["catalog"] == "demo" and manifest["fit_s"] > 0
    assert str(folder) in out
    box = ts.load_or_build_toolbox(Settings(), "demo")
    assert box.artifact == folder.name

    store = tmp_path / "elsewhere"
    assert main(["train", "--catalog", "demo", "--model-dir", str(store)]) == 0
    assert len(artifacts.versions(store / "demo")) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--catalog", "nothing-here"], "unknown catalog 'nothing-here'"),
        (["train", "--catalog", "../escape"], "bad catalog name"),
        (["train", "--keep", "-1"], "--keep must be 0 or more"),
        (["train", "--events"], "--events needs the Redis"),
    ],
)
def test_train_cli_bad_input_is_one_error_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AGENTREC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("agentrec: error: ") and message in err[0]
    assert not (tmp_path / "models").exists()
