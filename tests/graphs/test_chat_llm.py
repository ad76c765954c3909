"""Chat with LLM brains against the OpenAI-compatible fake server (real HTTP): the LLM reads
the whole conversation, and what it proposes stays grounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agents.context import Context
from agents.llm_brains import clear_model_cache
from agents.toolbox import Toolbox, get_toolbox
from graphs.recommend import graph
from tests.fakes.openai_server import FakeOpenAIServer, answer_by_schema

untyped_graph: Any = graph

INTENT = {
    "wanted": [{"attribute": "genres", "value": "Comedy"}],
    "unwanted": [],
    "reference_items": ["Alien"],
    "year_min": None,
    "year_max": None,
    "count": 5,
    "keywords": [],
    "needs_clarification": False,
    "clarifying_question": None,
}


@pytest.fixture()
def server() -> Iterator[FakeOpenAIServer]:
    clear_model_cache()
    with FakeOpenAIServer() as fake:
        yield fake
    clear_model_cache()


@pytest.fixture(scope="module")
def box() -> Toolbox:
    return get_toolbox("demo")


def test_the_llm_intent_reads_the_whole_conversation(
    server: FakeOpenAIServer, box: Toolbox
) -> None:
    server.responder = answer_by_schema({"IntentDraft": INTENT})
    context = Context(
        searcher_model="openai:fake-model", base_url=server.base_url, llm_max_retries=0
    )
    messages = [
        {"role": "user", "content": "I loved Alien"},
        {"role": "assistant", "content": "Have you seen Aliens?"},
        {"role": "user", "content": "yes, now something funny please"},
    ]
    out = untyped_graph.invoke({"task": "chat", "messages": messages}, context=context)
    [request] = server.chat_requests()
    sent = str(request.body["messages"])
    assert "user: I loved Alien" in sent and "assistant: Have you seen Aliens?" in sent
    assert "user: yes, now something funny please" in sent
    ids = [r.item_id for r in out["recommendations"]]
    assert len(ids) == 5 and not {"alien-1979", "aliens-1986"} & set(ids)
    for item_id in ids:
        assert "Comedy" in box.dataset.items[box.dataset.item_index[item_id]].attributes["genres"]
    assert out["degraded"] == []
