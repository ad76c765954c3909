"""`agentrec data info`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.cli import main
from tests.recdata.data_files import FAKE_ITEMS, FAKE_RATINGS, write, write_ml100k


def info(*argv: str) -> int:
    return main(["data", "info", *argv])


def test_info_prints_counts_and_ranges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_ml100k(tmp_path / "ml-100k")
    assert info(str(folder), "--format", "movielens-100k") == 0
    out = capsys.readouterr().out
    users = {u for u, *_ in FAKE_RATINGS}
    ratings = [r for *_, r, _ in FAKE_RATINGS]
    times = [t for *_, t in FAKE_RATINGS]
    assert f"users:        {len(users)}" in out
    assert f"items:        {len(FAKE_ITEMS)}" in out
    assert f"interactions: {len(FAKE_RATINGS)}" in out
    assert f"ratings:      {min(ratings)} to {max(ratings)}" in out
    first = datetime.fromtimestamp(min(times), UTC).strftime("%Y-%m-%d %H:%M:%S")
    last = datetime.fromtimestamp(max(times), UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{first} UTC to {last} UTC" in out
    assert "genres" in out


def test_info_on_implicit_csv_with_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "d" / "interactions.tsv", "who\twhat\na\tx\nb\tx\nb\ty\n")
    assert info(str(tmp_path / "d"), "--format", "csv", "--columns", "who,what") == 0
    out = capsys.readouterr().out
    assert "users:        2" in out and "items:        2" in out
    assert "interactions: 3" in out
    assert "none (implicit feedback)" in out and "none (file order)" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--format", "movielens-100k"], "folder not found"),
        (["--format", "netflix"], "formats: movielens-100k, movielens-csv, csv"),
        (["--format", "csv", "--columns", "only"], "found 1 names"),
    ],
)
def test_info_user_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert info(str(tmp_path / "absent"), *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentrec: error:") and words in err
    assert "Traceback" not in err
