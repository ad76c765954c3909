"""The Searcher's offline brain for a conversation (the chat task).

Every catalog item gets a score from the evidence the deployment has, then the hard
constraints of the conversation decide which items may be candidates:

- prior: how often people bring the item up in logged conversations (log of the dialogues
  that mention it) when the toolbox holds dialogue statistics, else how many users rated
  it (standardised log count);
- co-mentions: how many logged conversations mention the item together with the titles
  this conversation named (either side; log count): what people suggest alongside them;
- references: the default model's scores for the titles the user named and did not reject
  (as a history), and for the user's own history when known (standardised);
- similar: the share of a reference title's attribute values the item has (genres,
  director, tags), best over the three latest references ("like Inception" finds what
  shares Inception's genres or director);
- keywords: text search for the latest turn's remaining words; preferred: soft attribute
  wishes (tags); preferences: what the user's feedback taught (`agents.feedback`);
- disliked: minus the share of a disliked title's attribute values the item has (what is
  like a title the user turned down moves down).

The weights differ by what the deployment has (`WITH_DIALOGUES`, `RATINGS_ONLY`): with
dialogue statistics, what people suggested alongside the named titles leads and the
ratings model orders the rest (weights chosen on the ReDial validation dialogues only);
without them, the ratings model on the named titles leads.

Hard constraints: the request's filters, the conversation's wanted and unwanted attribute
values (latest first, `agents.conversation`), its year range, content it rules out
("gore"), and every title already named or suggested. When they leave fewer items than
asked for, the year range is let go, then the wanted values (never what the user ruled
out): the items meeting every constraint come first, then those meeting all but the years,
then the others, and the pool says what was let go (`CandidatePool.relaxed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.conversation import ConversationReader
from agents.schemas import CandidatePool, Conversation, Intent, PoolCandidate
from agents.searcher import merged_filters, preference_scores
from agents.toolbox import Toolbox
from tools.base import History
from tools.candidates import CandidateFilters

SIMILAR_REFERENCES = 3
RELAXABLE = ("years", "wanted")
TIER_GAP = 1e6
"""Larger than any score difference: items meeting more constraints always rank first."""


@dataclass(frozen=True)
class ChatWeights:
    prior: float
    co_mentions: float
    references: float
    history: float
    similar: float
    keywords: float
    preferred: float
    preferences: float
    disliked: float


WITH_DIALOGUES = ChatWeights(
    prior=1.0,
    co_mentions=4.0,
    references=0.1,
    history=0.1,
    similar=0.5,
    keywords=0.1,
    preferred=1.0,
    preferences=0.5,
    disliked=0.5,
)
RATINGS_ONLY = ChatWeights(
    prior=0.3,
    co_mentions=0.0,
    references=1.0,
    history=0.5,
    similar=2.0,
    keywords=0.5,
    preferred=2.0,
    preferences=1.5,
    disliked=1.0,
)


@dataclass(frozen=True)
class ChatSearch:
    pool: CandidatePool
    intent: Intent
    """The intent the pool meets (with relaxed constraints dropped)."""


def search_conversation(
    box: Toolbox,
    history: History,
    conversation: Conversation,
    intent: Intent,
    filters: CandidateFilters,
    pool_size: int,
    need: int,
    *,
    preferences: dict[str, dict[str, float]] | None = None,
    text_scores: np.ndarray | None = None,
) -> ChatSearch:
    """The candidate pool for a conversation (see the module docstring). `filters` already
    hold the request's and memory's exclusions; `need` is how many items the answer wants."""
    ds = box.dataset
    weights = WITH_DIALOGUES if box.dialogues is not None else RATINGS_ONLY
    mentioned = box.indices(conversation.item_ids())
    references = box.indices(intent.reference_item_ids)
    scores = np.zeros(ds.n_items, dtype=np.float64)
    sources: dict[str, np.ndarray] = {}
    if box.dialogues is not None:
        scores += weights.prior * np.log1p(box.dialogues.mentions)
        if len(mentioned):
            co = np.log1p(box.dialogues.co_mentions(mentioned.tolist()))
            scores += weights.co_mentions * co
            sources["dialogues"] = co > 0
    else:
        scores += weights.prior * _standardised(np.log1p(box.catalog.popularity))
    if len(references):
        cf = box.model.score([History(references[::-1])])[0].astype(np.float64)
        scores += weights.references * _standardised(cf)
        scores += weights.similar * _similarity(box, references[:SIMILAR_REFERENCES].tolist())
        sources["collaborative"] = np.ones(ds.n_items, dtype=bool)
    disliked = box.indices(conversation.item_ids("disliked"))
    if len(disliked):
        scores -= weights.disliked * _similarity(box, disliked[-SIMILAR_REFERENCES:].tolist())
    if len(history):
        own = box.model.score([history])[0].astype(np.float64)
        scores += weights.history * _standardised(own)
        sources["collaborative"] = np.ones(ds.n_items, dtype=bool)
    query = " ".join(intent.keywords)
    if query.strip():
        text = text_scores if text_scores is not None else box.content.query_scores(query)
        scores += weights.keywords * _standardised(np.asarray(text, dtype=np.float64))
        sources["content"] = np.ones(ds.n_items, dtype=bool)
    for name, values in conversation.preferred.items():
        scores += weights.preferred * box.catalog.any_of(name, values)
    if preferences:
        scores += weights.preferences * preference_scores(box, preferences)
    excluded = sorted({*filters.exclude_item_ids, *conversation.excluded_item_ids})
    base = filters.model_copy(update={"exclude_item_ids": excluded})
    fixed = box.catalog.allowed(merged_filters(base, _unwanted_only(intent)), history)
    reader: ConversationReader = box.conversation_reader
    for flag in conversation.avoid:
        fixed &= ~reader.flagged(flag)
    met = intent
    relaxed: list[str] = []
    allowed = fixed & _wanted_mask(box, met)
    tier = np.where(allowed, float(len(RELAXABLE)), 0.0)
    for constraint in RELAXABLE:
        if int(allowed.sum()) >= min(need, int(fixed.sum())):
            break
        if not _constrains(met, constraint):
            continue
        met = _without(met, constraint)
        relaxed.append(constraint)
        wider = fixed & _wanted_mask(box, met)
        tier[wider & ~allowed] = len(RELAXABLE) - len(relaxed)
        allowed = wider
    # what meets more of the constraints comes first, then the score decides
    chosen = _top(scores + TIER_GAP * tier, allowed, box.catalog.popularity, pool_size)
    candidates = [
        PoolCandidate(
            item_id=ds.item_ids[i],
            score=round(float(scores[i]), 6),
            sources=[name for name, mask in sources.items() if mask[i]] or ["fallback"],
        )
        for i in chosen
    ]
    pool = CandidatePool(candidates=candidates, query=query or None, relaxed=relaxed)
    return ChatSearch(pool, met)


def _standardised(scores: np.ndarray) -> np.ndarray:
    finite = np.isfinite(scores)
    if not finite.any():
        return np.zeros_like(scores)
    mu, sd = scores[finite].mean(), scores[finite].std()
    out = np.where(finite, scores, mu)
    return (out - mu) / sd if sd > 0 else np.zeros_like(scores)


def _similarity(box: Toolbox, references: Sequence[int]) -> np.ndarray:
    """Per item, the largest share of a reference's attribute values it has."""
    best = np.zeros(box.dataset.n_items, dtype=np.float64)
    for ref in references:
        attrs = box.dataset.items[ref].attributes
        pairs = [
            (n, v) for n, values in attrs.items() if n not in ("year", "decade") for v in values
        ]
        if not pairs:
            continue
        shared = np.zeros(box.dataset.n_items, dtype=np.float64)
        for name, value in pairs:
            shared += box.catalog.mask(name, value)
        np.maximum(best, shared / len(pairs), out=best)
    return best


