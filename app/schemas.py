"""The API's request and response bodies (OpenAPI is generated from these)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    field_validator,
    model_validator,
)

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
"""User, session, item and event ids: 1-128 characters of letters, digits and . _ : @ -"""

UserId = Field(default=None, pattern=ID_PATTERN, description="A known or new user id.")

# -- request size bounds -----------------------------------------------------------------
# Every list and map a request may carry is bounded (and so is every string in them), so a
# body under `max_body_bytes` cannot hold tens of thousands of values that all pass
# validation and then cost CPU in filtering, or echo back in an error. They show in the
# OpenAPI document as maxItems / maxProperties / maxLength.
MAX_FILTER_ATTRIBUTES = 20
"""Attributes named in `filters.include` (and, separately, in `filters.exclude`)."""
MAX_FILTER_VALUES = 100
"""Values per attribute in a filter."""
MAX_VALUE_CHARS = 200
"""Longest attribute value (in filters and in catalog items)."""
MAX_NAME_CHARS = 64
"""Longest attribute, field or context key name."""
MAX_ITEM_ID_CHARS = 128
"""Longest item id in a list of item ids."""
MAX_EXCLUDED_ITEMS = 1000
"""`exclude_item_ids` of a recommendation request."""
MAX_FIELDS = 50
"""`fields` of a recommendation request."""
MAX_RANK_ITEMS = 200
"""`item_ids` of a rank request."""
MAX_CONTEXT_KEYS = 20
"""Entries of a request's `context` map."""
MAX_CONTEXT_VALUE_CHARS = 500
"""Longest `context` value."""
MAX_EVENTS = 100
"""Events in one `POST /v1/events` batch."""
MAX_ITEM_ATTRIBUTES = 50
"""Attributes of one catalog item."""
MAX_ITEM_VALUES = 100
"""Values per attribute of one catalog item."""

Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS)]
FilterValue = Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)]
ItemRef = Annotated[str, StringConstraints(max_length=MAX_ITEM_ID_CHARS)]
ContextValue = Annotated[str, StringConstraints(max_length=MAX_CONTEXT_VALUE_CHARS)]
FilterValues = Annotated[list[FilterValue], Field(max_length=MAX_FILTER_VALUES)]
ContextMap = Annotated[
    dict[Name, ContextValue],
    Field(
        max_length=MAX_CONTEXT_KEYS,
        description=f"Request context (device, page...), recorded with the run: at most "
        f"{MAX_CONTEXT_KEYS} entries, keys up to {MAX_NAME_CHARS} characters, values up to "
        f"{MAX_CONTEXT_VALUE_CHARS}.",
    ),
]


