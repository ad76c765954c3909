"""The LLM brain of each agent: one structured call each, validated and grounded.

Every function takes what the agent's offline brain takes, a `StructuredCaller` and (where it
helps) the offline brain's own result, and returns `(result, call)`: `result` is None when the
node should fall back to the offline brain (the call failed, or nothing usable survived
validation), and `call` is the `StructuredResult` of the one LLM call (attempts, error,
usage, latency) for traces. Nothing here raises for LLM failures.

When there is nothing to ask (no candidates to rank or study, an empty list to review) no
call is made: `call.attempts == 0`, and the result is the offline one (None for a review),
which is not a degradation.

What an LLM says is never trusted as it stands:

- user messages, item titles and descriptions reach the model only as JSON inside
  `<data>...</data>` (with "<" and ">" escaped, so a text cannot close the tag);
- item references go through `agents.grounding` (catalog ids, candidate sets, filters);
- attribute names and values are mapped onto the catalog's own (case-insensitively),
  unknown ones dropped; numbers are clipped; free text is capped plain text (`clean_text`).

The schemas the model fills (`ProfileDraft`, `IntentDraft`, `ItemInsightBatch`,
`RerankAnswer`, `ReviewDraft`, `ManagerChoice`) use lists instead of free-form dicts and no
default values, so they are valid strict json_schema / function schemas; missing fields are
filled with empty values when the answer is read (lenient with small local models).

LLM calls per brain: one structured call each (`StructuredCaller.call`; its retries are
attempts of that call). `caller_for` builds chat models once per configuration.
"""

from __future__ import annotations

import json
import math
import threading
import types
import typing
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.context import Context
from agents.grounding import clean_text, ground_item_ids, ground_ranked_list
from agents.llm import (
    LLMConfig,
    StructuredCaller,
    StructuredResult,
    TokenUsage,
    UsageTracker,
    build_chat_model,
)
from agents.schemas import (
    CandidatePool,
    Critique,
    Intent,
    ItemInsight,
    ManagerDecision,
    RankedItem,
    RankedList,
    UserProfile,
)
from agents.toolbox import Toolbox
from core.errors import ConfigError
from recdata.dataset import Dataset
from tools.base import History
from tools.candidates import CandidateFilters

MAX_HISTORY_ITEMS = 20
"""Most recent history items shown to the User Analyst's model."""
VOCABULARY_MAX_VALUES = 60
"""Attributes with at most this many values have their vocabulary put in prompts."""
MAX_SUMMARY_CHARS = 400
MAX_INSIGHT_CHARS = 300
MAX_EXPLANATION_CHARS = 300
MAX_CRITIQUE_TEXT_CHARS = 300
MAX_CRITIQUE_ENTRIES = 10
MAX_REASON_CHARS = 200
MAX_QUESTION_CHARS = 300
MAX_KEYWORDS = 10
MAX_KEYWORD_CHARS = 40
MAX_REFERENCES = 10
MAX_AFFINITIES = 100
MAX_DESCRIPTION_CHARS = 240
"""Item descriptions in prompts are cut to this length."""
MAX_COUNT = 50
MIN_YEAR, MAX_YEAR = 1870, 2100
"""Years outside this range are not taken from the model."""
RERANK_MIN_CANDIDATES = 10
LLM_MAX_TOKENS = 2048
"""Completion budget of each structured call (a 20-item batch needs about 1,000 tokens)."""

# ---- the schemas the model fills -----------------------------------------------------------


def _empty_value(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation):
        return None
    if annotation is list or origin is list:
        return []
    if annotation is bool:
        return False
    if annotation is str:
        return ""
    return None


class _Draft(BaseModel):
    """A model-facing schema: every field required in the JSON schema (no defaults, as strict
    structured outputs demand), but an answer that leaves a field out reads it as empty."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _fill_missing(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for name, info in cls.model_fields.items():
            if filled.get(name) is None:
                empty = _empty_value(info.annotation)
                if empty is not None or name not in filled:
                    filled[name] = empty
        return filled


class AttributeAffinity(_Draft):
    attribute: str = Field(description="a catalog attribute name, e.g. genres")
    value: str = Field(description="one of its catalog values")
    affinity: float = Field(description="from -1 (avoids) to 1 (loves)")


class ProfileDraft(_Draft):
    """The user's taste profile."""

    summary: str = Field(description="two or three sentences on the user's tastes")
    affinities: list[AttributeAffinity] = Field(description="attribute values liked or avoided")


