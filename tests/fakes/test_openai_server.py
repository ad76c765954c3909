"""The fake OpenAI server speaks the wire protocol the real clients expect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    _pieces,
    answer_by_schema,
    answer_schema_with,
    count_tokens,
)

TOOL: Any = {
    "type": "function",
    "function": {
        "name": "Pick",
        "parameters": {"type": "object", "properties": {"item_id": {"type": "string"}}},
    },
}
FORCE_PICK: Any = {"type": "function", "function": {"name": "Pick"}}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(models=("fake-a", "fake-b")) as running:
        yield running


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="dummy", max_retries=0) as sdk:
        yield sdk


def _sse_events(response: httpx.Response) -> list[Any]:
    events: list[Any] = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_models_lists_configured_names(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["fake-a", "fake-b"]


def test_text_reply_with_word_count_usage(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue(Reply.text("three little words"))
    prompt = "recommend me a film please"
    completion = client.chat.completions.create(
        model="fake-a", messages=[{"role": "user", "content": prompt}]
    )
    assert completion.choices[0].message.content == "three little words"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_tokens(prompt)
    assert completion.usage.completion_tokens == count_tokens("three little words")
    (request,) = server.chat_requests()
    assert request.model == "fake-a"
    assert request.usage == completion.usage.model_dump(
        include={"prompt_tokens", "completion_tokens", "total_tokens"}
    )
    assert request.headers["authorization"] == "Bearer dummy"


def test_structured_reply_follows_the_request_form(
    server: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    server.responder = answer_schema_with({"item_id": "42"})
    messages: Any = [{"role": "user", "content": "pick"}]
    with_tool = client.chat.completions.create(
        model="m",
        messages=messages,
        tools=[TOOL],
        tool_choice=FORCE_PICK,
    )
    call: Any = (with_tool.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "Pick"
    assert json.loads(call.function.arguments) == {"item_id": "42"}
    assert with_tool.choices[0].finish_reason == "tool_calls"

    with_format = client.chat.completions.create(
        model="m", messages=messages, response_format={"type": "json_object"}
    )
    assert json.loads(with_format.choices[0].message.content or "") == {"item_id": "42"}
    first, second = server.chat_requests()
    assert first.tool_names == ["Pick"] and first.forced_tool_name == "Pick"
    assert second.response_format_type == "json_object" and not second.tools


def test_queue_then_responder_then_default(server: FakeOpenAIServer) -> None:
    seen: list[RecordedRequest] = []

    def responder(request: RecordedRequest) -> Reply:
        seen.append(request)
        return Reply.text("from responder")

    server.enqueue(Reply.text("queued"))
    with httpx.Client(base_url=server.base_url) as http:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        answers = [http.post("/chat/completions", json=body).json() for _ in range(2)]
        server.responder = None
        answers.append(http.post("/chat/completions", json=body).json())
        server.responder = responder
        answers.append(http.post("/chat/completions", json=body).json())
    contents = [answer["choices"][0]["message"]["content"] for answer in answers]
    assert contents == ["queued", "ok", "ok", "from responder"]
    assert len(seen) == 1 and seen[0].messages == body["messages"]
    assert server.pending() == 0


@pytest.mark.parametrize(
    ("status", "error"), [(500, openai.InternalServerError), (429, openai.RateLimitError)]
)
def test_error_replies(
    server: FakeOpenAIServer, client: openai.OpenAI, status: int, error: type[Exception]
) -> None:
    server.enqueue(Reply.error(status, "scripted failure"))
    with pytest.raises(error, match="scripted failure"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert server.chat_requests()[0].status == status


def test_stream_text_chunks_and_usage_chunk(server: FakeOpenAIServer) -> None:
    text = "a short streamed answer"
    body: dict[str, Any] = {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "tell me"}],
    }
    server.enqueue(Reply.text(text))
    with (
        httpx.Client(base_url=server.base_url) as http,
        http.stream("POST", "/chat/completions", json=body) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    content = "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )
    assert content == text
    assert sum(
        1 for chunk in chunks if chunk["choices"] and chunk["choices"][0]["delta"].get("content")
    ) == count_tokens(text)
    usage_chunks = [chunk for chunk in chunks if chunk.get("usage")]
    assert len(usage_chunks) == 1 and usage_chunks[0]["choices"] == []
    assert usage_chunks[0]["usage"]["completion_tokens"] == count_tokens(text)

    server.enqueue(Reply.text(text))
    body["stream_options"] = {"include_usage": False}
    with (
        httpx.Client(base_url=server.base_url) as http,
        http.stream("POST", "/chat/completions", json=body) as response,
    ):
        assert not any(isinstance(e, dict) and e.get("usage") for e in _sse_events(response))


def test_stream_tool_call_through_the_sdk(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.enqueue(Reply.tool_call(None, {"item_id": "7", "reason": "liked similar films"}))
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "pick"}],
        tools=[TOOL],
        stream=True,
    )
    names: list[str] = []
    arguments = ""
    chunk: Any
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                if call.function and call.function.name:
                    names.append(call.function.name)
                if call.function and call.function.arguments:
                    arguments += call.function.arguments
    assert names == ["Pick"]
    assert json.loads(arguments) == {"item_id": "7", "reason": "liked similar films"}


def test_delay_makes_the_client_time_out(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply.text("late", delay_s=30))
    with (
        openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=0.2) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    # the server still answers other requests while the delayed one sleeps
    server.enqueue(Reply.text("fast"))
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as sdk:
        answer = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "y"}])
    assert answer.choices[0].message.content == "fast"


def test_unknown_route_and_bad_body(server: FakeOpenAIServer) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        assert http.post("/completions", json={}).status_code == 404
        bad = http.post("/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and "error" in bad.json()


@pytest.mark.parametrize("text", ["", "one", "two words", " lead and trail  ", "a\nb\tc"])
@pytest.mark.parametrize("words_per_piece", [1, 2, 5])
def test_pieces_join_back(text: str, words_per_piece: int) -> None:
    pieces = list(_pieces(text, words_per_piece))
    assert "".join(pieces) == text
    assert all(count_tokens(piece) <= words_per_piece for piece in pieces)


def test_answer_by_schema_picks_the_requested_schema(
    server: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    server.responder = answer_by_schema({"Pick": {"item_id": "1"}, "Verdict": {"accept": True}})
    messages: Any = [{"role": "user", "content": "go"}]
    verdict_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "Verdict", "schema": {"type": "object"}},
    }
    by_tool = client.chat.completions.create(
        model="m", messages=messages, tools=[TOOL], tool_choice=FORCE_PICK
    )
    by_format = client.chat.completions.create(
        model="m", messages=messages, response_format=verdict_format
    )
    call: Any = (by_tool.choices[0].message.tool_calls or [])[0]
    assert json.loads(call.function.arguments) == {"item_id": "1"}
    assert json.loads(by_format.choices[0].message.content or "") == {"accept": True}
    with pytest.raises(openai.BadRequestError, match="no scripted answer"):
        client.chat.completions.create(
            model="m", messages=messages, response_format={"type": "json_object"}
        )