def _check_unicode(value: Any) -> None:
    """Refuse text that cannot be stored (lone surrogates from escaped JSON, NUL)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key)
            _check_unicode(item)
    elif isinstance(value, list):
        for item in value:
            _check_unicode(item)


def _defaults_described(schema: dict[str, Any]) -> None:
    """A request body's defaults go into the property descriptions instead of `default`:
    openapi-typescript (default options) types a component property with a `default` as
    always present, which would make clients send every defaulted field."""
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict) and "default" in prop:
            note = f"Default: {json.dumps(prop.pop('default'))}."
            prop["description"] = f"{prop['description']} {note}" if "description" in prop else note


class _Body(BaseModel):
    # strict: a JSON body must match the OpenAPI types ("3" is not a count, 0 not a bool)
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_defaults_described)

    @model_validator(mode="after")
    def _valid_text(self) -> Self:
        # After the fields: the size bounds are checked first, so an oversized body is
        # refused before its strings are walked. Nested bodies check their own fields.
        for name in type(self).model_fields:
            _check_unicode(getattr(self, name))
        return self


_FILTER_BOUNDS = (
    f"at most {MAX_FILTER_ATTRIBUTES} attributes (names up to {MAX_NAME_CHARS} characters), "
    f"{MAX_FILTER_VALUES} values each (up to {MAX_VALUE_CHARS} characters)"
)


class AttributeFilters(_Body):
    include: dict[Name, FilterValues] = Field(
        default_factory=dict,
        max_length=MAX_FILTER_ATTRIBUTES,
        description="attribute -> values; an item must have one of the values of each; "
        + _FILTER_BOUNDS,
        examples=[{"genres": ["Comedy", "Romance"]}],
    )
    exclude: dict[Name, FilterValues] = Field(
        default_factory=dict,
        max_length=MAX_FILTER_ATTRIBUTES,
        description="attribute -> values no returned item may have; " + _FILTER_BOUNDS,
    )


class _Personalised(_Body):
    user_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="A user id; unknown ids are new users."
    )
    session_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="An anonymous visitor's id, when there is no user_id: feedback sent with "
        "this session_id shapes its recommendations.",
    )
    context: ContextMap = Field(default_factory=dict)


class RecommendationRequest(_Personalised):
    count: int = Field(default=10, ge=1, le=50, description="How many items (1-50).")
    filters: AttributeFilters = Field(default_factory=AttributeFilters)
    exclude_item_ids: list[ItemRef] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDED_ITEMS,
        description=f"Items never to return (at most {MAX_EXCLUDED_ITEMS}).",
    )
    exclude_seen: bool = Field(default=True, description="Leave out items the user has seen.")
    diversity: float = Field(
        default=0.0, ge=0.0, le=1.0, description="0 ranks by relevance; up to 1 adds variety."
    )
    fields: list[Name] = Field(
        default_factory=list,
        max_length=MAX_FIELDS,
        description="Item properties to return in `properties` (e.g. genres, year, text); "
        f"at most {MAX_FIELDS}.",
    )
    fallback: Literal["popular", "none"] = Field(
        default="popular",
        description="popular: fill with popular items when nothing personal fits (new users "
        "included); none: return only personalised items.",
    )
    query: str | None = Field(
        default=None,
        max_length=4000,
        description="Free text: what the user is looking for ('a funny film from the 90s').",
    )


class RankRequest(_Personalised):
    item_ids: list[ItemRef] = Field(
        min_length=1,
        max_length=MAX_RANK_ITEMS,
        description=f"Items to order (1-{MAX_RANK_ITEMS}).",
    )


class ItemRequest(_Personalised):
    item_id: str = Field(pattern=ID_PATTERN)


class _Out(BaseModel):
    """A response body: every field is always sent, so the OpenAPI document lists them all
    as required (also those with defaults), and generated clients type them as present."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class RecommendedItem(_Out):
    item_id: str
    rank: int
    score: float
    title: str
    explanation: str
    reasons: list[str]
    source: Literal["personalized", "fallback", "exploration"]
    properties: dict[str, Any] = Field(default_factory=dict)


class Usage(_Out):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_agent: dict[str, dict[str, Any]] = Field(default_factory=dict)


class RecommendationResponse(_Out):
    recommendation_id: str = Field(description="Send it with later events (attribution).")
    run_id: str
    items: list[RecommendedItem]
    fallback_used: bool
    degraded: list[str] = Field(description="Parts that fell back (LLM brains, memories).")
    usage: Usage


class RatingResponse(_Out):
    run_id: str
    user_id: str | None
    item_id: str
    rating: float | None
    degraded: list[str]
    usage: Usage


class ExplanationResponse(_Out):
    run_id: str
    user_id: str | None
    item_id: str
    explanation: str
    degraded: list[str]
    usage: Usage


