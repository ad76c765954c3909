"""The LLM brain plumbing, against the fake OpenAI server (real HTTP) and the scripted model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.llm import (
    NOSTREAM_TAG,
    LLMConfig,
    StructuredCaller,
    StructuredMethod,
    TokenUsage,
    UsageTracker,
    astream_text,
    build_chat_model,
    internal_config,
    stream_text,
)
from core.errors import ConfigError
from tests.fakes.chat_model import (
    ScriptedChatModel,
    malformed_tool_call,
    structured_answer,
    text_answer,
)
from tests.fakes.openai_server import FakeOpenAIServer, Reply, answer_schema_with

METHODS: tuple[StructuredMethod, ...] = ("json_schema", "function_calling", "json_mode")


class Pick(BaseModel):
    """A chosen item."""

    item_id: str
    score: float = Field(ge=0.0, le=1.0)
    reasons: list[str]


GOOD = {"item_id": "i42", "score": 0.75, "reasons": ["liked similar films", "recent"]}
MESSAGES = [SystemMessage("You pick one item."), HumanMessage("Pick an item for user u1.")]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


class Recorder:
    """Collects the backoff waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def server_config(server: FakeOpenAIServer, **overrides: Any) -> LLMConfig:
    values: dict[str, Any] = {
        "model": "openai:fake-model",
        "base_url": server.base_url,
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_s": 0.0,
    }
    values.update(overrides)
    return LLMConfig(**values)


def server_caller(
    server: FakeOpenAIServer, tracker: UsageTracker | None = None, **overrides: Any
) -> StructuredCaller:
    config = server_config(server, **overrides)
    return StructuredCaller(build_chat_model(config), config, agent="Ranker", tracker=tracker)


def server_usage(server: FakeOpenAIServer) -> TokenUsage:
    total = TokenUsage()
    for request in server.chat_requests():
        if request.usage is not None:
            total = total + TokenUsage(
                request.usage["prompt_tokens"], request.usage["completion_tokens"]
            )
    return total


# ---- against the fake server ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_structured_answer_for_each_method(server: FakeOpenAIServer, method: str) -> None:
    server.responder = answer_schema_with(GOOD)
    tracker = UsageTracker()
    result = server_caller(
        server, tracker, structured_output_method=method, temperature=0.3, max_tokens=77
    ).call(Pick, MESSAGES)

    assert result.ok and result.value == Pick.model_validate(GOOD)
    assert result.attempts == 1 and result.error is None
    (request,) = server.chat_requests()
    assert request.model == "fake-model"
    assert request.body["temperature"] == 0.3
    assert request.body.get("max_completion_tokens", request.body.get("max_tokens")) == 77
    assert not request.stream
    if method == "function_calling":
        assert request.tool_names == ["Pick"] and request.forced_tool_name == "Pick"
        assert request.response_format is None
    elif method == "json_schema":
        assert not request.tools and request.response_format_type == "json_schema"
        assert request.response_format is not None
        assert request.response_format["json_schema"]["name"] == "Pick"
        assert set(request.response_format["json_schema"]["schema"]["properties"]) == set(GOOD)
    else:
        assert not request.tools and request.response_format_type == "json_object"
        # JSON mode constrains syntax only: the schema must be in the prompt
        assert "JSON" in request.prompt_text and "reasons" in request.prompt_text
    assert result.usage == server_usage(server) and result.usage.total_tokens > 0
    assert tracker.as_dict()["Ranker"]["calls"] == 1


def _malformed(method: str) -> Reply:
    if method == "function_calling":
        return Reply.tool_call(None, '{"item_id": "i42", "score": ')
    return Reply.text('{"item_id": "i42", "score": ')


@pytest.mark.parametrize("method", METHODS)
def test_malformed_json_retries_then_fails(server: FakeOpenAIServer, method: str) -> None:
    server.default = _malformed(method)
    tracker = UsageTracker()
    result = server_caller(server, tracker, structured_output_method=method, max_retries=2).call(
        Pick, MESSAGES
    )

    assert not result.ok and result.value is None
    assert result.attempts == 3 == len(server.chat_requests())
    assert result.error and len(result.attempt_errors) == 3
    assert all(0 < len(error) <= 300 for error in result.attempt_errors)  # short, for traces
    # tokens the server billed count even when the answer was unusable
    assert result.usage == server_usage(server) and result.usage.completion_tokens > 0
    assert tracker.as_dict()["Ranker"] == {
        "calls": 3,
        "failed_calls": 3,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
    }


