"""The LLM brain's plumbing: model construction, structured calls with retries, usage, streaming.

- `build_chat_model(LLMConfig)` makes any LangChain chat model from a "provider:model" string
  (`init_chat_model`); `base_url` points the OpenAI provider at any OpenAI-compatible server
  (vLLM, Ollama, llama.cpp). The SDK's own retries are off: `StructuredCaller` retries.
- `StructuredCaller.call(schema, messages)` asks for a pydantic schema instance and never raises
  for LLM failures: it returns a `StructuredResult` (`ok`, `value`, `attempts`, `error`,
  `usage`, `latency_s`), so the agent can fall back to its offline brain and mark the run
  `degraded`.
- Internal (structured) calls are tagged `nostream` (`NOSTREAM_TAG`): LangGraph's "messages"
  stream mode skips runs carrying that tag, so agents' internal JSON never reaches the user's
  token stream. User-facing text goes through `stream_text` / `astream_text`, untagged.
- `UsageTracker` sums calls and tokens per agent (thread-safe) for per-run usage reports.
  Token counts come from the responses' `usage_metadata` (no local tokenizer).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from langchain_core.exceptions import ModelError
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from core.errors import ConfigError

NOSTREAM_TAG = "nostream"
"""Tag of internal LLM calls; equals `langgraph.constants.TAG_NOSTREAM`."""

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
SchemaT = TypeVar("SchemaT", bound=BaseModel)

_DUMMY_API_KEY = "not-needed"
_MAX_ERROR_CHARS = 300
_PYDANTIC_HELP = re.compile(r"For further information visit \S+")


class LLMConfig(BaseModel):
    """How to reach one chat model and how hard to try.

    `max_retries` counts retries after the first attempt; the wait before retry n (1-based)
    is `backoff_s * 2 ** (n - 1)`, capped at `backoff_max_s`.
    `structured_output_method`: "function_calling" (a forced tool call; works with OpenAI
    for any schema, and with servers supporting named `tool_choice`), "json_schema"
    (`response_format` json_schema, strict: OpenAI rejects free-form dict fields in strict
    schemas; vLLM / llama.cpp / recent Ollama enforce it by guided decoding), "json_mode"
    (`response_format` json_object; the schema is put into the prompt).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(default="openai:gpt-4o-mini", description='"provider:model"')
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint")
    api_key: SecretStr | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    timeout_s: float = Field(default=60.0, gt=0.0)
    max_retries: int = Field(default=2, ge=0)
    backoff_s: float = Field(default=0.5, ge=0.0)
    backoff_max_s: float = Field(default=8.0, ge=0.0)
    structured_output_method: StructuredMethod = "function_calling"
    max_tokens: int | None = Field(default=1024, gt=0)
    stream_usage: bool = Field(
        default=True, description="ask for a final usage chunk when streaming"
    )

    def backoff_before_retry(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        return min(self.backoff_s * 2 ** (retry - 1), self.backoff_max_s)


def build_chat_model(config: LLMConfig) -> BaseChatModel:
    """The chat model `config` describes. No network access happens here.

    For `base_url` servers a dummy API key is used when none is given (local servers ignore
    it). Raises `ConfigError` when the provider package is missing or the model is invalid.
    """
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {
        "temperature": config.temperature,
        "timeout": config.timeout_s,
        "max_retries": 0,
    }
    if config.max_tokens is not None:
        kwargs["max_tokens"] = config.max_tokens
    if config.base_url is not None:
        kwargs["base_url"] = config.base_url
    if config.api_key is not None:
        kwargs["api_key"] = config.api_key.get_secret_value()
    elif config.base_url is not None:
        kwargs["api_key"] = _DUMMY_API_KEY
    provider = config.model.split(":", 1)[0] if ":" in config.model else ""
    if provider in ("openai", "azure_openai") or (not provider and config.base_url):
        kwargs["stream_usage"] = config.stream_usage
        if config.base_url is not None:
            # OpenAI-compatible servers speak chat completions, not the Responses API
            # (which langchain-openai picks by itself for some model names).
            kwargs["use_responses_api"] = False
    try:
        return init_chat_model(config.model, **kwargs)
    except ImportError as exc:
        raise ConfigError(f"LLM model {config.model!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"LLM model {config.model!r}: {exc}") from exc
    except Exception as exc:  # provider SDKs raise their own types (e.g. missing API key)
        raise ConfigError(f"LLM model {config.model!r} cannot be built: {exc}") from exc


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class StructuredResult(Generic[SchemaT]):
    """Outcome of one structured call (all its attempts)."""

    value: SchemaT | None
    attempts: int
    error: str | None
    usage: TokenUsage
    latency_s: float
    attempt_errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.value is not None


@dataclass
class _AgentUsage:
    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


_USAGE_FIELDS = ("calls", "failed_calls", "prompt_tokens", "completion_tokens")


@dataclass
class UsageTracker:
    """Calls and tokens per agent, safe to share between threads.

    `calls` counts HTTP-level attempts (each retry is a call); `failed_calls` those that did
    not yield a valid answer.
    """

    _by_agent: dict[str, _AgentUsage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(
        self,
        agent: str,
        usage: TokenUsage,
        *,
        calls: int = 1,
        failed_calls: int = 0,
    ) -> None:
        with self._lock:
            entry = self._by_agent.setdefault(agent, _AgentUsage())
            entry.calls += calls
            entry.failed_calls += failed_calls
            entry.prompt_tokens += usage.prompt_tokens
            entry.completion_tokens += usage.completion_tokens

    def as_dict(self) -> dict[str, dict[str, int]]:
        """{agent: {calls, failed_calls, prompt_tokens, completion_tokens}}."""
        with self._lock:
            return {
                agent: {name: getattr(entry, name) for name in _USAGE_FIELDS}
                for agent, entry in self._by_agent.items()
            }

    def merge(self, other: UsageTracker | Mapping[str, Mapping[str, int]]) -> None:
        """Add another tracker's counts (or its `as_dict()` form) to this one."""
        data = other.as_dict() if isinstance(other, UsageTracker) else other
        for agent, counts in data.items():
            self.record(
                agent,
                TokenUsage(
                    int(counts.get("prompt_tokens", 0)), int(counts.get("completion_tokens", 0))
                ),
                calls=int(counts.get("calls", 0)),
                failed_calls=int(counts.get("failed_calls", 0)),
            )

    def totals(self) -> dict[str, int]:
        summed = dict.fromkeys(_USAGE_FIELDS, 0)
        for counts in self.as_dict().values():
            for name in _USAGE_FIELDS:
                summed[name] += counts[name]
        return summed

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, int]]) -> UsageTracker:
        tracker = cls()
        tracker.merge(data)
        return tracker