class Event(_Body):
    event_id: str = Field(pattern=ID_PATTERN, description="Makes the event idempotent.")
    type: Literal["impression", "view", "click", "like", "dislike", "rating", "purchase"]
    user_id: str | None = Field(default=None, pattern=ID_PATTERN)
    session_id: str | None = Field(default=None, pattern=ID_PATTERN)
    item_id: str = Field(pattern=ID_PATTERN)
    recommendation_id: str | None = Field(default=None, max_length=128)
    position: int | None = Field(default=None, ge=0, le=10_000)
    value: float | None = Field(default=None, description="The rating (1-5) of a rating event.")
    timestamp: float | None = Field(
        default=None, ge=0, le=4_102_444_800, description="Unix seconds."
    )

    @model_validator(mode="after")
    def _who_and_value(self) -> Event:
        if not self.user_id and not self.session_id:
            raise ValueError("an event needs a user_id or a session_id")
        if self.type == "rating" and (self.value is None or not 1 <= self.value <= 5):
            raise ValueError("a rating event needs a value between 1 and 5")
        return self


class EventBatch(_Body):
    events: list[Event] = Field(
        min_length=1, max_length=MAX_EVENTS, description=f"1-{MAX_EVENTS} events."
    )


class EventResult(_Out):
    event_id: str
    status: Literal["stored", "duplicate", "rejected"]
    message: str | None = None


class EventBatchResponse(_Out):
    results: list[EventResult]
    stored: int
    duplicates: int
    rejected: int


class SessionRequest(_Body):
    user_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="The user; none for an anonymous visitor."
    )


class SessionCreated(_Out):
    session_id: str
    user_id: str | None


class TurnOut(_Out):
    role: str
    text: str
    meta: dict[str, Any]
    ts: float


class SessionOut(_Out):
    session_id: str
    user_id: str | None
    turns: list[TurnOut]


class MessageRequest(_Body):
    message: str = Field(min_length=1, max_length=4000)
    context: ContextMap = Field(default_factory=dict)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is blank")
        return value


class MemoryOut(_Out):
    memory_id: str
    kind: str
    text: str
    created_at: float


class UserMemoriesOut(_Out):
    user_id: str
    memories: list[MemoryOut]
    profile: dict[str, dict[str, float]]
    excluded_item_ids: list[str]
    feedback_item_ids: list[str]
    events: int


class ForgetOut(_Out):
    user_id: str
    deleted: dict[str, int]


class ItemOut(_Out):
    item_id: str
    title: str
    attributes: dict[str, list[str]]
    text: str


AttributeName = Annotated[str, StringConstraints(pattern=r"^[^$#\s][^\s]{0,63}$")]
AttributeValue = Annotated[str, StringConstraints(min_length=1, max_length=MAX_VALUE_CHARS)]
AttributeValues = Annotated[list[AttributeValue], Field(max_length=MAX_ITEM_VALUES)]


class ItemIn(_Body):
    title: str = Field(min_length=1, max_length=500)
    attributes: dict[AttributeName, AttributeValues] = Field(
        default_factory=dict,
        max_length=MAX_ITEM_ATTRIBUTES,
        description="attribute name (1-64 characters, no spaces, not starting with $ or #) "
        f"-> values (at most {MAX_ITEM_ATTRIBUTES} attributes, {MAX_ITEM_VALUES} values each, "
        f"1-{MAX_VALUE_CHARS} characters)",
        examples=[{"genres": ["Drama"], "year": ["1999"]}],
    )
    text: str = Field(default="", max_length=20_000, description="A description to search.")


class ItemUpserted(_Out):
    item: ItemOut
    created: bool


class IngestRequest(_Body):
    path: str = Field(min_length=1, max_length=4096, description="A folder on the server.")
    format: Literal["movielens-100k", "movielens-csv", "csv"]
    columns: str | None = Field(default=None, max_length=1000, description="For format csv.")
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
        description="Catalog name (default: the served catalog, which is then replaced).",
    )
    dialogues: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="A file on the server: ReDial-format dialogues (JSONL) whose movie "
        "mentions are mapped to the catalog; their mention and co-mention counts are saved "
        "with it and used by chats.",
    )


class DialoguesIngested(_Out):
    dialogues: int
    mentions: int = Field(description="Movie mentions (each movie once per dialogue).")
    mapped: int = Field(description="Mentions mapped to a catalog item.")
    coverage: float = Field(description="mapped / mentions.")
    items: int = Field(description="Distinct catalog items mentioned.")


