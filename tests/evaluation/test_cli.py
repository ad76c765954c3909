"""`agentrec eval` end to end on a small CSV dataset written to a temporary folder."""

from __future__ import annotations

import json
import shlex
import sys
import types
from pathlib import Path

import pytest

from app.cli import main
from tests.evaluation.synthetic import taste_groups


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = taste_groups(n_users=60, n_items=40, per_user=15)
    folder = tmp_path_factory.mktemp("taste")
    inter = data.interactions
    lines = ["user,item,rating,timestamp"] + [
        f"{data.user_ids[u]},{data.item_ids[i]},{r:g},{t}"
        for u, i, r, t in zip(inter.user, inter.item, inter.rating, inter.timestamp, strict=True)
    ]
    (folder / "interactions.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_macrec_writes_table_json_and_plot(
    csv_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_png = tmp_path / "result.json", tmp_path / "result.png"
    argv = ["eval", "--data", str(csv_folder), "--format", "csv", "--protocol", "macrec"]
    argv += ["--models", "random,pop", "--json", str(out_json), "--plot", str(out_png)]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    for text in ("random", "pop", "HR@1", "NDCG@5", "seconds", "macrec"):
        assert text in out
    body = json.loads(out_json.read_text())
    assert body["protocol"] == "macrec" and body["split"] == "test" and body["seed"] == 2024
    assert body["command"] == shlex.join(["agentrec", *argv])  # how to reproduce it
    assert set(body["code"]) == {"package", "git_commit", "git_dirty"}
    assert set(body["dataset"]) >= {"users", "items", "interactions", "test_cases"}
    assert body["dataset"]["users"] == 60 and body["dataset"]["test_cases"] > 0
    assert list(body["results"]) == ["random", "pop"]
    assert list(body["results"]["pop"]) == ["HR@1", "HR@3", "HR@5", "NDCG@1", "NDCG@3", "NDCG@5"]
    assert set(body["seconds"]) == {"random", "pop"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_full_and_rate_on_dev(
    csv_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for protocol, models, keys in (
        ("full", "pop", ["HR@10", "NDCG@10", "Recall@10", "MRR"]),
        ("rate", "mean,pop", ["RMSE", "MAE"]),
    ):
        out_json = tmp_path / f"{protocol}.json"
        argv = ["eval", "--data", str(csv_folder), "--format", "csv", "--protocol", protocol]
        argv += ["--models", models, "--split", "dev", "--json", str(out_json)]
        code, out, err = run(argv, capsys)
        assert code == 0, err
        body = json.loads(out_json.read_text())
        assert body["split"] == "dev"
        assert list(body["results"]) == models.split(",")
        assert all(list(m) == keys for m in body["results"].values())
        assert "dev split" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models", "pop,nope"], "unknown model 'nope'"),
        (["--format", "parquet"], "unknown dataset format 'parquet'"),
        (["--protocol", "auc"], "unknown protocol 'auc'"),
        (["--split", "train"], "unknown split 'train'"),
        (["--json", "/nonexistent-folder/x.json"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_with_status_2(
    csv_folder: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--data", str(csv_folder), "--format", "csv", "--models", "pop", *extra]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_data_path_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["eval", "--data", str(tmp_path / "absent"), "--format", "csv"], capsys)
    assert code == 2 and "absent" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["eval", "--data", str(tmp_path)], capsys)
    assert code == 2 and "--format is required" in err


def test_demo_data_is_loaded_from_recdata_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = types.ModuleType("recdata.demo")
    demo.load_demo = lambda: taste_groups(n_users=30, n_items=30, per_user=10)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "recdata.demo", demo)
    code, out, err = run(["eval", "--data", "demo", "--models", "pop"], capsys)
    assert code == 0, err
    assert "taste-groups" in out