def _unwanted_only(intent: Intent) -> Intent:
    return Intent(unwanted=intent.unwanted)


def _wanted_mask(box: Toolbox, intent: Intent) -> np.ndarray:
    keep = np.ones(box.dataset.n_items, dtype=bool)
    for name, values in intent.wanted.items():
        keep &= box.catalog.any_of(name, values)
    if intent.year_min is not None or intent.year_max is not None:
        years = box.years
        known = ~np.isnan(years)
        if intent.year_min is not None:
            keep &= known & (years >= intent.year_min)
        if intent.year_max is not None:
            keep &= known & (years <= intent.year_max)
    return keep


def _constrains(intent: Intent, constraint: str) -> bool:
    if constraint == "years":
        return intent.year_min is not None or intent.year_max is not None
    return bool(intent.wanted)


def _without(intent: Intent, constraint: str) -> Intent:
    if constraint == "years":
        return intent.model_copy(update={"year_min": None, "year_max": None})
    return intent.model_copy(update={"wanted": {}})


def _top(scores: np.ndarray, allowed: np.ndarray, popularity: np.ndarray, k: int) -> list[int]:
    """The `k` best allowed items, ties broken by popularity, then by index."""
    pool = np.flatnonzero(allowed & np.isfinite(scores))
    if pool.size > k:
        kth = np.partition(scores[pool], pool.size - k)[pool.size - k]
        pool = pool[scores[pool] >= kth]
    order = np.lexsort((pool, -popularity[pool], -scores[pool]))[:k]
    return [int(i) for i in pool[order]]