@pytest.mark.parametrize("method", METHODS)
def test_wrong_schema_is_a_failed_attempt(server: FakeOpenAIServer, method: str) -> None:
    out_of_range = {**GOOD, "score": 7.0}
    server.enqueue(
        Reply.structured({"title": "not a pick"}),
        Reply.structured(out_of_range),
        Reply.structured(GOOD),
    )
    result = server_caller(server, structured_output_method=method).call(Pick, MESSAGES)

    assert result.ok and result.value == Pick.model_validate(GOOD)
    assert result.attempts == 3 and len(result.attempt_errors) == 2
    assert all("item_id" in e or "score" in e for e in result.attempt_errors)


def test_server_errors_retry_with_exponential_backoff_until_recovery(
    server: FakeOpenAIServer,
) -> None:
    server.enqueue(Reply.error(500), Reply.error(429, "slow down"), Reply.error(503))
    server.default = Reply.structured(GOOD)
    recorder = Recorder()
    config = server_config(server, max_retries=3, backoff_s=0.25, backoff_max_s=0.75)
    caller = StructuredCaller(build_chat_model(config), config, sleep=recorder.sleep)
    result = caller.call(Pick, MESSAGES)

    assert result.ok and result.attempts == 4
    assert recorder.waits == [0.25, 0.5, 0.75]  # doubled, then capped
    assert [r.status for r in server.chat_requests()] == [500, 429, 503, 200]
    assert "slow down" in result.attempt_errors[1]


def test_persistent_server_error_fails_after_max_retries(server: FakeOpenAIServer) -> None:
    server.default = Reply.error(500, "model crashed")
    result = server_caller(server, max_retries=2).call(Pick, MESSAGES)

    assert not result.ok and result.attempts == 3 == len(server.chat_requests())
    assert result.error is not None and "model crashed" in result.error
    assert result.usage == TokenUsage()


@pytest.mark.parametrize("status", [400, 401, 404])
def test_errors_a_retry_cannot_fix_stop_at_once(server: FakeOpenAIServer, status: int) -> None:
    server.default = Reply.error(status)
    result = server_caller(server, max_retries=3).call(Pick, MESSAGES)

    assert not result.ok and result.attempts == 1 == len(server.chat_requests())


def test_timeout_fails_without_waiting_for_the_server(server: FakeOpenAIServer) -> None:
    server.default = Reply.structured(GOOD, delay_s=60.0)
    result = server_caller(server, timeout_s=0.3, max_retries=1).call(Pick, MESSAGES)

    assert not result.ok and result.attempts == 2 == len(server.chat_requests())
    assert result.error is not None and "Timeout" in result.error
    assert result.latency_s < 30.0  # bounded by the client timeout, not the 60 s delay


def test_fixed_latency_still_answers(server: FakeOpenAIServer) -> None:
    server.latency_s = 0.05
    server.default = Reply.structured(GOOD)
    result = server_caller(server).call(Pick, MESSAGES)
    assert result.ok and result.latency_s >= 0.05


def test_async_call_against_the_server(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply.error(500))
    server.default = Reply.structured(GOOD)
    result = asyncio.run(server_caller(server).acall(Pick, MESSAGES))
    assert result.ok and result.attempts == 2


def test_one_caller_shared_by_threads(server: FakeOpenAIServer) -> None:
    """Parallel agents (LangGraph `Send`) may share a caller and a tracker."""
    server.responder = lambda request: Reply.structured(
        {**GOOD, "item_id": request.messages[-1]["content"]}
    )
    tracker = UsageTracker()
    caller = server_caller(server, tracker)
    results: dict[str, Any] = {}

    def work(user: str) -> None:
        results[user] = caller.call(Pick, [HumanMessage(user)])

    users = [f"u{index}" for index in range(8)]
    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {user: results[user].value.item_id for user in users} == {u: u for u in users}
    assert tracker.as_dict()["Ranker"]["calls"] == 8 == len(server.chat_requests())


def test_usage_tracker_sums_what_the_server_reported(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply.structured(GOOD), Reply.text("{bad"), Reply.structured(GOOD))
    tracker = UsageTracker()
    ranker = server_caller(server, tracker)
    analyst = StructuredCaller(ranker.model, ranker.config, agent="UserAnalyst", tracker=tracker)
    assert ranker.call(Pick, MESSAGES).ok
    assert analyst.call(Pick, [HumanMessage("another, longer prompt for the analyst")]).ok

    usage = tracker.as_dict()
    assert usage["Ranker"]["calls"] == 1 and usage["UserAnalyst"]["calls"] == 2
    assert usage["UserAnalyst"]["failed_calls"] == 1
    totals = tracker.totals()
    expected = server_usage(server)
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (
        expected.prompt_tokens,
        expected.completion_tokens,
    )


