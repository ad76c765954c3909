"""The API's request and response bodies (OpenAPI is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
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


class _Body(BaseModel):
    # strict: a JSON body must match the OpenAPI types ("3" is not a count, 0 not a bool)
    model_config = ConfigDict(extra="forbid", strict=True)

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


class RecommendedItem(BaseModel):
    item_id: str
    rank: int
    score: float
    title: str
    explanation: str
    reasons: list[str]
    source: Literal["personalized", "fallback", "exploration"]
    properties: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_agent: dict[str, dict[str, Any]] = Field(default_factory=dict)


class RecommendationResponse(BaseModel):
    recommendation_id: str = Field(description="Send it with later events (attribution).")
    run_id: str
    items: list[RecommendedItem]
    fallback_used: bool
    degraded: list[str] = Field(description="Parts that fell back (LLM brains, memories).")
    usage: Usage


class RatingResponse(BaseModel):
    run_id: str
    user_id: str | None
    item_id: str
    rating: float | None
    degraded: list[str]
    usage: Usage


class ExplanationResponse(BaseModel):
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


class EventResult(BaseModel):
    event_id: str
    status: Literal["stored", "duplicate", "rejected"]
    message: str | None = None


class EventBatchResponse(BaseModel):
    results: list[EventResult]
    stored: int
    duplicates: int
    rejected: int


class SessionRequest(_Body):
    user_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="The user; none for an anonymous visitor."
    )


class SessionCreated(BaseModel):
    session_id: str
    user_id: str | None


class TurnOut(BaseModel):
    role: str
    text: str
    meta: dict[str, Any]
    ts: float


class SessionOut(BaseModel):
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


class MemoryOut(BaseModel):
    memory_id: str
    kind: str
    text: str
    created_at: float


class UserMemoriesOut(BaseModel):
    user_id: str
    memories: list[MemoryOut]
    profile: dict[str, dict[str, float]]
    excluded_item_ids: list[str]
    feedback_item_ids: list[str]
    events: int


class ForgetOut(BaseModel):
    user_id: str
    deleted: dict[str, int]


class ItemOut(BaseModel):
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


class ItemUpserted(BaseModel):
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


class IngestOut(BaseModel):
    name: str
    items: int
    users: int
    interactions: int
    active: bool


class CancelOut(BaseModel):
    run_id: str
    status: Literal["cancelling", "finished"]


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
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


class DependencyStatus(BaseModel):
    status: Literal["ok", "unavailable"]
    error: str | None = Field(default=None, description="Why it is unavailable.")


class DependencyReport(BaseModel):
    """Each dependency's state. Always answered with 200: it is a report, not a probe."""

    status: Literal["ok", "degraded", "starting", "stopping"] = Field(
        description="ok: every dependency answers; degraded: some are down (the service "
        "still answers, see `dependencies`); starting / stopping: not checked."
    )
    dependencies: dict[str, DependencyStatus]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_request"])
    message: str
    details: Any = None
    request_id: str


class ErrorBody(BaseModel):
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
