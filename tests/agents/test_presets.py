from __future__ import annotations

from pathlib import Path

import pytest

from agents.context import PRESETS_DIR, Context
from core.errors import ConfigError


@pytest.mark.parametrize("name", ["offline", "openai", "local"])
def test_every_preset_loads(name: str) -> None:
    context = Context.from_preset(name)
    assert isinstance(context, Context)


def test_offline_preset_uses_no_llm_and_openai_preset_does() -> None:
    offline = Context.from_preset("offline")
    agents = ("Manager", "UserAnalyst", "ItemAnalyst", "Searcher", "Ranker", "Reflector")
    assert all(offline.model_for(a) == "" for a in agents)
    openai = Context.from_preset("openai")
    assert openai.model_for("Ranker").startswith("openai:")
    assert openai.model_for("Manager") == ""  # the plan stays fixed: bounded LLM cost


def test_overrides_win_and_bad_presets_are_clear(tmp_path: Path) -> None:
    assert Context.from_preset("local", base_url="http://127.0.0.1:9/v1").base_url.endswith("9/v1")
    with pytest.raises(ConfigError, match="known presets"):
        Context.from_preset("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[context]\nnot_a_field = 1\n")
    with pytest.raises(ConfigError, match="not_a_field"):
        Context.from_preset(str(bad))
    assert PRESETS_DIR.is_dir()
