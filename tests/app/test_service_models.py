"""The service starts on the newest model artifact of its catalog (memory-mapped, no fit)
and swaps in a newer one while it serves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from agents import toolbox_store as ts
from app.service import RunRequest, Service
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from recdata.demo import load_demo
from recdata.store import load_catalog, save_catalog
from tools.default import DefaultRecommender


def test_the_service_serves_a_trained_artifact_and_swaps_in_a_newer_one(
    tmp_path: Path, redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, redis_url=redis_server.url, model_reload_s=0.2
    )
    settings.catalog = "films"
    save_catalog(load_demo(), tmp_path, "films")
    store = ts.model_store(settings)
    trained = ts.fit_toolbox(load_catalog(tmp_path, "films"))
    first = ts.save_toolbox(trained, store, "films")

    def no_fit(*args: object, **kwargs: object) -> None:
        raise AssertionError("the service fitted a model although an artifact matches")

    monkeypatch.setattr(DefaultRecommender, "fit", no_fit)
    ask = RunRequest(user_id="u001", count=5)
    with Service(settings) as service:
        box = service.toolbox()
        assert box.artifact == first.name
        assert all(isinstance(m, np.memmap) for m in box.model._fitted.cf.values())  # type: ignore[attr-defined]
        before = asyncio.run(service.run(ask)).output["recommendations"]
        assert len(before) == 5
        second = ts.save_toolbox(box, store, "films")  # a loaded toolbox saves as well
        deadline = time.monotonic() + 60
        while service.toolbox().artifact != second.name and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.toolbox().artifact == second.name
        after = asyncio.run(service.run(ask)).output["recommendations"]
        assert [r["item_id"] for r in after] == [r["item_id"] for r in before]


def test_a_swapped_in_artifact_is_prepared_before_it_is_served(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, redis_url=redis_server.url, model_reload_s=0
    )
    settings.catalog = "films"
    save_catalog(load_demo(), tmp_path, "films")
    store = ts.model_store(settings)
    with Service(settings) as service:
        served = service.toolbox()
        assert "conversation_reader" in vars(served)  # built at start
        version = ts.save_toolbox(served, store, "films").name
        watcher = ts.ArtifactWatcher(store, "films", interval_s=1.0)
        assert watcher.check() == version
        swapped = service.toolbox()
        assert swapped is not served and swapped.artifact == version
        # the first chat turn after the swap finds the reader built
        assert {"conversation_reader", "years", "rating_stats"} <= set(vars(swapped))