class IngestOut(_Out):
    name: str
    items: int
    users: int
    interactions: int
    active: bool
    dialogues: DialoguesIngested | None = Field(
        default=None, description="What the dialogue file gave (null: none given)."
    )


class CancelOut(_Out):
    run_id: str
    status: Literal["cancelling", "finished"]


class Liveness(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    """Whether the replica can serve. A store outage does not make it unready: it answers
    without the store (degraded) and names it in `degraded`."""

    status: Literal["ready", "starting", "stopping"] = Field(
        description="ready (200) once the models are loaded, degraded or not; starting or "
        "stopping (503) otherwise."
    )
    degraded: list[str] = Field(
        default_factory=list,
        description="Dependencies that are down (redis, chroma): the service answers without "
        "them; GET /health/dependencies says why.",
    )
    checks: dict[str, str] = Field(
        default_factory=dict,
        description='Each dependency: "ok" or "unavailable: <reason>".',
    )


class DependencyStatus(_Out):
    status: Literal["ok", "unavailable"]
    error: str | None = Field(default=None, description="Why it is unavailable.")


class DependencyReport(_Out):
    """Each dependency's state. Always answered with 200: it is a report, not a probe."""

    status: Literal["ok", "degraded", "starting", "stopping"] = Field(
        description="ok: every dependency answers; degraded: some are down (the service "
        "still answers, see `dependencies`); starting / stopping: not checked."
    )
    dependencies: dict[str, DependencyStatus]


class ThreadPool(_Out):
    api: Literal["blas", "openmp"] = Field(description="What the library offers.")
    library: str = Field(examples=["libscipy_openblas"])
    threads: int


class WorkerReport(_Out):
    """The worker process that answered (under `serve --workers N`, each answers for
    itself): its pid and the thread pools of its BLAS and OpenMP libraries."""

    pid: int
    blas_threads: int | None = Field(
        description="Threads of its largest BLAS or OpenMP pool (AGENTREC_BLAS_THREADS, 1 by "
        "default); null when none is loaded."
    )
    thread_pools: list[ThreadPool]


class ErrorDetail(_Out):
    code: str = Field(examples=["invalid_request"])
    message: str
    details: Any = None
    request_id: str


class ErrorBody(_Out):
    """The body of every error answer."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "The body is not valid JSON."),
        (401, "No valid API key (when keys are configured)."),
        (403, "The key's role may not do this."),
        (404, "Not found (an unknown item, session or run)."),
        (409, "The chat session is still answering the previous message."),
        (413, "The body is too large."),
        (422, "The request is invalid; `details` lists the fields."),
        (429, "Over the rate limit; retry after `Retry-After` seconds."),
        (503, "Redis or Chroma is unavailable, or the service is starting."),
    )
}
"""Error answers every /v1 operation may give, for the OpenAPI document."""


# -- run events (the `data:` of every run stream, documented in OpenAPI) --------------------
class _RunEventBase(BaseModel):
    """What every run event carries. A field with a default is one some events leave out
    (not listed as required; no `default` in the schema: see `_defaults_described`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_defaults_described)

    run_id: str
    seq: int = Field(ge=1, description="1, 2, ... within the run; also the SSE `id:`.")
    ts: float = Field(description="When the event happened (Unix seconds).")


class _AgentEventBase(_RunEventBase):
    agent: str = Field(description="The agent that emitted it (Manager, Searcher, ...).")


class RunStartedEvent(_RunEventBase):
    """Always the first event of a run."""

    type: Literal["run_started"]
    recommendation_id: str = Field(description="Send it with later feedback events.")
    task: Literal["recommend", "rank", "rate", "explain", "chat"]
    user_id: str | None
    session_id: str | None
    context: dict[str, str] = Field(description="The request's context, as sent.")


class AgentStartedEvent(_AgentEventBase):
    type: Literal["agent_started"]


class AgentFinishedEvent(_AgentEventBase):
    type: Literal["agent_finished"]


class ThoughtEvent(_AgentEventBase):
    type: Literal["thought"]
    text: str


class ActionEvent(_AgentEventBase):
    """A tool the agent calls, with its arguments."""

    type: Literal["action"]
    tool: str
    args: dict[str, Any]


class ObservationEvent(_AgentEventBase):
    """What the agent saw; may carry more data (recalled memories, grounding repairs)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["observation"]
    text: str


class CandidateOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str
    score: float
    sources: list[str]


class CandidatesEvent(_AgentEventBase):
    """The top of the Searcher's candidate pool."""

    type: Literal["candidates"]
    items: list[CandidateOut] = Field(description="The 20 best candidates at most.")
    total: int = Field(description="How many candidates the pool holds.")


class TokenEvent(_AgentEventBase):
    """A piece of the user-facing reply (chat), in order: concatenate the `text`s."""

    type: Literal["token"]
    text: str


class ReflectionEvent(_AgentEventBase):
    type: Literal["reflection"]
    accept: bool
    problems: list[str]


class RecommendationsEvent(_AgentEventBase):
    """The grounded items, as the JSON answer shows them."""

    type: Literal["recommendations"]
    items: list[RecommendedItem]


class ErrorEvent(_RunEventBase):
    """A failure after the 200. `recoverable`: the run goes on without the failed part (an
    LLM brain fell back, a store is down); otherwise `run_finished` follows with status
    error, and `code` says why (cancelled, unavailable, invalid_request, internal_error,
    run_lost)."""

    type: Literal["error"]
    recoverable: bool
    message: str
    code: str | None = None
    agent: str | None = None
    attempts: int | None = Field(default=None, description="LLM attempts made (LLM errors).")


class RunItemSummary(BaseModel):
    """An item of a replayed one-shot run's summary (`trace: "summary"`)."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    rank: int
    score: float | None


class RunOutput(BaseModel):
    """The run's answer. `recommendations` holds full items, except in the summary a
    replayed JSON run keeps (item id, rank and score only)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_defaults_described)

    recommendations: list[RecommendedItem | RunItemSummary]
    degraded: list[str] = Field(description="Parts that fell back (LLM brains, memories).")
    rating: float | None = Field(default=None, description="The rate task's prediction.")
    explanation: str | None = Field(default=None, description="The explain task's text.")
    reply: str | None = Field(default=None, description="The chat task's reply.")
    fallback_used: bool | None = None
    usage: Usage | None = None


