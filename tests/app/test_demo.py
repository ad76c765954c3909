from __future__ import annotations

import pytest

from agents.toolbox import get_toolbox
from app.cli import main
from recdata.demo import DEMO_USER_ID


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_demo_streams_the_agents_and_ranked_titles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--count", "3"]) == 0
    out = _flat(capsys.readouterr().out)
    assert f"User {DEMO_USER_ID}" in out and "Top 3" in out
    for agent in ("Manager", "UserAnalyst", "Searcher", "ItemAnalyst", "Ranker", "Reflector"):
        assert agent in out
    assert out.index("Searcher") < out.index("Top 3")  # the trace streams before the answer
    box = get_toolbox("demo")
    assert any(it.title in out.split("Top 3")[1] for it in box.dataset.items)
    assert "review accepted" in out


def test_demo_chat_message_gets_a_reply(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--count", "3", "--message", "something funny from the 80s"]) == 0
    out = _flat(capsys.readouterr().out)
    assert "agentrec: Something funny" in out or "agentrec: A comedy" in out
    assert "My top pick is" in out


def test_demo_unknown_genre_and_bad_count_are_clear_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--genre", "Polka"]) == 2
    assert "unknown genre(s) polka" in capsys.readouterr().err
    assert main(["demo", "--count", "0"]) == 2
    assert "--count must be between 1 and 50" in capsys.readouterr().err
