"""Graph state: what callers send (`InputState`), the blackboard the agents share (`State`),
and what callers get back (`OutputState`)."""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph.message import add_messages
from pydantic import BaseModel

from agents.schemas import (
    CandidatePool,
    Conversation,
    Critique,
    Intent,
    ItemInsight,
    RankedItem,
    RankedList,
    TaskName,
    UserMemory,
    UserProfile,
    checkpoint_types,
)


@dataclass(kw_only=True)
class InputState:
    task: TaskName = "recommend"
    user_id: str | None = None
    message: str = ""
    """A chat message or free-text query (data, never instructions). In a chat, the latest
    user message: it joins `messages` as a user turn."""
    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """The conversation (chat task): user and assistant turns, oldest first, as LangChain
    messages or {"role", "content"} dicts. A run may bring the earlier turns (a stateless
    chat sends them all); on a checkpointed thread they accumulate, so send only new ones.
    A chat run appends its reply as an assistant message."""
    count: int | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    """`tools.candidates.CandidateFilters` fields: exclude_seen, exclude_item_ids, include,
    exclude."""
    candidate_item_ids: list[str] = field(default_factory=list)
    """The list to order, for the rank task."""
    item_id: str | None = None
    """The item to rate or explain."""
    history_item_ids: list[str] = field(default_factory=list)
    """An anonymous visitor's session history, oldest first (used when user_id is unknown)."""
    history_timestamps: list[int] = field(default_factory=list)
    """Epoch seconds of `history_item_ids`, one each (optional)."""
    run_id: str | None = None
    """The caller's id for this run. On a thread, a new id always starts a fresh run, even
    when the previous run was interrupted before it answered."""


@dataclass(kw_only=True)
class OutputState:
    recommendations: list[RankedItem] = field(default_factory=list)
    rating: float | None = None
    explanation: str = ""
    reply: str = ""
    degraded: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)


def merge_usage(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Sum per-agent LLM usage counters ({agent: {calls, prompt_tokens, ...}})."""
    merged = {agent: dict(counts) for agent, counts in left.items()}
    for agent, counts in right.items():
        into = merged.setdefault(agent, {})
        for key, value in counts.items():
            into[key] = into.get(key, 0) + value
    return merged


@dataclass(kw_only=True)
class State(InputState, OutputState):
    memory: UserMemory | None = None
    """What short-term memory holds about the user, loaded when the run starts."""
    intent: Intent | None = None
    conversation: Conversation | None = None
    """What the chat so far says (every turn read), set when a chat run starts."""
    profile: UserProfile | None = None
    pool: CandidatePool | None = None
    insights: list[ItemInsight] = field(default_factory=list)
    ranked: RankedList | None = None
    critique: Critique | None = None
    completed: Annotated[list[str], operator.add] = field(default_factory=list)
    """Agent steps finished so far, in order."""
    steps: Annotated[int, operator.add] = 0
    reflections: Annotated[int, operator.add] = 0
    degraded: Annotated[list[str], operator.add] = field(default_factory=list)
    usage: Annotated[dict[str, Any], merge_usage] = field(default_factory=dict)
    finished: bool = False
    """Set when a run ends; the next run on the same thread starts from a clean blackboard."""
    active_run_id: str | None = None
    """The `run_id` the blackboard belongs to."""

    def __post_init__(self) -> None:
        # A checkpointer that does not know the schemas (LangGraph Studio's, whose copy of
        # the graph loses the compiled allowlist in strict msgpack mode) loads them back as
        # plain dicts: read them as the schemas again.
        for name, schema in _SCHEMA_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, schema.model_validate(value))
        for name, schema in _SCHEMA_LISTS.items():
            values = getattr(self, name)
            if any(isinstance(v, dict) for v in values):
                setattr(self, name, [schema.model_validate(v) for v in values])


_SCHEMA_FIELDS: dict[str, type[BaseModel]] = {
    "memory": UserMemory,
    "intent": Intent,
    "conversation": Conversation,
    "profile": UserProfile,
    "pool": CandidatePool,
    "ranked": RankedList,
    "critique": Critique,
}
_SCHEMA_LISTS: dict[str, type[BaseModel]] = {
    "insights": ItemInsight,
    "recommendations": RankedItem,
}


def input_defaults() -> dict[str, Any]:
    """Every `InputState` field but `messages` at its default: what a finished run leaves on
    its thread, so that the next run sees only what it sends itself."""
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(InputState):
        if f.name == "messages":
            continue
        factory = f.default_factory
        defaults[f.name] = f.default if factory is dataclasses.MISSING else factory()
    return defaults


def checkpoint_serde() -> JsonPlusSerializer:
    """A checkpoint serializer allowed to load every type the graph state holds (the
    LangChain messages are allowed by LangGraph itself), so nothing is loaded unregistered
    and strict mode (LANGGRAPH_STRICT_MSGPACK=true) loads the whole state."""
    return JsonPlusSerializer(allowed_msgpack_modules=checkpoint_types())