class RunFinishedEvent(_RunEventBase):
    """Always the last event of a run; the stream ends after it."""

    type: Literal["run_finished"]
    recommendation_id: str | None = Field(
        default=None,
        description="As in `run_started`; absent only when the run was lost (its process "
        "died) and its `run_started` had already left the trace.",
    )
    status: Literal["success", "error"]
    output: RunOutput
    trace: Literal["summary"] | None = Field(
        default=None, description='"summary" when a one-shot JSON run is replayed.'
    )


class RunEvent(
    RootModel[
        Annotated[
            RunStartedEvent
            | AgentStartedEvent
            | ThoughtEvent
            | ActionEvent
            | ObservationEvent
            | CandidatesEvent
            | TokenEvent
            | AgentFinishedEvent
            | ReflectionEvent
            | RecommendationsEvent
            | ErrorEvent
            | RunFinishedEvent,
            Field(discriminator="type"),
        ]
    ]
):
    """One event of a run stream: the SSE `data:` (JSON), whose `type` is also the SSE
    `event:` name. Every run stream (recommendations, chat messages, resumes) carries these,
    `run_started` first and `run_finished` last."""


# -- Vercel AI SDK chat (POST /v1/chat): its UI message stream protocol -----------------------
MAX_CHAT_MESSAGES = 200
"""Messages of one `POST /v1/chat` or `POST /v1/chat/completions` request, and turns of the
conversation a chat run is given (a longer chat sends its last messages: the server answers
the last user message and reads the ones before it)."""
MAX_MESSAGE_PARTS = 100
"""Parts of one message."""
MAX_PART_CHARS = 20_000
"""Longest text of a message part (the message answered is bounded by max_message_chars)."""


