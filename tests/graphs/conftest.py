"""Fixtures shared by the graph tests: the demo toolbox and a fake OpenAI server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.llm_brains import clear_model_cache
from agents.toolbox import Toolbox, get_toolbox
from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture(scope="module")
def box() -> Toolbox:
    return get_toolbox("demo")


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    """An OpenAI-compatible server on loopback; models cached by earlier tests are dropped."""
    clear_model_cache()
    with FakeOpenAIServer() as fake:
        yield fake
    clear_model_cache()
