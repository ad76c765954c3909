"""Catalogs in the data directory: the store round trip, `agentrec ingest`, serving an
ingested catalog, and item upserts (changed and new items)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.conversation import ChatTurn
from agents.toolbox import Toolbox
from app.service import RunRequest, Service
from core.errors import ConfigError
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from recdata.dataset import Item
from recdata.demo import load_demo
from recdata.store import has_catalog, load_catalog, save_catalog

REPO = Path(__file__).resolve().parents[2]


def test_a_saved_catalog_loads_back_identical(tmp_path: Path) -> None:
    demo = load_demo()
    save_catalog(demo, tmp_path, "films")
    save_catalog(demo, tmp_path, "films")  # replacing works too
    again = load_catalog(tmp_path, "films")
    assert again.items == demo.items and again.users == demo.users
    for name in ("user", "item", "rating", "timestamp"):
        assert np.array_equal(getattr(again.interactions, name), getattr(demo.interactions, name))
    assert sorted(p.name for p in (tmp_path / "catalogs").iterdir()) == ["films"]
    with pytest.raises(ConfigError, match="no catalog"):
        load_catalog(tmp_path, "missing")
    with pytest.raises(ConfigError, match="bad catalog name"):
        save_catalog(demo, tmp_path, "../escape")


def test_ingest_cli_saves_and_indexes_a_catalog(tmp_path: Path, ml100k_path: Path) -> None:
    env = {**os.environ, "AGENTREC_DATA_DIR": str(tmp_path)}
    env.pop("CHROMA_HOST", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", str(ml100k_path), "--format",
         "movielens-100k", "--name", "ml100k"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1,682 items" in done.stdout and "AGENTREC_CATALOG=ml100k" in done.stdout
    assert has_catalog(tmp_path, "ml100k")
    assert load_catalog(tmp_path, "ml100k").n_items == 1682
    bad = subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", str(tmp_path / "nowhere"), "--format",
         "movielens-100k", "--name", "x"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "error" in bad.stderr and "Traceback" not in bad.stderr


def test_upserted_items_are_served_and_survive_a_restart(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=redis_server.url)  # type: ignore[call-arg]
    settings.catalog = "films"
    save_catalog(load_demo(), tmp_path, "films")
    with Service(settings) as service:
        first = service.toolbox().dataset.items[0]
        renamed = Item(first.item_id, "A New Title", first.attributes, first.text)
        assert service.upsert_item(renamed) is False
        brand_new = Item("zz-new-film", "Zeta Nebula", {"genres": ("Documentary-Space",)})
        assert service.upsert_item(brand_new) is True
        ds = service.toolbox().dataset
        assert ds.items[ds.item_index[first.item_id]].title == "A New Title"
        only_new = RunRequest(
            user_id="u001", count=3, filters={"include": {"genres": ["Documentary-Space"]}}
        )
        result = asyncio.run(service.run(only_new))
        assert [r["item_id"] for r in result.output["recommendations"]] == ["zz-new-film"]
        hits = service.memory.search_catalog("films", "Zeta Nebula", 3)
        assert hits[0][0] == "zz-new-film"
    with Service(settings) as again:
        ds = again.toolbox().dataset
        assert "zz-new-film" in ds.item_index
        assert ds.items[ds.item_index[first.item_id]].title == "A New Title"


def test_a_chat_s_conversation_reader_is_built_before_the_catalog_is_served(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    """What a chat's first turn would otherwise build (the title linker and the conversation
    reader: most of a second on a large catalog) is built when the service starts, and for
    the new catalog before an upserted item or an ingested catalog is served."""
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=redis_server.url)  # type: ignore[call-arg]
    settings.catalog = "films"
    save_catalog(load_demo(), tmp_path, "films")

    def named(box: Toolbox, text: str) -> list[str]:
        assert "conversation_reader" in vars(box), "the reader would be built on first use"
        reading = box.conversation_reader.read([ChatTurn("user", text)])
        return [m.item_id for m in reading.conversation.mentions]

    with Service(settings) as service:
        assert named(service.toolbox(), "I loved Alien") == ["alien-1979"]
        service.upsert_item(Item("zz-new-film", "Zeta Nebula", {"genres": ("Documentary",)}))
        assert named(service.toolbox(), "I loved Zeta Nebula") == ["zz-new-film"]
        alien = service.toolbox().dataset.items[0]
        service.upsert_item(Item(alien.item_id, "Xenomorph", alien.attributes, alien.text))
        assert named(service.toolbox(), "I loved Xenomorph") == [alien.item_id]

        folder = tmp_path / "upload"
        folder.mkdir()
        (folder / "movies.csv").write_text(
            "movieId,title,genres\n1,Quiet Harbour (2001),Drama\n2,Loud Mountain (2003),Action\n"
        )
        (folder / "ratings.csv").write_text(
            "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,3.0,200\n2,1,5.0,300\n"
        )
        assert service.ingest(str(folder), "movielens-csv")["active"] is True
        assert named(service.toolbox(), "I loved Quiet Harbour") == ["1"]