MAX_EXTRA_FIELDS = 20
"""Fields beyond the declared ones that a client's open object (a UI message) may carry."""


def _open_object(schema: dict[str, Any]) -> None:
    _defaults_described(schema)
    schema["maxProperties"] = len(schema.get("properties", {})) + MAX_EXTRA_FIELDS
    schema["propertyNames"] = {"maxLength": MAX_NAME_CHARS}


class _OpenObject(BaseModel):
    """An object a client sends with fields of its own, which the server ignores: at most
    `MAX_EXTRA_FIELDS` of them, names up to `MAX_NAME_CHARS` characters."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_open_object)

    @model_validator(mode="after")
    def _bounded_extra(self) -> Self:
        extra = self.model_extra or {}
        if len(extra) > MAX_EXTRA_FIELDS:
            raise ValueError(f"at most {MAX_EXTRA_FIELDS} more fields")
        if any(len(name) > MAX_NAME_CHARS for name in extra):
            raise ValueError(f"field names are at most {MAX_NAME_CHARS} characters")
        return self


class UIMessagePartIn(_OpenObject):
    """A part of a UI message as the AI SDK sends it back: `text` parts are read; the others
    (reasoning, data-*, step-start, files...) are accepted and ignored."""

    type: str = Field(max_length=100)
    text: str | None = Field(default=None, max_length=MAX_PART_CHARS)


class UIMessageIn(_OpenObject):
    id: str = Field(max_length=200)
    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePartIn] = Field(max_length=MAX_MESSAGE_PARTS)


class ChatRequest(_Body):
    """What the AI SDK's `DefaultChatTransport` posts (`useChat`), plus the agentrec fields
    an app may add with the transport's `body` option (`user_id`, `context`)."""

    id: str = Field(
        pattern=ID_PATTERN,
        description="The chat id; it names a chat session of the caller, created on first use.",
    )
    messages: list[UIMessageIn] = Field(
        min_length=1,
        max_length=MAX_CHAT_MESSAGES,
        description="The conversation; the last user message is the one answered, the "
        "messages before it are what the agents read (titles named, liked or not, already "
        "suggested).",
    )
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    messageId: str | None = Field(
        default=None, max_length=200, description="The message to regenerate."
    )
    user_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="The user chatting (when the chat is created); none: an anonymous visitor.",
    )
    context: ContextMap = Field(default_factory=dict)


class UIMessageMetadata(BaseModel):
    """The assistant message's metadata (`message.metadata`)."""

    model_config = ConfigDict(json_schema_extra=_defaults_described)

    run_id: str
    recommendation_id: str
    status: Literal["success", "error"] | None = Field(
        default=None, description="Sent with `finish`."
    )
    degraded: list[str] | None = Field(default=None, description="Sent with `finish`.")
    usage: Usage | None = Field(default=None, description="Sent with `finish`.")


class UIRecommendations(BaseModel):
    run_id: str
    recommendation_id: str = Field(description="Send it with feedback events.")
    items: list[RecommendedItem]


class UIStartChunk(BaseModel):
    type: Literal["start"]
    messageId: str = Field(description="The assistant message's id: the run id.")
    messageMetadata: UIMessageMetadata


class UITextStartChunk(BaseModel):
    type: Literal["text-start"]
    id: str


class UITextDeltaChunk(BaseModel):
    type: Literal["text-delta"]
    id: str
    delta: str


class UITextEndChunk(BaseModel):
    type: Literal["text-end"]
    id: str


class UIReasoningStartChunk(BaseModel):
    type: Literal["reasoning-start"]
    id: str