class AttributeValue(_Draft):
    attribute: str = Field(description="a catalog attribute name, e.g. genres")
    value: str = Field(description="one of its catalog values")


class IntentDraft(_Draft):
    """A catalog search read from the user's request."""

    wanted: list[AttributeValue] = Field(description="attribute values the user asks for")
    unwanted: list[AttributeValue] = Field(description="attribute values the user rules out")
    reference_items: list[str] = Field(
        description="catalog ids (or exact titles) of items named as examples"
    )
    year_min: int | None = Field(description="earliest release year, or null")
    year_max: int | None = Field(description="latest release year, or null")
    count: int | None = Field(description="how many items were asked for, or null")
    keywords: list[str] = Field(description="other content words worth a text search")
    needs_clarification: bool = Field(description="true when the request is too vague")
    clarifying_question: str | None = Field(description="a question to ask, or null")


class ItemNote(_Draft):
    item_id: str = Field(description="the candidate's catalog id")
    summary: str = Field(description="one factual sentence on why it may suit the user or not")


class ItemInsightBatch(_Draft):
    """One note per candidate item."""

    items: list[ItemNote]


class RankedPick(_Draft):
    item_id: str = Field(description="a candidate's catalog id")
    explanation: str = Field(description="one sentence for the user")


class RerankAnswer(_Draft):
    """The candidates, best first."""

    items: list[RankedPick]


class ReviewDraft(_Draft):
    """A verdict on a ranked list."""

    accept: bool
    problems: list[str]
    suggestions: list[str]
    item_ids: list[str] = Field(description="ids of listed items the problems concern")


class ManagerChoice(_Draft):
    """The next step."""

    next: str = Field(description="one of the allowed next steps")
    reason: str


# ---- prompt building -----------------------------------------------------------------------


