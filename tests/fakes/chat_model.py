"""A scripted fake chat model for unit tests (no network): `bind_tools` and
`with_structured_output` work for the three methods (function_calling, json_schema, json_mode).

    model = ScriptedChatModel(script=[structured_answer({"item_id": "7"}), RuntimeError("boom")])

Each call consumes the next script entry: an `AIMessage` (returned as is), an exception
(raised, like a transport error), or a responder `(FakeCall) -> AIMessage`. When the script
is exhausted, `default` answers (None: an `IndexError`, so unexpected calls fail loudly).
Every call is recorded in `calls` (messages, bound tools / tool_choice / response_format,
tags). Messages get `usage_metadata` by word count when the entry has none.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.output_parsers.openai_tools import PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from tests.fakes.openai_server import count_tokens


@dataclass
class FakeCall:
    """One call of the fake model."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any]
    tags: list[str]
    streamed: bool = False

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.kwargs.get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.tools]

    @property
    def response_format(self) -> dict[str, Any] | None:
        value = self.kwargs.get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def prompt_text(self) -> str:
        return " ".join(m.text for m in self.messages)


@dataclass
class _ScriptState:
    calls: list[FakeCall] = field(default_factory=list)
    position: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


FakeResponder = Callable[[FakeCall], AIMessage]
ScriptEntry = AIMessage | BaseException | FakeResponder


def text_answer(content: str) -> FakeResponder:
    return lambda _call: AIMessage(content=content)


def structured_answer(obj: Any) -> FakeResponder:
    """Answer `obj` as a call of the bound tool when tools are bound, else as JSON content."""

    def respond(call: FakeCall) -> AIMessage:
        if call.tools:
            return AIMessage(
                content="",
                tool_calls=[{"name": call.tool_names[0], "args": obj, "id": "call_fake"}],
            )
        return AIMessage(content=json.dumps(obj))

    return respond


def malformed_tool_call(name: str, arguments: str) -> AIMessage:
    """A tool call whose arguments are not valid JSON."""
    return AIMessage(
        content="",
        invalid_tool_calls=[
            {
                "name": name,
                "args": arguments,
                "id": "call_bad",
                "error": "not JSON",
                "type": "invalid_tool_call",
            }
        ],
    )


def _tool_call_chunk(message: AIMessage) -> AIMessageChunk:
    """The whole tool-calling message as one stream chunk (streaming callers see it too)."""
    chunks: list[ToolCallChunk] = [
        {
            "name": c["name"],
            "args": json.dumps(c["args"]),
            "id": c["id"],
            "index": i,
            "type": "tool_call_chunk",
        }
        for i, c in enumerate(message.tool_calls)
    ]
    chunks += [
        {
            "name": c["name"],
            "args": c["args"],
            "id": c["id"],
            "index": len(chunks) + i,
            "type": "tool_call_chunk",
        }
        for i, c in enumerate(message.invalid_tool_calls)
    ]
    return AIMessageChunk(
        content=message.content, tool_call_chunks=chunks, usage_metadata=message.usage_metadata
    )


class ScriptedChatModel(BaseChatModel):
    """See the module docstring."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: list[Any] = Field(default_factory=list)
    default: Any = None
    model_name: str = "scripted-fake"
    # one shared state object, so copies (model_copy, e.g. disable_streaming) share the script
    _state: _ScriptState = PrivateAttr(default_factory=lambda: _ScriptState())

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def calls(self) -> list[FakeCall]:
        with self._state.lock:
            return list(self._state.calls)

    def _next_entry(self) -> Any:
        state = self._state
        with state.lock:
            if state.position < len(self.script):
                entry = self.script[state.position]
                state.position += 1
                return entry
        if self.default is None:
            raise IndexError("ScriptedChatModel: script exhausted and no default")
        return self.default

    def _answer(
        self,
        messages: list[BaseMessage],
        run_manager: Any,
        kwargs: dict[str, Any],
        *,
        streamed: bool,
    ) -> AIMessage:
        call = FakeCall(
            messages=list(messages),
            kwargs=dict(kwargs),
            tags=list(getattr(run_manager, "tags", None) or []),
            streamed=streamed,
        )
        with self._state.lock:
            self._state.calls.append(call)
        entry = self._next_entry()
        if isinstance(entry, BaseException):
            raise entry
        message = entry if isinstance(entry, AIMessage) else entry(call)
        if message.usage_metadata is None:
            completion = message.text or "".join(
                json.dumps(tc["args"]) for tc in message.tool_calls
            )
            prompt_tokens = count_tokens(call.prompt_text)
            completion_tokens = count_tokens(completion)
            message = message.model_copy(
                update={
                    "usage_metadata": {
                        "input_tokens": prompt_tokens,
                        "output_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    }
                }
            )
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(
            generations=[
                ChatGeneration(message=self._answer(messages, run_manager, kwargs, streamed=False))
            ]
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._answer(messages, run_manager, kwargs, streamed=True)
        if message.tool_calls or message.invalid_tool_calls:
            yield ChatGenerationChunk(message=_tool_call_chunk(message))
            return
        words = message.text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=message.usage_metadata)
        )

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = {"type": "function", "function": {"name": tool_choice}}
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(  # type: ignore[override]
        self,
        schema: type[BaseModel],
        *,
        method: str = "function_calling",
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        llm: Runnable[LanguageModelInput, Any]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name)
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)
        elif method == "json_schema":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
            }
            llm = self.bind(response_format=response_format)
            parser = PydanticOutputParser(pydantic_object=schema)
        elif method == "json_mode":
            llm = self.bind(response_format={"type": "json_object"})
            parser = PydanticOutputParser(pydantic_object=schema)
        else:
            raise ValueError(f"unknown method {method!r}")
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks(
            [fallback], exception_key="parsing_error"
        )