class UIReasoningDeltaChunk(BaseModel):
    """One line of the agents' reasoning (thoughts, tool calls, observations)."""

    type: Literal["reasoning-delta"]
    id: str
    delta: str


class UIReasoningEndChunk(BaseModel):
    type: Literal["reasoning-end"]
    id: str


class UITraceChunk(BaseModel):
    """An agent event of the run (`onData` receives it; transient: not kept in the
    message)."""

    type: Literal["data-trace"]
    id: str
    data: RunEvent
    transient: Literal[True]


class UIRecommendationsChunk(BaseModel):
    """The grounded items (kept in the message as a `data-recommendations` part)."""

    type: Literal["data-recommendations"]
    id: str
    data: UIRecommendations


class UIErrorChunk(BaseModel):
    type: Literal["error"]
    errorText: str = Field(description='"<code>: <message>"')


class UIAbortChunk(BaseModel):
    type: Literal["abort"]
    reason: str


class UIFinishChunk(BaseModel):
    type: Literal["finish"]
    finishReason: Literal["stop", "error"]
    messageMetadata: UIMessageMetadata


class UIMessageChunk(
    RootModel[
        Annotated[
            UIStartChunk
            | UITextStartChunk
            | UITextDeltaChunk
            | UITextEndChunk
            | UIReasoningStartChunk
            | UIReasoningDeltaChunk
            | UIReasoningEndChunk
            | UITraceChunk
            | UIRecommendationsChunk
            | UIErrorChunk
            | UIAbortChunk
            | UIFinishChunk,
            Field(discriminator="type"),
        ]
    ]
):
    """One chunk of the AI SDK's UI message stream (protocol v1): the SSE `data:`. The stream
    ends with `data: [DONE]`."""


# -- OpenAI chat completions (POST /v1/chat/completions) ------------------------------------
class OpenAIContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=_defaults_described)

    type: str = Field(max_length=100)
    text: str | None = Field(default=None, max_length=MAX_PART_CHARS)


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=_defaults_described)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: (
        Annotated[str, StringConstraints(max_length=MAX_PART_CHARS)]
        | Annotated[list[OpenAIContentPart], Field(max_length=MAX_MESSAGE_PARTS)]
        | None
    ) = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra=_defaults_described)

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completions request. `model` names a preset (`GET /v1/models`) or
    `agentrec` (the served one); the last user message is answered, the user and assistant
    messages before it are read as the conversation; `user` is the user id.
    Other OpenAI parameters (temperature, max_tokens, tools...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_defaults_described)

    model: str = Field(max_length=200, examples=["agentrec"])
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=MAX_CHAT_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        default=None, pattern=ID_PATTERN, description="The end user: recommendations for them."
    )


class AgentrecExtra(_Out):
    """agentrec's addition to a completion: the grounded items, also listed in the text."""

    run_id: str
    recommendation_id: str = Field(description="Send it with feedback events.")
    recommendations: list[RecommendedItem]
    degraded: list[str]


class CompletionUsage(_Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionMessage(_Out):
    role: Literal["assistant"]
    content: str
    refusal: None = None


class CompletionChoice(_Out):
    index: int
    message: CompletionMessage
    finish_reason: Literal["stop"]
    logprobs: None = None


class ChatCompletion(_Out):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    agentrec: AgentrecExtra


class ChunkDelta(_Out):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(_Out):
    index: int
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None
    logprobs: None = None


class ChatCompletionChunk(_Out):
    """One SSE `data:` of a streamed completion; the stream ends with `data: [DONE]`. The
    last chunk with a choice has `finish_reason` and `agentrec`; with
    `stream_options.include_usage` one more chunk with no choices carries `usage`. A failure
    after the 200 is sent as `data: {"error": {"message", "type", "code"}}`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    agentrec: AgentrecExtra | None = None


class ModelOut(_Out):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(_Out):
    object: Literal["list"]
    data: list[ModelOut]