def internal_config(
    config: RunnableConfig | None = None, *, agent: str | None = None
) -> RunnableConfig:
    """`config` plus the `nostream` tag (and the agent name in metadata and run name)."""
    merged: dict[str, Any] = dict(config or {})
    tags = list(merged.get("tags") or [])
    if NOSTREAM_TAG not in tags:
        tags.append(NOSTREAM_TAG)
    merged["tags"] = tags
    if agent is not None:
        merged["metadata"] = {**(merged.get("metadata") or {}), "agent": agent}
        merged.setdefault("run_name", f"{agent}.structured")
    return RunnableConfig(**merged)  # type: ignore[typeddict-item]


def usage_from_message(message: Any) -> TokenUsage:
    """Token usage a chat model reported on an AI message (zero when absent)."""
    metadata = getattr(message, "usage_metadata", None)
    if not metadata:
        return TokenUsage()
    return TokenUsage(
        int(metadata.get("input_tokens") or 0), int(metadata.get("output_tokens") or 0)
    )


def _usage_from_exception(exc: BaseException) -> TokenUsage:
    """Usage of a response that was received but failed to parse inside the model call.

    langchain-openai's json_schema method parses in the SDK, so an invalid answer raises
    from the model call itself; the exception carries the HTTP response, which has the
    usage the server billed.
    """
    response = getattr(exc, "response", None)
    if response is None or getattr(response, "status_code", None) != 200:
        return TokenUsage()
    try:
        usage = response.json().get("usage") or {}
        return TokenUsage(
            int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        )
    except Exception:  # best effort: a stream or an unreadable body has no usage to recover
        return TokenUsage()