@pytest.mark.parametrize("method", METHODS)
def test_internal_calls_in_a_streamed_graph_stay_plain_requests(
    server: FakeOpenAIServer, method: str
) -> None:
    """Under stream_mode="messages" internal calls still make one non-streamed request."""
    from langgraph.graph import END, START, StateGraph

    server.enqueue(Reply.text('{"item_id": '), Reply.structured(GOOD))
    tracker = UsageTracker()
    caller = server_caller(server, tracker, structured_output_method=method)
    results: list[Any] = []

    def rank(state: _GraphState) -> _GraphState:
        results.append(caller.call(Pick, MESSAGES))
        return {"pick": "done"}

    builder = StateGraph(_GraphState)
    builder.add_node("rank", rank)
    builder.add_edge(START, "rank")
    builder.add_edge("rank", END)
    events = list(builder.compile().stream({}, stream_mode="messages"))

    assert events == []
    (result,) = results
    assert result.ok and result.attempts == 2
    assert [request.stream for request in server.chat_requests()] == [False, False]
    assert result.usage == server_usage(server)


def test_stream_text_yields_chunks_and_counts_usage(server: FakeOpenAIServer) -> None:
    text = "You might enjoy Heat and Ronin, both tense crime thrillers."
    server.enqueue(Reply.text(text))
    tracker = UsageTracker()
    model = build_chat_model(server_config(server))
    chunks = list(stream_text(model, MESSAGES, tracker=tracker, agent="Manager"))

    assert len(chunks) > 1 and "".join(chunks) == text
    (request,) = server.chat_requests()
    assert request.stream and request.include_usage
    assert (
        tracker.as_dict()["Manager"]["completion_tokens"] == server_usage(server).completion_tokens
    )


def test_astream_text(server: FakeOpenAIServer) -> None:
    server.enqueue(Reply.text("two words"))
    model = build_chat_model(server_config(server))

    async def collect() -> list[str]:
        return [chunk async for chunk in astream_text(model, MESSAGES)]

    assert "".join(asyncio.run(collect())) == "two words"


def test_build_does_no_network_and_disables_sdk_retries(server: FakeOpenAIServer) -> None:
    model: Any = build_chat_model(server_config(server, timeout_s=1.5))
    assert server.requests == []
    assert model.max_retries == 0 and model.request_timeout == 1.5


def test_base_url_models_use_chat_completions(server: FakeOpenAIServer) -> None:
    """Model names langchain-openai routes to the Responses API still use chat completions."""
    server.default = Reply.text("hello")
    for name in ("gpt-5.1-codex", "qwen2.5:7b-instruct"):
        model = build_chat_model(server_config(server, model=f"openai:{name}"))
        assert model.invoke("hi").text == "hello"
        assert server.requests[-1].path.endswith("/chat/completions")
        assert server.requests[-1].model == name