def as_data(payload: object) -> str:
    """`payload` as JSON inside <data> tags; no text in it can close or open a tag."""
    text = json.dumps(payload, ensure_ascii=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<data>\n{text}\n</data>"


def _messages(prompt: str, instructions: str, payload: object) -> list[BaseMessage]:
    return [SystemMessage(prompt), HumanMessage(f"{instructions}\n{as_data(payload)}")]


class CatalogVocabulary:
    """Attribute names and values of one catalog, for case-insensitive mapping."""

    def __init__(self, dataset: Dataset) -> None:
        names = sorted({name for item in dataset.items for name in item.attributes})
        self.values: dict[str, dict[str, str]] = {
            name: {value.casefold(): value for value in dataset.attribute_values(name)}
            for name in names
        }
        self.names = {name.casefold(): name for name in names}
        self.small = {
            name: sorted(values.values())
            for name, values in self.values.items()
            if 1 < len(values) <= VOCABULARY_MAX_VALUES
        }

    def attribute(self, name: object) -> str | None:
        """The catalog attribute `name` means (case and a plural "s" do not matter)."""
        if not isinstance(name, str):
            return None
        key = name.strip().casefold()
        for candidate in (key, key + "s", key.removesuffix("s")):
            if candidate in self.names:
                return self.names[candidate]
        return None

    def value(self, attribute: object, value: object) -> tuple[str, str] | None:
        """(catalog attribute, catalog value) for a proposed pair, or None.

        An unknown attribute name is forgiven when the value belongs to exactly one of the
        small-vocabulary attributes.
        """
        if not isinstance(value, str):
            return None
        key = value.strip().casefold()
        name = self.attribute(attribute)
        if name is not None:
            found = self.values[name].get(key)
            return (name, found) if found is not None else None
        owners = [n for n in self.small if key in self.values[n]]
        if len(owners) == 1:
            return owners[0], self.values[owners[0]][key]
        return None


_vocabularies: weakref.WeakKeyDictionary[Dataset, CatalogVocabulary] = weakref.WeakKeyDictionary()
_vocabulary_lock = threading.Lock()


def catalog_vocabulary(dataset: Dataset) -> CatalogVocabulary:
    """The vocabulary of `dataset`, built once per dataset."""
    with _vocabulary_lock:
        vocabulary = _vocabularies.get(dataset)
        if vocabulary is None:
            vocabulary = _vocabularies[dataset] = CatalogVocabulary(dataset)
        return vocabulary


def _item_card(box: Toolbox, item_id: str, *, description: bool = True) -> dict[str, Any]:
    item = box.dataset.items[box.dataset.item_index[item_id]]
    card: dict[str, Any] = {"id": item.item_id, "title": item.title}
    card.update({name: list(values) for name, values in item.attributes.items()})
    if description and item.text:
        card["description"] = item.text[:MAX_DESCRIPTION_CHARS]
    return card


def _recent_history(box: Toolbox, history: History, limit: int) -> list[dict[str, Any]]:
    """The last `limit` history items, most recent first, with ratings when known."""
    rows: list[dict[str, Any]] = []
    n = len(history)
    for position in range(n - 1, max(n - 1 - limit, -1), -1):
        item = box.dataset.items[int(history.items[position])]
        row = _item_card(box, item.item_id, description=False)
        if history.ratings is not None:
            row["rating"] = float(history.ratings[position])
        rows.append(row)
    return rows


def _intent_payload(intent: Intent | None) -> dict[str, Any]:
    return intent.model_dump(exclude_defaults=True) if intent is not None else {}


def skipped_call() -> StructuredResult[Any]:
    """The record of a call not made because there was nothing to ask."""
    return StructuredResult(value=None, attempts=0, error=None, usage=TokenUsage(), latency_s=0.0)


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# ---- User Analyst --------------------------------------------------------------------------


def llm_user_profile(
    caller: StructuredCaller,
    box: Toolbox,
    user_id: str | None,
    history: History,
    intent: Intent | None,
    offline: UserProfile,
    prompt: str,
) -> tuple[UserProfile | None, StructuredResult[ProfileDraft]]:
    """The User Analyst's profile: the model's summary and affinities, on top of `offline`.

    Kept from `offline`: user id, recent items, interaction count, cold start, constraints.
    From the model: the summary (capped plain text; `offline`'s when empty) and affinities
    mapped onto catalog attribute values, clipped to [-1, 1] (unknown or non-finite dropped,
    the first mention of a value wins; `offline`'s when none survive).
    """
    vocabulary = catalog_vocabulary(box.dataset)
    payload = {
        "history_most_recent_first": _recent_history(box, history, MAX_HISTORY_ITEMS),
        "n_interactions": len(history),
        "stated_wishes": _intent_payload(intent),
        "attribute_vocabulary": vocabulary.small,
    }
    if offline.memories:  # the user's own earlier statements and feedback (data, not orders)
        payload["remembered_from_earlier_sessions"] = [
            clean_text(m, MAX_SUMMARY_CHARS) for m in offline.memories
        ]
    if offline.affinities:
        payload["current_affinities"] = {
            name: dict(sorted(values.items(), key=lambda kv: -abs(kv[1]))[:10])
            for name, values in offline.affinities.items()
        }
    instructions = (
        "Profile this user. Affinities must use the attribute names and values of the "
        "vocabulary (or of the history items), with values from -1 to 1."
    )
    call = caller.call(ProfileDraft, _messages(prompt, instructions, payload))
    draft = call.value
    if draft is None:
        return None, call
    affinities: dict[str, dict[str, float]] = {}
    for entry in draft.affinities[:MAX_AFFINITIES]:
        pair = vocabulary.value(entry.attribute, entry.value)
        affinity = _finite(entry.affinity)
        if pair is None or affinity is None:
            continue
        name, value = pair
        values = affinities.setdefault(name, {})
        if value not in values:
            values[value] = round(max(-1.0, min(1.0, affinity)), 3)
    summary = clean_text(draft.summary, MAX_SUMMARY_CHARS) or offline.summary
    profile = offline.model_copy(
        update={"summary": summary, "affinities": affinities or offline.affinities}
    )
    return profile, call


# ---- Searcher ------------------------------------------------------------------------------


def _ground_attribute_values(
    vocabulary: CatalogVocabulary, entries: Sequence[AttributeValue]
) -> dict[str, list[str]]:
    grounded: dict[str, list[str]] = {}
    for entry in entries:
        pair = vocabulary.value(entry.attribute, entry.value)
        if pair is not None and pair[1] not in grounded.setdefault(pair[0], []):
            grounded[pair[0]].append(pair[1])
    return {name: values for name, values in grounded.items() if values}


def _year(value: object) -> int | None:
    number = _finite(value)
    if number is None or not number.is_integer() or not MIN_YEAR <= number <= MAX_YEAR:
        return None
    return int(number)


def llm_intent(
    caller: StructuredCaller, box: Toolbox, message: str, prompt: str
) -> tuple[Intent | None, StructuredResult[IntentDraft]]:
    """The Searcher's reading of a free-text `message` as an `Intent`.

    Attribute values are mapped onto catalog values (case-insensitively; unknown dropped; a
    value both wanted and unwanted stays unwanted); reference items are resolved to catalog
    ids by `agents.grounding` (ids or titles; unresolvable dropped); years outside
    `MIN_YEAR..MAX_YEAR` are dropped and a reversed range is put in order; the count is
    clipped to 1..`MAX_COUNT`; keywords and the question are capped plain text.
    """
    vocabulary = catalog_vocabulary(box.dataset)
    payload = {"attribute_vocabulary": vocabulary.small, "user_message": message}
    instructions = (
        "Read the user's message below as a catalog search. Use only attribute names and "
        "values of the vocabulary (other catalog attributes such as director or year may be "
        "used with their exact values). Name reference items by their title."
    )
    call = caller.call(IntentDraft, _messages(prompt, instructions, payload))
    draft = call.value
    if draft is None:
        return None, call
    wanted = _ground_attribute_values(vocabulary, draft.wanted)
    unwanted = _ground_attribute_values(vocabulary, draft.unwanted)
    for name, values in unwanted.items():
        if name in wanted:
            wanted[name] = [v for v in wanted[name] if v not in values]
            if not wanted[name]:
                del wanted[name]
    references = ground_item_ids(
        [r for r in draft.reference_items[:MAX_REFERENCES] if isinstance(r, str)],
        box.dataset,
        filters=CandidateFilters(exclude_seen=False),
    )
    year_min, year_max = _year(draft.year_min), _year(draft.year_max)
    if year_min is not None and year_max is not None and year_min > year_max:
        year_min, year_max = year_max, year_min
    count = None
    if draft.count is not None and _finite(draft.count) is not None:
        count = max(1, min(MAX_COUNT, int(draft.count)))
    keywords: list[str] = []
    for word in draft.keywords:
        cleaned = clean_text(word, MAX_KEYWORD_CHARS)
        if cleaned and cleaned.casefold() not in {k.casefold() for k in keywords}:
            keywords.append(cleaned)
        if len(keywords) == MAX_KEYWORDS:
            break
    question = clean_text(draft.clarifying_question, MAX_QUESTION_CHARS) or None
    something = wanted or unwanted or references or year_min or year_max or keywords
    intent = Intent(
        wanted=wanted,
        unwanted=unwanted,
        reference_item_ids=references,
        year_min=year_min,
        year_max=year_max,
        count=count,
        keywords=keywords,
        needs_clarification=bool(draft.needs_clarification) or not something,
        clarifying_question=question,
    )
    return intent, call


# ---- Item Analyst --------------------------------------------------------------------------


def llm_item_insights(
    caller: StructuredCaller,
    box: Toolbox,
    history: History,
    item_ids: Sequence[str],
    offline: Sequence[ItemInsight],
    prompt: str,
) -> tuple[list[ItemInsight] | None, StructuredResult[ItemInsightBatch]]:
    """The Item Analyst's notes on `item_ids`, in one batched call, merged into `offline`.

    Each offline insight takes the model's summary (capped plain text) when the model wrote
    one for it (its id resolved by `agents.grounding` within the requested ids; others are
    ignored); numbers and evidence stay the offline ones. None when no summary survives.
    """
    requested = [i for i in item_ids if i in box.dataset.item_index]
    by_id = {insight.item_id: insight for insight in offline}
    candidates = []
    for item_id in requested:
        card = _item_card(box, item_id)
        insight = by_id.get(item_id)
        if insight is not None:
            card["evidence"] = insight.evidence
        candidates.append(card)
    payload = {
        "user_history_most_recent_first": _recent_history(box, history, 10),
        "candidates": candidates,
    }
    instructions = "Write one note per candidate id below, using only this evidence."
    if not requested:
        return list(offline), skipped_call()
    call = caller.call(ItemInsightBatch, _messages(prompt, instructions, payload))
    batch = call.value
    if batch is None:
        return None, call
    report = ground_ranked_list(
        [{"item_id": note.item_id, "explanation": note.summary} for note in batch.items],
        box.dataset,
        k=len(requested),
        filters=CandidateFilters(exclude_seen=False),
        allowed_ids=requested,
    )
    summaries = {
        item.item_id: text
        for item in report.items
        if (text := clean_text(item.explanation, MAX_INSIGHT_CHARS))
    }
    if not summaries:
        return None, call
    merged = [
        insight.model_copy(update={"summary": summaries[insight.item_id]})
        if insight.item_id in summaries
        else insight
        for insight in offline
    ]
    return merged, call


# ---- Ranker --------------------------------------------------------------------------------


def rerank_size(pool_size: int, count: int) -> int:
    """How many of the pool's best candidates the Ranker's model re-orders."""
    return min(pool_size, max(2 * count, RERANK_MIN_CANDIDATES))


def llm_rerank(
    caller: StructuredCaller,
    box: Toolbox,
    pool: CandidatePool,
    insights: Sequence[ItemInsight],
    profile: UserProfile | None,
    count: int,
    offline: RankedList,
    history: History,
    filters: CandidateFilters,
    prompt: str,
    *,
    critique: Critique | None = None,
) -> tuple[RankedList | None, StructuredResult[RerankAnswer]]:
    """A listwise re-rank of the pool's top `rerank_size` candidates by the model.

    The answer is grounded (`ground_ranked_list`: candidates of `pool` only, `filters` and
    `history`; titles and decorated ids repaired, the rest dropped) and refilled from the
    `offline` ranking (whose explanation and reasons the refilled items keep), then from the
    rest of the pool. Items the model
    placed keep its explanation (capped; the offline one when empty) and the offline reasons.
    Scores are 1 / (1 + position). A rejected `critique` bans its item ids and is shown to
    the model. None when none of the model's picks survive grounding.
    """
    banned = set(critique.item_ids) if critique is not None and not critique.accept else set()
    allowed = [c for c in pool.candidates if c.item_id not in banned]
    shown = allowed[: rerank_size(len(allowed), count)]
    by_insight = {insight.item_id: insight for insight in insights}
    candidates = []
    for position, candidate in enumerate(shown, start=1):
        if candidate.item_id not in box.dataset.item_index:
            continue
        card = _item_card(box, candidate.item_id)
        card["model_rank"] = position
        insight = by_insight.get(candidate.item_id)
        if insight is not None and insight.summary:
            card["insight"] = insight.summary
        candidates.append(card)
    if not candidates or count <= 0:
        return offline, skipped_call()
    payload: dict[str, Any] = {"count": count, "candidates": candidates}
    if profile is not None:
        payload["user"] = {
            "summary": profile.summary,
            "affinities": profile.affinities,
            "constraints": _intent_payload(profile.constraints),
        }
    if banned and critique is not None:
        payload["review_of_previous_list"] = {
            "problems": critique.problems,
            "suggestions": critique.suggestions,
        }
    instructions = (
        f"Choose and order the best {count} candidates for this user, best first, by their ids."
    )
    call = caller.call(RerankAnswer, _messages(prompt, instructions, payload))
    answer = call.value
    if answer is None:
        return None, call
    offline_items = {item.item_id: item for item in offline.items}
    allowed_ids = [c.item_id for c in allowed]
    report = ground_ranked_list(
        [{"item_id": pick.item_id, "explanation": pick.explanation} for pick in answer.items],
        box.dataset,
        k=count,
        history=history,
        filters=filters,
        allowed_ids=allowed_ids,
        fallback=_fallback(offline, allowed_ids),
    )
    if not report.kept and not report.repaired:
        return None, call
    refilled = set(report.refilled)
    items: list[RankedItem] = []
    for position, grounded in enumerate(report.items):
        known = offline_items.get(grounded.item_id)
        explanation = clean_text(grounded.explanation, MAX_EXPLANATION_CHARS)
        if known is not None and (grounded.item_id in refilled or not explanation):
            explanation = known.explanation
        elif not explanation and grounded.item_id in by_insight:
            explanation = by_insight[grounded.item_id].summary
        items.append(
            RankedItem(
                item_id=grounded.item_id,
                score=round(1.0 / (1 + position), 6),
                explanation=explanation,
                reasons=list(known.reasons) if known is not None else [],
            )
        )
    return RankedList(items=items), call


def _fallback(offline: RankedList, allowed_ids: Sequence[str]) -> list[str]:
    """Refill order: the offline ranking, then the rest of the allowed pool in pool order."""
    allowed = set(allowed_ids)
    ids = [item.item_id for item in offline.items if item.item_id in allowed]
    listed = set(ids)
    return ids + [i for i in allowed_ids if i not in listed]


# ---- Reflector -----------------------------------------------------------------------------


def _clean_list(texts: Sequence[object], max_chars: int) -> list[str]:
    cleaned = (clean_text(text, max_chars) for text in texts[:MAX_CRITIQUE_ENTRIES])
    return [text for text in cleaned if text]


def llm_critique(
    caller: StructuredCaller,
    box: Toolbox,
    ranked: RankedList,
    profile: UserProfile | None,
    intent: Intent | None,
    prompt: str,
) -> tuple[Critique | None, StructuredResult[ReviewDraft]]:
    """The Reflector's review by the model.

    `item_ids` keeps only ids of `ranked` (titles and decorated ids resolved within it);
    problems and suggestions are capped plain text. A rejection that names no problem and no
    item gives nothing to act on and is read as acceptance.
    """
    listed = [item.item_id for item in ranked.items if item.item_id in box.dataset.item_index]
    payload: dict[str, Any] = {
        "ranked_list": [
            {**_item_card(box, item.item_id), "explanation": item.explanation}
            for item in ranked.items
            if item.item_id in box.dataset.item_index
        ],
        "intent": _intent_payload(intent),
    }
    if profile is not None:
        payload["user"] = {"summary": profile.summary, "affinities": profile.affinities}
    instructions = "Review this ranked list. Name problem items by their ids."
    if not listed:
        return None, skipped_call()
    call = caller.call(ReviewDraft, _messages(prompt, instructions, payload))
    draft = call.value
    if draft is None:
        return None, call
    item_ids = ground_item_ids(
        [i for i in draft.item_ids if isinstance(i, str)],
        box.dataset,
        filters=CandidateFilters(exclude_seen=False),
        allowed_ids=listed,
    )
    problems = _clean_list(draft.problems, MAX_CRITIQUE_TEXT_CHARS)
    suggestions = _clean_list(draft.suggestions, MAX_CRITIQUE_TEXT_CHARS)
    accept = bool(draft.accept) or not (problems or item_ids)
    critique = Critique(
        accept=accept,
        problems=[] if accept else problems,
        suggestions=[] if accept else suggestions,
        item_ids=[] if accept else item_ids,
    )
    return critique, call


# ---- Manager -------------------------------------------------------------------------------


def llm_manager_decision(
    caller: StructuredCaller, state_summary: Mapping[str, Any], allowed: Sequence[str], prompt: str
) -> tuple[ManagerDecision | None, StructuredResult[ManagerChoice]]:
    """The Manager's next step chosen by the model among `allowed` (case-insensitively).

    None when the model picks anything else (the Manager then follows its plan).
    """
    payload = {"blackboard": dict(state_summary), "allowed_next_steps": list(allowed)}
    instructions = "Choose the next step: exactly one of allowed_next_steps."
    call = caller.call(ManagerChoice, _messages(prompt, instructions, payload))
    choice = call.value
    if choice is None or not isinstance(choice.next, str):
        return None, call
    options = {option.casefold(): option for option in allowed}
    picked = options.get(choice.next.strip().casefold())
    if picked is None:
        return None, call
    try:
        decision = ManagerDecision(next=picked, reason=clean_text(choice.reason, MAX_REASON_CHARS))  # type: ignore[arg-type]
    except ValueError:  # an `allowed` entry that is not an agent name
        return None, call
    return decision, call


# ---- callers -------------------------------------------------------------------------------

_ModelKey = tuple[str, str | None, str, float, int]
_models: dict[_ModelKey, BaseChatModel | ConfigError] = {}
_models_lock = threading.Lock()


def llm_config_for(context: Context, agent: str) -> LLMConfig | None:
    """The `LLMConfig` of `agent` in `context`; None when the agent runs offline.

    Raises `ConfigError` for settings LLMConfig rejects (unknown structured output method,
    non-positive timeout, negative retries).
    """
    model = context.model_for(agent)
    if not model:
        return None
    try:
        return LLMConfig(
            model=model,
            base_url=context.base_url or None,
            timeout_s=context.llm_timeout_s,
            max_retries=context.llm_max_retries,
            structured_output_method=context.structured_output_method,  # type: ignore[arg-type]
            max_tokens=LLM_MAX_TOKENS,
        )
    except ValueError as exc:
        raise ConfigError(f"LLM settings of {agent}: {exc}") from exc


def _chat_model(config: LLMConfig) -> BaseChatModel:
    key: _ModelKey = (
        config.model,
        config.base_url,
        config.structured_output_method,
        config.timeout_s,
        config.max_retries,
    )
    with _models_lock:
        cached = _models.get(key)
        if cached is None:
            try:
                cached = build_chat_model(config)
            except ConfigError as exc:
                cached = exc
            _models[key] = cached
    if isinstance(cached, ConfigError):
        raise cached
    return cached


def caller_for(
    context: Context, agent: str, tracker: UsageTracker | None
) -> StructuredCaller | None:
    """A structured caller for `agent` under `context`, recording usage in `tracker`.

    None when the agent's model is "" (offline brain). Chat models are built once per
    (model, base_url, method, timeout, retries) and shared; the caller itself is cheap and
    made per call because it carries the run's tracker.

    A model that cannot be built (missing provider package or API key, bad model name) raises
    `ConfigError` -- a configuration mistake fails the run at its first LLM step with one
    clear message instead of degrading every step. The failure is cached like a model, so
    later runs fail at once without retrying the build; `clear_model_cache()` forgets it
    (after fixing the environment). `check_llm_config(context)` raises the same error up
    front, for a service to call before it accepts runs.
    """
    config = llm_config_for(context, agent)
    if config is None:
        return None
    return StructuredCaller(_chat_model(config), config, agent=agent, tracker=tracker)


AGENTS = ("Manager", "UserAnalyst", "ItemAnalyst", "Searcher", "Ranker", "Reflector", "Reply")


def check_llm_config(context: Context) -> list[str]:
    """Build the chat model of every agent that has one; the agents running with an LLM.

    Raises `ConfigError` naming the first agent whose model cannot be built.
    """
    with_llm = []
    for agent in AGENTS:
        config = llm_config_for(context, agent)
        if config is None:
            continue
        try:
            _chat_model(config)
        except ConfigError as exc:
            raise ConfigError(f"{agent}: {exc}") from exc
        with_llm.append(agent)
    return with_llm


def clear_model_cache() -> None:
    """Forget built chat models and cached build failures."""
    with _models_lock:
        _models.clear()
