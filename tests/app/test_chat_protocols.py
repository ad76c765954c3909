"""The chat protocols clients already speak, as adapters over the one run event stream: the
Vercel AI SDK's UI message stream (`POST /v1/chat`, `GET /v1/chat/{id}/stream`) and OpenAI
chat completions (`POST /v1/chat/completions`, `GET /v1/models`), driven here by the official
`openai` Python SDK and by httpx against a real `agentrec serve`; the adapters' mappings are
also checked event by event, with no server. (The `ai` package itself drives a chat in
tests/app/test_js_clients.py.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import TypeAdapter

from app.api.openai_compat import CompletionChunks, items_text
from app.api.ui_stream import UIMessageStream, chat_input, chat_session_id
from app.errors import ApiError
from app.schemas import ChatCompletionChunk, ChatRequest, UIMessageChunk
from app.service import ChatMessage
from tests.app.live_server import LiveServer, parse_sse_lines

UI_CHUNK = TypeAdapter(UIMessageChunk)
COMPLETION_CHUNK = TypeAdapter(ChatCompletionChunk)
ITEM = {
    "item_id": "alien-1979",
    "rank": 1,
    "score": 1.0,
    "title": "Alien",
    "explanation": "A classic.",
    "reasons": [],
    "source": "fallback",
    "properties": {},
}


# -- the adapters, event by event ------------------------------------------------------------
def run_events(
    *middle: dict[str, Any], status: str = "success", reply: str = "Hi."
) -> list[dict[str, Any]]:
    """A run's events as the service streams them (seq numbered)."""
    events = [
        {"type": "run_started", "recommendation_id": "rec1", "task": "chat", "user_id": None,
         "session_id": "s1", "context": {}},
        *middle,
        {"type": "run_finished", "recommendation_id": "rec1", "status": status,
         "output": {"recommendations": [ITEM], "degraded": [], "reply": reply, "rating": None,
                    "explanation": "", "fallback_used": True,
                    "usage": {"llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                              "by_agent": {}}}},
    ]  # fmt: skip
    return [{**e, "run_id": "r1", "seq": n, "ts": 1.0 + n} for n, e in enumerate(events, 1)]


def ui_chunks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    adapter = UIMessageStream()
    chunks = [chunk for event in events for chunk in adapter.feed(event)]
    for chunk in chunks:
        UI_CHUNK.validate_python(chunk)
    return chunks


def test_a_run_becomes_a_ui_message() -> None:
    chunks = ui_chunks(
        run_events(
            {"type": "agent_started", "agent": "Searcher"},
            {"type": "thought", "agent": "Manager", "text": "Intent: horror"},
            {"type": "action", "agent": "Searcher", "tool": "search", "args": {"pool_size": 100}},
            {"type": "candidates", "agent": "Searcher", "items": [], "total": 57},
            {"type": "error", "agent": "Ranker", "recoverable": True, "message": "LLM failed"},
            {"type": "recommendations", "agent": "Manager", "items": [ITEM]},
            {"type": "token", "agent": "Manager", "text": "Here "},
            {"type": "token", "agent": "Manager", "text": "is Alien."},
            {"type": "thought", "agent": "Manager", "text": "The task is answered."},
        )
    )
    kinds = [c["type"] for c in chunks]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert chunks[0]["messageId"] == "r1"
    assert chunks[0]["messageMetadata"] == {"run_id": "r1", "recommendation_id": "rec1"}
    reasoning = "".join(c["delta"] for c in chunks if c["type"] == "reasoning-delta")
    assert reasoning.splitlines() == [
        "Manager: Intent: horror",
        "Searcher calls search(pool_size=100)",
        "Searcher: 57 candidates",
        "Ranker: LLM failed",
        "Manager: The task is answered.",
    ]
    # every reasoning block is closed before the text, and after the last line
    assert kinds.count("reasoning-start") == kinds.count("reasoning-end") == 2
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text == "Here is Alien."
    assert kinds.count("text-start") == kinds.count("text-end") == 1
    [recommended] = [c for c in chunks if c["type"] == "data-recommendations"]
    assert recommended["data"] == {"run_id": "r1", "recommendation_id": "rec1", "items": [ITEM]}
    traces = [c for c in chunks if c["type"] == "data-trace"]
    assert [t["data"]["type"] for t in traces] == [
        "agent_started", "thought", "action", "candidates", "error", "thought",
    ]  # fmt: skip
    assert all(t["transient"] is True for t in traces)
    assert chunks[-1]["finishReason"] == "stop"
    assert chunks[-1]["messageMetadata"]["status"] == "success"


def test_a_reply_without_tokens_and_a_failed_run() -> None:
    chunks = ui_chunks(
        run_events(
            {"type": "error", "recoverable": False, "code": "unavailable", "message": "Redis"},
            status="error",
            reply="",
        )
    )
    kinds = [c["type"] for c in chunks]
    assert "error" in kinds and kinds[-1] == "finish"
    [error] = [c for c in chunks if c["type"] == "error"]
    assert error["errorText"] == "unavailable: Redis"
    assert chunks[-1]["finishReason"] == "error"
    assert "data-recommendations" in kinds  # the items of run_finished, never sent before
    quiet = ui_chunks(run_events(reply="Only the reply."))
    assert "".join(c["delta"] for c in quiet if c["type"] == "text-delta") == "Only the reply."
    cancelled = ui_chunks(
        run_events(
            {"type": "error", "recoverable": False, "code": "cancelled", "message": "stop"},
            status="error",
        )
    )
    assert [c for c in cancelled if c["type"] == "abort"] == [{"type": "abort", "reason": "stop"}]


def test_a_run_becomes_completion_chunks() -> None:
    adapter = CompletionChunks("agentrec", include_usage=True)
    events = run_events(
        {"type": "token", "agent": "Manager", "text": "Hi "},
        {"type": "token", "agent": "Manager", "text": "there."},
    )
    chunks = [chunk for event in events for chunk in adapter.feed(event)]
    for chunk in chunks:
        COMPLETION_CHUNK.validate_python(chunk)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    text = "".join(c["choices"][0]["delta"]["content"] or "" for c in chunks if c["choices"])
    assert text == "Hi there." + items_text([ITEM]) == "Hi there.\n\n1. Alien - A classic."
    finishing = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["agentrec"]["recommendations"][0]["item_id"] for c in finishing] == ["alien-1979"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 0
    failed = CompletionChunks("agentrec", False).feed(
        {"type": "error", "recoverable": False, "code": "unavailable", "message": "down"}
    )
    assert failed == [
        {"error": {"message": "down", "type": "unavailable", "code": "unavailable", "param": None}}
    ]


def test_the_last_user_message_is_the_input() -> None:
    def body(*messages: tuple[str, str]) -> ChatRequest:
        return ChatRequest.model_validate(
            {
                "id": "c1",
                "messages": [
                    {"id": f"m{n}", "role": role, "parts": [{"type": "text", "text": text}]}
                    for n, (role, text) in enumerate(messages)
                ],
            }
        )

    given = chat_input(body(("user", "a film"), ("assistant", "Alien?"), ("user", "funnier")), 100)
    assert given.message == "funnier"
    assert given.history == [ChatMessage("user", "a film"), ChatMessage("assistant", "Alien?")]
    given = chat_input(body(("system", "be brief"), ("user", "a film"), ("assistant", "")), 100)
    assert given.message == "a film" and given.history == []
    for bad in (body(("assistant", "hello")), body(("user", "  ")), body(("user", "x" * 101))):
        with pytest.raises(ApiError) as caught:
            chat_input(bad, 100)
        assert caught.value.status == 422
    assert chat_session_id("key:a", "c1") != chat_session_id("key:b", "c1")


# -- against a real server -------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("chat-protocols")) as running:
        yield running


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def ui_message(message_id: str, role: str, text: str) -> dict[str, Any]:
    return {"id": message_id, "role": role, "parts": [{"type": "text", "text": text}]}


def post_chat(
    client: httpx.Client, chat_id: str, messages: list[dict[str, Any]]
) -> tuple[httpx.Response, list[Any]]:
    """A chat turn as DefaultChatTransport posts it; the chunks (and `[DONE]`) it got."""
    body = {"id": chat_id, "messages": messages, "trigger": "submit-message", "messageId": None}
    with client.stream("POST", "/v1/chat", json=body) as response:
        response.read()
    frames = [f for f in parse_sse_lines(response.text.splitlines()) if f.is_event]
    assert all(f.event is None and f.id is None for f in frames)  # only data: lines
    return response, [f.data if f.data == "[DONE]" else json.loads(f.data or "") for f in frames]


def test_a_two_turn_chat_over_the_ui_message_stream(client: httpx.Client) -> None:
    chat_id = f"chat-{uuid.uuid4().hex[:8]}"
    messages = [ui_message("u1", "user", "a scary film")]
    replies = []
    for follow_up in ("something lighter, a comedy", None):
        response, chunks = post_chat(client, chat_id, messages)
        assert response.status_code == 200
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["content-type"].startswith("text/event-stream")
        assert chunks[-1] == "[DONE]"
        for chunk in chunks[:-1]:
            UI_CHUNK.validate_python(chunk)
        text = "".join(c["delta"] for c in chunks[:-1] if c["type"] == "text-delta")
        [recommended] = [c for c in chunks[:-1] if c["type"] == "data-recommendations"]
        titles = [i["title"] for i in recommended["data"]["items"]]
        assert text and titles and any(t in text for t in titles)
        replies.append(text)
        messages.append(
            {
                "id": chunks[0]["messageId"],
                "role": "assistant",
                "parts": [{"type": "text", "text": text}, recommended],
            }
        )
        if follow_up:
            messages.append(ui_message("u2", "user", follow_up))
    session = chat_session_id("ip:127.0.0.1", chat_id)
    turns = client.get(f"/v1/sessions/{session}").json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 2
    assert [t["text"] for t in turns if t["role"] == "assistant"] == replies
    assert client.get(f"/v1/chat/{chat_id}/stream").status_code == 204  # nothing in flight
    assert client.get("/v1/chat/never-used/stream").status_code == 204


def test_chat_input_errors_come_before_the_stream(client: httpx.Client) -> None:
    for body in (
        {"id": "c", "messages": []},
        {"id": "c", "messages": [ui_message("a", "assistant", "hello")]},
        {"id": "c", "messages": [ui_message("u", "user", "hi")], "unknown": 1},
        {"id": "bad id", "messages": [ui_message("u", "user", "hi")]},
    ):
        response = client.post("/v1/chat", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_request"


@pytest.fixture()
def sdk(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_the_openai_sdk_lists_the_models(sdk: openai.OpenAI) -> None:
    ids = [m.id for m in sdk.models.list()]
    assert ids[0] == "agentrec" and "offline" in ids
    assert sdk.models.retrieve("offline").id == "offline"


def test_the_openai_sdk_gets_a_completion(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="agentrec",
        messages=[
            {"role": "system", "content": "You recommend films."},
            {"role": "user", "content": "a scary film"},
        ],
        user="u001",
    )
    assert completion.object == "chat.completion"
    content = completion.choices[0].message.content or ""
    assert completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    items = extra["agentrec"]["recommendations"]
    assert items and extra["agentrec"]["recommendation_id"]
    for item in items:  # the grounded items, also in the text
        assert f"{item['rank']}. {item['title']}" in content
    assert completion.usage is not None and completion.usage.total_tokens == 0  # offline


def test_the_openai_sdk_streams_a_completion(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="offline",
        messages=[{"role": "user", "content": [{"type": "text", "text": "a comedy"}]}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finished, usage, ids = "", [], None, set()
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            if chunk.choices[0].finish_reason:
                finished.append(chunk)
        else:
            usage = chunk.usage
    assert len(ids) == 1 and len(finished) == 1
    items = (finished[0].model_extra or {})["agentrec"]["recommendations"]
    assert items and all(item["title"] in text for item in items)
    assert usage is not None and usage.total_tokens == 0


def test_the_openai_sdk_sees_typed_errors(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):
        sdk.chat.completions.create(
            model="agentrec", messages=[{"role": "assistant", "content": "hi"}]
        )


# -- the conversation a client sends is what the agents read ---------------------------------
SCARY = "a scary film"
SCI_FI = "a science fiction film"
SUGGESTED = ["alien-1979", "the-evil-dead-1981", "get-out-2017"]
"""Among the first answers to SCARY alone (the demo catalog)."""


def completion_ids(sdk: openai.OpenAI, *turns: tuple[str, str]) -> list[str]:
    """The items of a non-streamed completion of the conversation `turns` (role, text)."""
    messages: Any = [{"role": role, "content": text} for role, text in turns]
    completion = sdk.chat.completions.create(model="agentrec", messages=messages)
    return [i["item_id"] for i in (completion.model_extra or {})["agentrec"]["recommendations"]]


def ui_ids(client: httpx.Client, messages: list[dict[str, Any]], chat_id: str = "") -> list[str]:
    """The items of a `POST /v1/chat` turn on the conversation `messages` (a new chat)."""
    response, chunks = post_chat(client, chat_id or f"chat-{uuid.uuid4().hex[:8]}", messages)
    assert response.status_code == 200, response.text[:300]
    found = [c for c in chunks[:-1] if c["type"] == "data-recommendations"]
    return [i["item_id"] for c in found for i in c["data"]["items"]]


def ui_turns(*turns: tuple[str, str]) -> list[dict[str, Any]]:
    return [ui_message(f"m{n}", role, text) for n, (role, text) in enumerate(turns)]


def test_an_openai_client_s_earlier_turns_change_the_answer(sdk: openai.OpenAI) -> None:
    alone = completion_ids(sdk, ("user", SCARY))
    assert set(SUGGESTED) <= set(alone)
    # what the assistant already suggested (named in its text) is not suggested again
    suggestion = "How about Alien, The Evil Dead or Get Out?"
    more = completion_ids(
        sdk, ("system", "You recommend films."), ("user", SCARY), ("assistant", suggestion),
        ("user", "more please"),
    )  # fmt: skip
    assert more and not set(SUGGESTED) & set(more)
    # a title the user disliked earlier is left out; a liked one is what the answer goes by
    assert "the-matrix-1999" in completion_ids(sdk, ("user", SCI_FI))
    disliked = completion_ids(
        sdk, ("user", "I didn't like The Matrix"), ("assistant", "Noted."), ("user", SCI_FI)
    )
    assert disliked and "the-matrix-1999" not in disliked
    assert completion_ids(sdk, ("user", "what should I watch tonight?")) == []  # a question
    liked = completion_ids(
        sdk, ("user", "I loved Alien"), ("assistant", "Noted."),
        ("user", "what should I watch tonight?"),
    )  # fmt: skip
    assert {"aliens-1986", "alien-3-1992"} <= set(liked[:3])  # its sequels first


def test_an_ai_sdk_client_s_conversation_changes_the_answer(client: httpx.Client) -> None:
    alone = ui_ids(client, ui_turns(("user", SCARY)))
    assert set(SUGGESTED) <= set(alone)
    # the items of an earlier reply's data part are not suggested again, named or not
    reply = {
        "id": "r1",
        "role": "assistant",
        "parts": [
            {"type": "text", "text": "Here are three."},
            {"type": "data-recommendations", "id": "x", "data": {"items": [
                {"item_id": item} for item in SUGGESTED]}},
        ],
    }  # fmt: skip
    more = ui_ids(
        client, [ui_message("u1", "user", SCARY), reply, ui_message("u2", "user", "more")]
    )
    assert more and not set(SUGGESTED) & set(more)
    assert "the-matrix-1999" in ui_ids(client, ui_turns(("user", SCI_FI)))
    disliked = ui_ids(
        client,
        ui_turns(("user", "I didn't like The Matrix"), ("assistant", "Noted."), ("user", SCI_FI)),
    )
    assert disliked and "the-matrix-1999" not in disliked
    liked = ui_ids(
        client,
        ui_turns(("user", "I loved Alien"), ("assistant", "Noted."), ("user", "what now?")),
    )
    assert {"aliens-1986", "alien-3-1992"} <= set(liked[:3])


def test_the_client_s_conversation_replaces_the_one_a_chat_holds(client: httpx.Client) -> None:
    """A chat whose first turn the client then edits: the next turn reads the edited one
    (the session's thread held the first)."""
    chat_id = f"chat-{uuid.uuid4().hex[:8]}"
    assert set(SUGGESTED) <= set(ui_ids(client, ui_turns(("user", SCARY)), chat_id))
    edited = ui_turns(("user", SCI_FI), ("assistant", "How about The Matrix?"), ("user", "more"))
    again = ui_ids(client, edited, chat_id)
    assert again and "the-matrix-1999" not in again
    ds_genres = client.get(f"/v1/items/{again[0]}").json()["attributes"]["genres"]
    assert "Sci-Fi" in ds_genres
    # a client that sends only its last message goes on with the conversation the chat holds
    last = ui_ids(client, ui_turns(("user", "more")), chat_id)
    assert last and not {"the-matrix-1999", *again} & set(last)
