from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "chat", "serve", "ingest", "eval", "data"):
        assert command in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_chat_streams_replies_and_takes_feedback(tmp_path: Path) -> None:
    lines = "something funny from the 90s\n/dislike 1\n/like 99\nsomething funny\n/quit\n"
    env = {**os.environ, "AGENTREC_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "chat", "--user", "u001"],
        input=lines, env=env, capture_output=True, text=True, timeout=180,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    replies = [line for line in done.stdout.splitlines() if line.startswith("agentrec> ")]
    assert len(replies) == 2 and all(len(r) > len("agentrec> ") for r in replies)
    noted = next(line for line in done.stdout.splitlines() if line.startswith("noted: "))
    disliked = noted.removeprefix("noted: you dislike ")
    assert "say /like N with N between 1 and" in done.stdout
    assert f"{disliked} (" not in replies[1]  # replies name their picks as "Title (year)"
