"""Chat with LLM brains against the OpenAI-compatible fake server (real HTTP): the LLM reads
the whole conversation, and what it proposes stays grounded."""

from __future__ import annotations

import json
import re
from typing import Any

from agents.context import Context
from agents.reply import display_title
from agents.toolbox import Toolbox, get_toolbox
from graphs.recommend import graph
from tests.fakes.openai_server import FakeOpenAIServer, Reply, answer_by_schema

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


# ---- the reply written by the model ---------------------------------------------------------

ANSWERS: dict[str, Any] = {
    "IntentDraft": {**INTENT, "reference_items": []},
    "ProfileDraft": {"summary": "Likes comedies.", "affinities": []},
    "ReviewDraft": {"accept": True, "problems": [], "suggestions": [], "item_ids": []},
}


def _reply_writer(write: Any) -> Any:
    """A responder: the structured calls by schema (notes and a ranking of the candidate ids
    the request gives), the streamed reply by `write(titles)`, the titles being the
    recommendations the request gives the model."""

    def respond(request: Any) -> Reply:
        text = str(request.body["messages"][-1]["content"])
        name = request.schema_name
        if name is None:
            payload = json.loads(text.split("<data>", 1)[1].rsplit("</data>", 1)[0])
            return Reply.text(write([r["title"] for r in payload["recommendations"]]))
        ids = list(dict.fromkeys(re.findall(r'"id": ?"([^"]+)"', text)))
        if name == "ItemInsightBatch":
            return Reply.structured({"items": [{"item_id": i, "summary": "Fun."} for i in ids]})
        if name == "RerankAnswer":
            items = [{"item_id": i, "explanation": "A laugh."} for i in ids]
            return Reply.structured({"items": items})
        return Reply.structured(ANSWERS[name])

    return respond


def _all_llm(server: FakeOpenAIServer) -> Context:
    model = "openai:fake-model"
    return Context(
        user_analyst_model=model,
        searcher_model=model,
        item_analyst_model=model,
        ranker_model=model,
        reflector_model=model,
        reply_model=model,
        base_url=server.base_url,
        llm_max_retries=0,
    )


def _chat(context: Context, **payload: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for mode, part in untyped_graph.stream(
        {"task": "chat", **payload}, context=context, stream_mode=["custom", "values"]
    ):
        if mode == "custom":
            events.append(part)
        else:
            out = part
    return out, events


def test_the_reply_is_written_by_the_model_streamed_and_within_budget(
    server: FakeOpenAIServer,
) -> None:
    server.responder = _reply_writer(
        lambda titles: f"Comedy it is! Start with {titles[0]}, then {titles[1]}. Enjoy."
    )
    out, events = _chat(_all_llm(server), message="a funny film please", count=5)
    titles = [display_title(get_toolbox("demo"), r.item_id) for r in out["recommendations"]]
    assert out["reply"] == f"Comedy it is! Start with {titles[0]}, then {titles[1]}. Enjoy."
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert "".join(tokens) == out["reply"] and len(tokens) > 5  # as the model streamed it
    assert out["messages"][-1].text == out["reply"]
    assert out["degraded"] == []
    usage = out["usage"]
    calls = sum(u["calls"] for u in usage.values())
    assert calls == len(server.chat_requests()) <= 6
    stages = [set(e["args"]["next"]) for e in events if e.get("tool") == "route"]
    round_trips = sum(1 for stage in stages if stage & set(usage)) + ("Reply" in usage)
    assert round_trips <= 4, (stages, usage)
    assert {"UserAnalyst", "Searcher"} in stages  # asked side by side
    assert "Reflector" not in usage  # the reply's check stands in for the LLM review


def test_a_reply_naming_anything_else_is_replaced_by_the_offline_one(
    server: FakeOpenAIServer,
) -> None:
    server.responder = _reply_writer(lambda titles: f"Watch {titles[0]} or Titanic (1997)!")
    out, events = _chat(_all_llm(server), message="a funny film please", count=5)
    assert "Titanic" not in out["reply"] and out["reply"]
    assert "Reply" in out["degraded"]
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert "".join(tokens) == out["reply"]  # nothing of the rejected reply was shown
    errors = [e for e in events if e["type"] == "error"]
    assert errors and errors[0]["recoverable"] and "Titanic" in errors[0]["message"]


def test_a_failing_reply_model_falls_back(server: FakeOpenAIServer) -> None:
    server.responder = None
    server.default = Reply.error(500, "down")
    context = Context(reply_model="openai:fake-model", base_url=server.base_url)
    out, _ = _chat(context, message="a western", count=3)
    assert out["reply"] and len(out["recommendations"]) == 3
    assert out["degraded"] == ["Reply"]
    assert out["usage"]["Reply"]["failed_calls"] == 1