def _short_error(exc: BaseException) -> str:
    """One line of at most `_MAX_ERROR_CHARS` characters naming the error type."""
    text = _PYDANTIC_HELP.sub("", str(exc))
    text = " ".join(text.split())
    if not isinstance(exc, _InvalidAnswer):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 3] + "..."
    return text


def _is_retryable(exc: BaseException) -> bool:
    """False for errors another identical request cannot fix (auth, not found, bad request)."""
    if isinstance(exc, ModelError):
        return exc.is_retryable
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return status in (408, 409, 429)
    return True


def json_mode_instruction(schema: type[BaseModel]) -> SystemMessage:
    """The prompt addition json_mode needs: JSON mode constrains syntax, not the schema."""
    schema_text = json.dumps(schema.model_json_schema(), separators=(",", ":"))
    return SystemMessage(
        "Reply with one JSON object only, no other text, matching this JSON schema: " + schema_text
    )


class _InvalidAnswer(Exception):
    """An attempt got an answer that is not a valid schema instance (usage still counts)."""

    def __init__(self, message: str, usage: TokenUsage) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass
class _Attempts(Generic[SchemaT]):
    """Bookkeeping shared by the sync and async retry loops."""

    agent: str
    tracker: UsageTracker | None
    started: float = field(default_factory=time.perf_counter)
    usage: TokenUsage = TokenUsage()
    errors: list[str] = field(default_factory=list)

    def success(self, value: SchemaT, usage: TokenUsage) -> StructuredResult[SchemaT]:
        self.usage = self.usage + usage
        if self.tracker is not None:
            self.tracker.record(self.agent, usage)
        return self._result(value)

    def failure(self, exc: BaseException, usage: TokenUsage) -> bool:
        """Record a failed attempt; True when another attempt may succeed."""
        self.usage = self.usage + usage
        self.errors.append(_short_error(exc))
        if self.tracker is not None:
            self.tracker.record(self.agent, usage, failed_calls=1)
        return _is_retryable(exc)

    def final(self) -> StructuredResult[SchemaT]:
        return self._result(None)

    def _result(self, value: SchemaT | None) -> StructuredResult[SchemaT]:
        return StructuredResult(
            value=value,
            attempts=len(self.errors) + (value is not None),
            error=None if value is not None else (self.errors[-1] if self.errors else None),
            usage=self.usage,
            latency_s=time.perf_counter() - self.started,
            attempt_errors=tuple(self.errors),
        )


