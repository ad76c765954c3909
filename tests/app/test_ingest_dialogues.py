"""`agentrec ingest --dialogues`: logged conversations ingested beside a catalog (their
mention and co-mention counts), kept by the saved catalog, given to every toolbox loaded
from it (served, fitted, trained into an artifact) and read by the chat's Searcher; a bad
dialogue file is one line and exit status 2 (the API: a 422 with a message)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from agents import toolbox_store as ts
from agents.context import Context
from agents.toolbox import Toolbox, register_toolbox, unregister_toolbox
from app.main import create_app
from app.service import RunRequest, Service
from core.settings import Settings
from graphs.recommend import build_graph
from memory.redis_server import EmbeddedRedis
from recdata.dataset import Item
from recdata.loaders import load_dataset
from recdata.store import load_catalog, load_catalog_dialogues
from tools.dialogue_stats import DialogueStats, fit_dialogue_file

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
ML_LATEST_SMALL = SHARED / "ml-latest-small"
REDIAL_TRAIN = SHARED / "redial" / "train_data.jsonl"

MOVIES = [
    ("1", "Quiet Harbour (2001)"),
    ("2", "Loud Mountain (2003)"),
    ("3", "Paper Lanterns (1998)"),
    ("4", "Glass Orchard (2005)"),
    ("5", "Silver Fields (2007)"),
    ("6", "Copper Road (2010)"),
]
RATINGS_PER_MOVIE = {"1": 6, "2": 5, "3": 5, "4": 5, "5": 5, "6": 3}
"""Copper Road (6) is the least rated: only the dialogues put it first after Quiet Harbour."""
DIALOGUE_MENTIONS = [
    {"10": "Quiet Harbour (2001)", "11": "Copper Road"},
    {"10": "Quiet Harbour", "11": "Copper Road (2010)", "12": "Nowhere Film (1990)"},
    {"13": "Loud Mountain (2003)", "14": "Paper Lanterns"},
]
"""Mentions as ReDial types them: 7 mentions, 6 map (Nowhere Film is not in the catalog)."""


def redial_line(number: int, mentions: dict[str, str]) -> str:
    ids = list(mentions)
    messages = [
        {"messageId": 1, "text": "hi, any movie like @" + ids[0] + "?", "senderWorkerId": 1},
        {"messageId": 2, "text": " ".join(f"@{i}" for i in ids[1:]), "senderWorkerId": 2},
    ]
    record = {
        "conversationId": str(number),
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "messages": messages,
        "movieMentions": mentions,
        "initiatorQuestions": [],
        "respondentQuestions": [],
    }
    return json.dumps(record)


@pytest.fixture()
def upload(tmp_path: Path) -> Path:
    """A MovieLens-CSV folder (six dramas, all rated alike) and a ReDial dialogue file."""
    folder = tmp_path / "upload"
    folder.mkdir()
    movies = "".join(f'{i},"{t}",Drama\n' for i, t in MOVIES)
    (folder / "movies.csv").write_text("movieId,title,genres\n" + movies, encoding="utf-8")
    rows = [
        f"{user},{movie},4.0,{1000 + 10 * user}\n"
        for movie, n in RATINGS_PER_MOVIE.items()
        for user in range(1, n + 1)
    ]
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "".join(rows), encoding="utf-8"
    )
    lines = [redial_line(n, mentions) for n, mentions in enumerate(DIALOGUE_MENTIONS)]
    (tmp_path / "dialogues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def ingest(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTREC_DATA_DIR": str(data_dir)}
    env.pop("CHROMA_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def settings_for(data_dir: Path, redis: EmbeddedRedis, **extra: Any) -> Settings:
    settings = Settings(_env_file=None, data_dir=data_dir, redis_url=redis.url, **extra)  # type: ignore[call-arg]
    settings.catalog = "films"
    return settings


def dense(stats: DialogueStats) -> np.ndarray:
    out = np.zeros((stats.n_items, stats.n_items))
    for row in range(stats.n_items):
        lo, hi = stats.indptr[row], stats.indptr[row + 1]
        out[row, stats.indices[lo:hi]] = stats.counts[lo:hi]
    return out


def same_counts(a: DialogueStats | None, b: DialogueStats) -> bool:
    return (
        a is not None
        and a.n_dialogues == b.n_dialogues
        and np.array_equal(a.mentions, b.mentions)
        and np.array_equal(dense(a), dense(b))
    )


def expected_stats(upload: Path) -> DialogueStats:
    catalog = load_dataset(upload, "movielens-csv")
    return fit_dialogue_file(upload.parent / "dialogues.jsonl", catalog)[0]


def test_ingest_saves_the_dialogue_statistics_with_the_catalog(
    tmp_path: Path, upload: Path
) -> None:
    data = tmp_path / "data"
    dialogues = str(upload.parent / "dialogues.jsonl")
    done = ingest(data, str(upload), "--format", "movielens-csv", "--name", "films",
                  "--dialogues", dialogues, "--no-index")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Dialogues: 3; 6 of 7 movie mentions mapped to the catalog (85.7% coverage)" in (
        done.stdout
    )
    catalog = load_catalog(data, "films")
    arrays = load_catalog_dialogues(data, "films")
    assert arrays is not None
    stats = DialogueStats.for_catalog(arrays, catalog)
    assert same_counts(stats, expected_stats(upload))
    index = catalog.item_index
    assert stats.mentions[index["1"]] == 2 and stats.mentions[index["6"]] == 2
    assert stats.co_mentions([index["1"]])[index["6"]] == 2  # Quiet Harbour with Copper Road
    # ingesting again without dialogues writes a catalog without them
    done = ingest(data, str(upload), "--format", "movielens-csv", "--name", "films", "--no-index")
    assert done.returncode == 0, done.stderr
    assert load_catalog_dialogues(data, "films") is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("this is not json\n", "line 1: not JSON"),
        ('{"conversationId": "1"}\n', "line 1: not a ReDial dialogue: missing 'messages'"),
        ("\n\n", "holds no dialogues"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_a_bad_dialogue_file_is_one_line_and_exit_status_2(
    tmp_path: Path, upload: Path, content: str | bytes | None, problem: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content, encoding="utf-8")
    data = tmp_path / "data"
    done = ingest(data, str(upload), "--format", "movielens-csv", "--name", "films",
                  "--dialogues", str(bad), "--no-index")  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentrec: error: ")
    assert problem in lines[0] and str(bad) in lines[0]
    assert not (data / "catalogs" / "films").exists()  # nothing saved


def test_a_served_chat_suggests_what_the_dialogues_mention_together(
    tmp_path: Path, upload: Path, redis_server: EmbeddedRedis
) -> None:
    data = tmp_path / "data"
    done = ingest(data, str(upload), "--format", "movielens-csv", "--name", "films",
                  "--dialogues", str(upload.parent / "dialogues.jsonl"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = expected_stats(upload)
    chat = RunRequest(task="chat", message="I loved Quiet Harbour, what else?", count=3)
    with Service(settings_for(data, redis_server, model_artifacts="off")) as service:
        box = service.toolbox()
        assert same_counts(box.dialogues, expected)
        answer = asyncio.run(service.run(chat)).output["recommendations"]
        assert answer[0]["item_id"] == "6"  # Copper Road: the least rated, co-mentioned twice
        # a changed item keeps the statistics; so does the saved catalog
        renamed = Item("4", "Glass Garden (2005)", {"genres": ("Drama",)})
        assert service.upsert_item(renamed) is False
        assert same_counts(service.toolbox().dialogues, expected)
        # a new item refits: the statistics follow the items, the new one has none
        assert service.upsert_item(Item("99", "Brand New (2024)", {"genres": ("Drama",)}))
        served = service.toolbox()
        assert served.dialogues is not None and served.dataset.n_items == 7
        answer = asyncio.run(service.run(chat)).output["recommendations"]
        assert answer[0]["item_id"] == "6"
    assert load_catalog_dialogues(data, "films") is not None
    # the same catalog without the dialogues: the least rated title is not first
    register_toolbox("films-no-dialogues", Toolbox.build(load_dataset(upload, "movielens-csv")))
    try:
        app: Any = build_graph().compile()  # runs take dicts, as Studio sends them
        plain = app.invoke(
            {"task": "chat", "message": chat.message, "count": 3},
            context=Context(catalog="films-no-dialogues"),
        )
    finally:
        unregister_toolbox("films-no-dialogues")
    assert plain["recommendations"][0].item_id != "6"


def test_an_artifact_trained_from_the_catalog_keeps_the_statistics(
    tmp_path: Path, upload: Path, redis_server: EmbeddedRedis
) -> None:
    data = tmp_path / "data"
    done = ingest(data, str(upload), "--format", "movielens-csv", "--name", "films",
                  "--dialogues", str(upload.parent / "dialogues.jsonl"), "--no-index")  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "AGENTREC_DATA_DIR": str(data)}
    trained = subprocess.run(
        [sys.executable, "-m", "app.cli", "train", "--catalog", "films"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "dialogue statistics: 3 dialogues, 4 items mentioned" in trained.stdout
    expected = expected_stats(upload)
    settings = settings_for(data, redis_server, model_artifacts="require")
    catalog = load_catalog(data, "films")
    folder, _ = ts.find_artifact(ts.model_store(settings), "films", catalog)
    assert folder is not None
    assert same_counts(ts.load_toolbox(folder, catalog).dialogues, expected)
    box = ts.load_or_build_toolbox(settings, "films")
    assert box.artifact == folder.name and same_counts(box.dialogues, expected)


def test_the_admin_ingest_route_takes_a_dialogue_file(
    tmp_path: Path, upload: Path, redis_server: EmbeddedRedis
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        redis_url=redis_server.url,
        api_keys="",
        rate_limit_per_minute=0,
    )
    body = {"path": str(upload), "format": "movielens-csv", "name": "other"}

    async def post(app: Any, payload: dict[str, Any]) -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.post("/v1/admin/ingest", json=payload)

    with Service(settings) as service:
        app = create_app(settings, service=service)
        missing = asyncio.run(post(app, {**body, "dialogues": str(tmp_path / "none.jsonl")}))
        assert missing.status_code == 422, missing.text
        assert "no such file" in missing.json()["error"]["message"]
        bad = tmp_path / "bad.jsonl"
        bad.write_text("[1, 2]\n", encoding="utf-8")
        malformed = asyncio.run(post(app, {**body, "dialogues": str(bad)}))
        assert malformed.status_code == 422, malformed.text
        assert "line 1: not a ReDial dialogue" in malformed.json()["error"]["message"]
        assert not (tmp_path / "data" / "catalogs" / "other").exists()
        good = asyncio.run(post(app, {**body, "dialogues": str(upload.parent / "dialogues.jsonl")}))
        assert good.status_code == 200, good.text
        assert good.json()["dialogues"] == {
            "dialogues": 3, "mentions": 7, "mapped": 6, "coverage": 0.8571, "items": 4
        }  # fmt: skip
        assert good.json()["active"] is False
    arrays = load_catalog_dialogues(tmp_path / "data", "other")
    assert arrays is not None
    stats = DialogueStats.for_catalog(arrays, load_catalog(tmp_path / "data", "other"))
    assert same_counts(stats, expected_stats(upload))


@pytest.mark.skipif(
    not (ML_LATEST_SMALL / "movies.csv").is_file() or not REDIAL_TRAIN.is_file(),
    reason="needs ../shared/data/ml-latest-small and ../shared/data/redial (not in the repo)",
)
def test_ingest_ml_latest_small_with_redial_training_dialogues(tmp_path: Path) -> None:
    few = tmp_path / "train_50.jsonl"
    with REDIAL_TRAIN.open(encoding="utf-8") as lines:
        few.write_text("".join(next(lines) for _ in range(50)), encoding="utf-8")
    data = tmp_path / "data"
    done = ingest(data, str(ML_LATEST_SMALL), "--format", "movielens-csv", "--name", "mls",
                  "--dialogues", str(few), "--no-index")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "9,742 items" in done.stdout and "Dialogues: 50;" in done.stdout
    catalog = load_catalog(data, "mls")
    arrays = load_catalog_dialogues(data, "mls")
    assert arrays is not None
    stats = DialogueStats.for_catalog(arrays, catalog)
    expected, coverage = fit_dialogue_file(few, catalog)
    assert same_counts(stats, expected)
    assert f"({coverage.coverage:.1%} coverage)" in done.stdout
    assert coverage.coverage > 0.5 and stats.n_dialogues == 50