def test_build_rejects_unknown_providers() -> None:
    with pytest.raises(ConfigError, match="no-such-provider"):
        build_chat_model(LLMConfig(model="no-such-provider-model"))


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        LLMConfig(structured_output_method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LLMConfig(timeout_s=0)
    config = LLMConfig(api_key="secret-key")  # type: ignore[arg-type]
    assert "secret-key" not in repr(config)


# ---- unit tests with the scripted fake chat model ---------------------------------------


def fake_caller(
    script: list[Any], method: StructuredMethod = "function_calling", **overrides: Any
) -> tuple[StructuredCaller, ScriptedChatModel, Recorder]:
    values: dict[str, Any] = {
        "max_retries": 2,
        "backoff_s": 0.1,
        "structured_output_method": method,
    }
    values.update(overrides)
    config = LLMConfig(**values)
    model = ScriptedChatModel(script=script)
    recorder = Recorder()
    caller = StructuredCaller(
        model,
        config,
        agent="Searcher",
        sleep=recorder.sleep,
        async_sleep=recorder.async_sleep,
    )
    return caller, model, recorder


@pytest.mark.parametrize("method", METHODS)
def test_fake_model_structured_for_each_method(method: StructuredMethod) -> None:
    caller, model, recorder = fake_caller([structured_answer(GOOD)], method)
    result = caller.call(Pick, MESSAGES)
    assert result.ok and result.value == Pick.model_validate(GOOD)
    assert recorder.waits == []
    (call,) = model.calls
    assert bool(call.tools) == (method == "function_calling")


def test_retries_after_exceptions_and_bad_answers() -> None:
    script = [
        RuntimeError("connection reset"),
        malformed_tool_call("Pick", '{"item_id": '),
        text_answer("no tool call at all"),
        structured_answer(GOOD),
    ]
    caller, model, recorder = fake_caller(script, max_retries=3)
    result = caller.call(Pick, MESSAGES)

    assert result.ok and result.attempts == 4 and len(model.calls) == 4
    assert recorder.waits == [0.1, 0.2, 0.4]
    assert "connection reset" in result.attempt_errors[0]
    assert "not valid JSON" in result.attempt_errors[1]


def test_failure_never_raises_and_reports_last_error() -> None:
    caller, _model, _ = fake_caller([RuntimeError("a"), ValueError("b"), TimeoutError("c")])
    result = caller.call(Pick, MESSAGES)
    assert not result.ok and result.attempts == 3
    assert result.error is not None and result.error.startswith("TimeoutError")
    assert result.attempt_errors[0].startswith("RuntimeError")


def test_zero_retries_means_one_attempt() -> None:
    caller, model, recorder = fake_caller(
        [RuntimeError("down"), structured_answer(GOOD)], max_retries=0
    )
    result = caller.call(Pick, MESSAGES)
    assert not result.ok and result.attempts == 1 and len(model.calls) == 1
    assert recorder.waits == []


def test_json_mode_parse_failure_retries() -> None:
    caller, _, _ = fake_caller(
        [text_answer("Sure! Here it is"), structured_answer(GOOD)], "json_mode"
    )
    result = caller.call(Pick, MESSAGES)
    assert result.ok and result.attempts == 2


def test_internal_calls_are_tagged_nostream() -> None:
    caller, model, _ = fake_caller([structured_answer(GOOD)])
    caller.call(Pick, MESSAGES, config={"tags": ["run-1"], "metadata": {"user": "u1"}})
    (call,) = model.calls
    assert NOSTREAM_TAG in call.tags and "run-1" in call.tags


def test_internal_config_keeps_callers_config() -> None:
    config = internal_config({"tags": ["a"], "metadata": {"k": 1}}, agent="Ranker")
    assert config["tags"] == ["a", NOSTREAM_TAG]
    assert config["metadata"] == {"k": 1, "agent": "Ranker"}
    assert internal_config(config)["tags"] == ["a", NOSTREAM_TAG]  # not duplicated


def test_async_call_with_fake_model() -> None:
    caller, _, recorder = fake_caller([RuntimeError("x"), structured_answer(GOOD)])
    result = asyncio.run(caller.acall(Pick, MESSAGES))
    assert result.ok and result.attempts == 2 and recorder.waits == [0.1]


def test_stream_text_with_fake_model() -> None:
    model = ScriptedChatModel(script=[text_answer("one two three")])
    tracker = UsageTracker()
    chunks = list(stream_text(model, MESSAGES, tracker=tracker))
    assert chunks == ["one", " two", " three"]
    assert tracker.as_dict()["llm"]["completion_tokens"] == 3
    assert NOSTREAM_TAG not in model.calls[0].tags


class _GraphState(TypedDict, total=False):
    pick: str
    reply: str


def test_langgraph_messages_stream_skips_internal_calls() -> None:
    """The point of `nostream`: the user's token stream shows the reply, not internal JSON."""
    from langgraph.graph import END, START, StateGraph

    model = ScriptedChatModel(script=[structured_answer(GOOD), text_answer("Try i42 tonight")])
    caller = StructuredCaller(model, LLMConfig(max_retries=0), agent="Ranker")

    def rank(state: _GraphState) -> _GraphState:
        result = caller.call(Pick, MESSAGES)
        assert result.value is not None
        return {"pick": result.value.item_id}

    def answer(state: _GraphState) -> _GraphState:
        return {"reply": "".join(stream_text(model, [HumanMessage(state["pick"])]))}

    builder = StateGraph(_GraphState)
    builder.add_node("rank", rank)
    builder.add_node("answer", answer)
    builder.add_edge(START, "rank")
    builder.add_edge("rank", "answer")
    builder.add_edge("answer", END)
    graph = builder.compile()

    streamed: list[tuple[str, str]] = []
    event: Any
    for event in graph.stream({}, stream_mode="messages"):
        message, metadata = event
        streamed.append((message.text, metadata["langgraph_node"]))
    assert {node for _, node in streamed} == {"answer"}
    assert "".join(text for text, _ in streamed) == "Try i42 tonight"
    assert [call.streamed for call in model.calls] == [False, True]


# ---- usage tracker ------------------------------------------------------------------------


def test_usage_tracker_is_thread_safe_and_mergeable() -> None:
    tracker = UsageTracker()

    def work() -> None:
        for _ in range(500):
            tracker.record("Ranker", TokenUsage(3, 2))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracker.as_dict()["Ranker"] == {
        "calls": 4000,
        "failed_calls": 0,
        "prompt_tokens": 12000,
        "completion_tokens": 8000,
    }

    other = UsageTracker()
    other.record("Ranker", TokenUsage(1, 1), failed_calls=1)
    other.record("Reflector", TokenUsage(5, 0))
    tracker.merge(other)
    tracker.merge(other.as_dict())
    merged = tracker.as_dict()
    assert merged["Ranker"]["calls"] == 4002 and merged["Ranker"]["failed_calls"] == 2
    assert merged["Reflector"]["prompt_tokens"] == 10
    assert UsageTracker.from_dict(merged).as_dict() == merged
    assert tracker.totals()["calls"] == 4004