class StructuredCaller:
    """Asks a chat model for pydantic schema instances, with retries and backoff.

    One caller per (model, agent); it may be shared between threads. `sleep` / `async_sleep`
    are injectable so tests can observe the backoff without waiting. `config.timeout_s` bounds
    each attempt, so a call takes at most about
    `(max_retries + 1) * timeout_s + sum of the backoffs`.
    """

    def __init__(
        self,
        model: BaseChatModel,
        config: LLMConfig,
        *,
        agent: str = "llm",
        tracker: UsageTracker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.model = model
        # Internal calls never use the streaming API, even inside a graph streamed with
        # stream_mode="messages" (whose callback handler would otherwise switch them to SSE):
        # one plain response is simpler to parse and always carries its usage.
        self._internal_model = model.model_copy(update={"disable_streaming": True})
        self.config = config
        self.agent = agent
        self.tracker = tracker
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._runnables: dict[type[BaseModel], Runnable[LanguageModelInput, Any]] = {}
        self._lock = threading.Lock()

    def _structured(self, schema: type[BaseModel]) -> Runnable[LanguageModelInput, Any]:
        with self._lock:
            runnable = self._runnables.get(schema)
            if runnable is None:
                runnable = self._internal_model.with_structured_output(
                    schema, method=self.config.structured_output_method, include_raw=True
                )
                self._runnables[schema] = runnable
            return runnable

    def _prepare(
        self, schema: type[BaseModel], messages: Sequence[BaseMessage]
    ) -> list[BaseMessage]:
        prepared = list(messages)
        if self.config.structured_output_method == "json_mode":
            prepared.insert(0, json_mode_instruction(schema))
        return prepared

    @staticmethod
    def _parse(schema: type[SchemaT], output: Any) -> tuple[SchemaT, TokenUsage]:
        """The validated value of one attempt's output, or `_InvalidAnswer`."""
        raw = output.get("raw") if isinstance(output, dict) else None
        usage = usage_from_message(raw)
        error = output.get("parsing_error") if isinstance(output, dict) else None
        parsed = output.get("parsed") if isinstance(output, dict) else output
        if error is not None:
            raise _InvalidAnswer(_short_error(error), usage)
        if parsed is None:
            raise _InvalidAnswer(_describe_missing(raw), usage)
        if isinstance(parsed, schema):
            return parsed, usage
        try:
            value = schema.model_validate(
                parsed.model_dump() if isinstance(parsed, BaseModel) else parsed
            )
        except ValidationError as exc:
            raise _InvalidAnswer(_short_error(exc), usage) from exc
        return value, usage

    def call(
        self,
        schema: type[SchemaT],
        messages: Sequence[BaseMessage],
        *,
        config: RunnableConfig | None = None,
    ) -> StructuredResult[SchemaT]:
        """Ask for a `schema` instance. Never raises for LLM failures."""
        runnable = self._structured(schema)
        prepared = self._prepare(schema, messages)
        run_config = internal_config(config, agent=self.agent)
        attempts: _Attempts[SchemaT] = _Attempts(self.agent, self.tracker)
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self._sleep(self.config.backoff_before_retry(attempt))
            try:
                value, usage = self._parse(schema, runnable.invoke(prepared, config=run_config))
            except _InvalidAnswer as exc:
                retry = attempts.failure(exc, exc.usage)
            except Exception as exc:  # any LLM/transport failure becomes a failed attempt
                retry = attempts.failure(exc, _usage_from_exception(exc))
            else:
                return attempts.success(value, usage)
            if not retry:
                break
        return attempts.final()

    async def acall(
        self,
        schema: type[SchemaT],
        messages: Sequence[BaseMessage],
        *,
        config: RunnableConfig | None = None,
    ) -> StructuredResult[SchemaT]:
        """Async `call`."""
        runnable = self._structured(schema)
        prepared = self._prepare(schema, messages)
        run_config = internal_config(config, agent=self.agent)
        attempts: _Attempts[SchemaT] = _Attempts(self.agent, self.tracker)
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                await self._async_sleep(self.config.backoff_before_retry(attempt))
            try:
                output = await runnable.ainvoke(prepared, config=run_config)
                value, usage = self._parse(schema, output)
            except _InvalidAnswer as exc:
                retry = attempts.failure(exc, exc.usage)
            except Exception as exc:  # any LLM/transport failure becomes a failed attempt
                retry = attempts.failure(exc, _usage_from_exception(exc))
            else:
                return attempts.success(value, usage)
            if not retry:
                break
        return attempts.final()


def _describe_missing(raw: Any) -> str:
    if isinstance(raw, AIMessage) and raw.invalid_tool_calls:
        return "tool call arguments are not valid JSON"
    if isinstance(raw, AIMessage) and not raw.tool_calls and not raw.content:
        return "empty answer"
    return "no structured output in the answer"


def stream_text(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    *,
    config: RunnableConfig | None = None,
    tracker: UsageTracker | None = None,
    agent: str = "llm",
) -> Iterator[str]:
    """User-facing text, chunk by chunk (not tagged `nostream`); usage goes to `tracker`.

    Errors propagate: a stream cannot be silently replaced halfway.
    """
    usage = TokenUsage()
    for chunk in model.stream(list(messages), config=config):
        usage = usage + usage_from_message(chunk)
        if chunk.text:
            yield chunk.text
    if tracker is not None:
        tracker.record(agent, usage)


async def astream_text(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    *,
    config: RunnableConfig | None = None,
    tracker: UsageTracker | None = None,
    agent: str = "llm",
) -> AsyncIterator[str]:
    """Async `stream_text`."""
    usage = TokenUsage()
    async for chunk in model.astream(list(messages), config=config):
        usage = usage + usage_from_message(chunk)
        if chunk.text:
            yield chunk.text
    if tracker is not None:
        tracker.record(agent, usage)
