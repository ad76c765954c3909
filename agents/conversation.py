"""Reading a whole chat conversation, turn by turn, into what the agents need: a
`Conversation` (every title either side named, what the user thought of it, what the
assistant already suggested, unknown titles, what the catalog cannot search) and the
`Intent` of the conversation so far, the latest constraint first.

Each turn is read once (`ConversationReader` keeps the readings of recent turns, keyed by
their text and what came before), so a turn of a long conversation costs about one new
message:

- Titles: `tools.titles.TitleLinker` on every turn, with the items named before as context
  (duplicates, "the first one"). Titles the linker cannot place are reported unknown.
- Opinions (`agents.chat_cues`): a user's clause that names a title says what they think of
  it; a user turn that names none reacts to the assistant's latest suggestion ("not that
  one, I've seen it").
- Everything else in a user turn (genres, people the catalog lists, years, count, keywords)
  is read by the offline intent parser (`agents.intent`) with the titles, gore words and
  unknown names blanked out, plus moods ("lighter"), content to avoid ("nothing too
  gory") and the catalog's multi-word tags the parser left out ("a dark comedy" is a
  comedy and what people tagged "dark comedy": `agents.chat_cues.TagPhrases`).

Merging the turns, the latest word wins: a later turn's wanted values of an attribute
replace earlier ones ("a scary film" ... "something lighter, a comedy" wants comedies, not
horror), unwanted values add up until a later turn asks for them, the latest year range and
count hold, keywords come from the latest user turn. Wanted values of tags and of other
large free-form attributes are preferences, not filters. References are the titles the user
named and did not reject, and suggestions they liked, most recent first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents import chat_cues as cues
from agents.chat_cues import Opinion, PersonCue
from agents.intent import parse_intent
from agents.intent_message import value_key
from agents.intent_vocab import CONCEPT_KEYS
from agents.schemas import Conversation, Intent, MentionedItem, PersonRequest
from recdata.dataset import Dataset
from recdata.titles import fold
from tools import title_text
from tools.titles import Linked, TitleLinker

Role = Literal["user", "assistant"]
MAX_REFERENCES = 10
CACHE_TURNS = 4_096
GORE = "gore"
RECOMMENDED_KEY = "recommended_item_ids"
"""Where an assistant message keeps the ids it recommended (`additional_kwargs`)."""
CAST_ATTRIBUTES = ("cast", "actors", "actor", "stars", "starring")
MAIN_ATTRIBUTE = "genres"
SOFT_MIN_VALUES = 60
"""Attributes with more distinct values than this (and no person names) are preferences."""


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Role
    text: str
    item_ids: tuple[str, ...] = ()
    """Items an assistant turn recommended (from its message metadata), best first."""


def chat_turns(messages: Sequence[BaseMessage]) -> list[ChatTurn]:
    """The user and assistant turns of LangChain messages, oldest first (system and tool
    messages are not part of the conversation)."""
    turns: list[ChatTurn] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            turns.append(ChatTurn("user", message.text))
        elif isinstance(message, AIMessage) and not message.tool_calls:
            ids = message.additional_kwargs.get(RECOMMENDED_KEY) or ()
            turns.append(ChatTurn("assistant", message.text, tuple(str(i) for i in ids)))
    return turns


@dataclass(frozen=True, slots=True)
class _Turn:
    """One turn as read on its own (with the items named before it as context)."""

    items: tuple[int, ...] = ()
    opinions: tuple[Opinion | None, ...] = ()
    unknown: tuple[str, ...] = ()
    reaction: Opinion | None = None
    intent: Intent = field(default_factory=Intent)
    signal: bool = False
    lighter: bool = False
    avoid_gore: bool = False
    want_gore: bool = False
    people: tuple[PersonCue, ...] = ()
    cues: tuple[str, ...] = ()
    words: frozenset[str] = frozenset()


@dataclass
class ConversationReading:
    conversation: Conversation
    intent: Intent


class ConversationReader:
    """Reads conversations against one catalog (see the module docstring). Thread-safe."""

    def __init__(self, dataset: Dataset, linker: TitleLinker) -> None:
        self.dataset = dataset
        self.linker = linker
        names = dataset.attribute_names
        self.has_cast = any(name.lower() in CAST_ATTRIBUTES for name in names)
        self.soft_attributes = frozenset(
            name
            for name in names
            if name in cues.TAG_ATTRIBUTES
            or (
                name not in (MAIN_ATTRIBUTE, "year", "decade")
                and len(dataset.attribute_values(name)) > SOFT_MIN_VALUES
                and not _people_attribute(name)
            )
        )
        self.tags = cues.TagPhrases(dataset)
        self.searchable_names = frozenset(
            fold(value)
            for name in names
            if name != "year"
            for value in dataset.attribute_values(name)
        )
        keys = {value_key(v): v for v in dataset.attribute_values(MAIN_ATTRIBUTE)}
        self.dark_values = tuple(
            keys[k] for concept in cues.DARK_CONCEPTS for k in CONCEPT_KEYS[concept] if k in keys
        )
        self.horror_values = tuple(keys[k] for k in CONCEPT_KEYS["horror"] if k in keys)
        self.question = parse_intent("", dataset).clarifying_question or ""
        self._flags: dict[str, np.ndarray] = {GORE: self._gory()}
        self._cache: OrderedDict[tuple[str, str, tuple[int, ...]], _Turn] = OrderedDict()
        self._lock = threading.Lock()

    def _gory(self) -> np.ndarray:
        mask = cues.gory_items(self.dataset, self.horror_values)
        mask.flags.writeable = False
        return mask

    def flagged(self, flag: str) -> np.ndarray:
        """Boolean mask of the items carrying a content flag ("gore"; computed when the
        reader is built, ~0.1 s for 10,000 items); no item carries an unknown flag."""
        found = self._flags.get(flag)
        return found if found is not None else np.zeros(self.dataset.n_items, dtype=bool)

    # ---- one turn ------------------------------------------------------------------------

    def _turn(self, turn: ChatTurn, context: tuple[int, ...]) -> _Turn:
        key = (turn.role, turn.text, context)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        read = self._read_turn(turn, context)
        with self._lock:
            self._cache[key] = read
            while len(self._cache) > CACHE_TURNS:
                self._cache.popitem(last=False)
        return read

    def _read_turn(self, turn: ChatTurn, context: tuple[int, ...]) -> _Turn:
        text = turn.text
        linked = self.linker.link(text, context)
        items = tuple(dict.fromkeys(m.item for m in linked.mentions))
        if turn.role == "assistant":
            return _Turn(items=items, opinions=(None,) * len(items))
        tokens = title_text.tokenize(text[:4_000])
        bounds = cues.clause_bounds(tokens)
        opinions = self._opinions(tokens, bounds, linked, items)
        reaction = None if items else cues.opinion_of([t.word for t in tokens])
        avoid_gore, want_gore, gore_tokens = cues.gore_cues(tokens)
        people = [p for p in cues.person_cues(tokens, text) if not self._searchable(p, linked)]
        lighter_spans = cues.token_spans(tokens, cues.LIGHTER)
        lighter = bool(lighter_spans)
        blanks = [(m.start, m.end) for m in linked.mentions]
        blanks += [(tokens[k].start, tokens[k].end) for k in gore_tokens]
        people_spans = [(p.start, p.end) for p in people]
        blanks += people_spans
        blanks += [(tokens[a].start, tokens[b - 1].end) for a, b in lighter_spans]
        blanks += [span for phrase in linked.unknown if (span := _find(text, phrase))]
        intent = parse_intent(_blanked(text, blanks), self.dataset)
        titles = [(m.start, m.end) for m in linked.mentions]
        found_tags = self.tags.find(tokens, [*titles, *people_spans])
        intent = _with_tags(intent, found_tags)
        read_cues = []
        if lighter:
            read_cues.append("lighter")
        if avoid_gore:
            read_cues.append("not gory")
        signal = bool(
            items
            or not intent.needs_clarification
            or lighter
            or avoid_gore
            or want_gore
            or people
            or linked.unknown
            or found_tags
        )
        return _Turn(
            items=items,
            opinions=opinions,
            unknown=linked.unknown,
            reaction=reaction,
            intent=intent,
            signal=signal,
            lighter=lighter,
            avoid_gore=avoid_gore,
            want_gore=want_gore,
            people=tuple(people),
            cues=tuple(read_cues),
            words=frozenset(t.word for t in tokens),
        )

    def _opinions(
        self,
        tokens: list[title_text.Token],
        bounds: list[tuple[int, int]],
        linked: Linked,
        items: tuple[int, ...],
    ) -> tuple[Opinion | None, ...]:
        by_item: dict[int, Opinion | None] = {}
        for mention in linked.mentions:
            k = next((n for n, t in enumerate(tokens) if t.end > mention.start), 0)
            start, end = cues.clause_of(bounds, k)
            words = [
                t.word for t in tokens[start:end] if not mention.start <= t.start < mention.end
            ]
            opinion = cues.opinion_of(words)
            if opinion is not None or mention.item not in by_item:
                by_item[mention.item] = opinion
        return tuple(by_item.get(i) for i in items)

    def _searchable(self, person: PersonCue, linked: Linked) -> bool:
        """A name the catalog lists (the intent parser reads it), or a title."""
        if fold(person.name) in self.searchable_names:
            return True
        return any(m.start < person.end and person.start < m.end for m in linked.mentions)

    # ---- the conversation ----------------------------------------------------------------

    def read(self, turns: Sequence[ChatTurn]) -> ConversationReading:
        """The conversation and its intent (see the module docstring)."""
        ds = self.dataset
        context: list[int] = []
        readings: list[_Turn] = []
        for turn in turns:
            read = self._turn(turn, tuple(context))
            readings.append(read)
            context.extend(i for i in read.items if i not in context)
        mentions: dict[int, MentionedItem] = {}
        suggested: list[str] = []
        last_suggestion: int | None = None
        for n, (turn, read) in enumerate(zip(turns, readings, strict=True)):
            for item, opinion in zip(read.items, read.opinions, strict=True):
                found = mentions.get(item)
                if found is None:
                    found = MentionedItem(item_id=ds.item_ids[item], role=turn.role, turn=n)
                    mentions[item] = found
                if opinion is not None:
                    update = {"opinion": opinion, "opinion_turn": n}
                    mentions[item] = found.model_copy(update=update)
            if turn.role == "assistant":
                named = [ds.item_ids[i] for i in read.items]
                for item_id in [*named, *turn.item_ids]:
                    if item_id in ds.item_index and item_id not in suggested:
                        suggested.append(item_id)
                first = named[0] if named else (turn.item_ids[0] if turn.item_ids else None)
                if first is not None and first in ds.item_index:
                    last_suggestion = ds.item_index[first]
            else:
                if read.reaction is not None and last_suggestion is not None:
                    found = mentions.get(last_suggestion)
                    if found is None:
                        found = MentionedItem(
                            item_id=ds.item_ids[last_suggestion], role="assistant", turn=n - 1
                        )
                    update = {"opinion": read.reaction, "opinion_turn": n}
                    mentions[last_suggestion] = found.model_copy(update=update)
                last_suggestion = None
        user = [(n, r) for n, (t, r) in enumerate(zip(turns, readings, strict=True))]
        user = [(n, r) for n, r in user if turns[n].role == "user"]
        latest = user[-1][1] if user else _Turn()
        intent, preferred, avoid = self._merge([r for _, r in user], list(mentions.values()))
        conversation = Conversation(
            turns=len(turns),
            mentions=list(mentions.values()),
            suggested_item_ids=suggested,
            unknown_titles=list(latest.unknown),
            people_not_found=[PersonRequest(name=p.name, role=p.kind) for p in latest.people],
            cast_listed=self.has_cast,
            avoid=avoid,
            preferred=preferred,
            cues=list(latest.cues),
            latest=turns[user[-1][0]].text if user else "",
            asked=latest.intent,
            vague=not any(r.signal for _, r in user),
        )
        if conversation.vague:
            intent = intent.model_copy(
                update={"needs_clarification": True, "clarifying_question": self.question}
            )
        return ConversationReading(conversation, intent)

    def _merge(
        self, user: Sequence[_Turn], mentions: Sequence[MentionedItem]
    ) -> tuple[Intent, dict[str, list[str]], list[str]]:
        wanted: dict[str, list[str]] = {}
        preferred: dict[str, list[str]] = {}
        unwanted: dict[str, list[str]] = {}
        year_min = year_max = count = None
        avoid_gore = False
        for read in user:
            intent = read.intent
            for name, values in intent.wanted.items():
                target = preferred if name in self.soft_attributes else wanted
                target[name] = list(values)
                kept = [v for v in unwanted.get(name, []) if v not in values]
                unwanted[name] = kept
            ruled_out = [
                (n, v, _names(read.words, v)) for n, vs in intent.unwanted.items() for v in vs
            ]
            if read.lighter:
                ruled_out += [(MAIN_ATTRIBUTE, v, True) for v in self.dark_values]
            for name, value, named in ruled_out:
                if value in intent.wanted.get(name, ()):
                    continue
                if value in wanted.get(name, ()):
                    if not named:
                        continue  # "no nasty jokes" does not undo an earlier "a comedy"
                    wanted[name] = [v for v in wanted[name] if v != value]
                unwanted[name] = list(dict.fromkeys([*unwanted.get(name, []), value]))
            if intent.year_min is not None or intent.year_max is not None:
                year_min, year_max = intent.year_min, intent.year_max
            if intent.count is not None:
                count = intent.count
            if read.avoid_gore:
                avoid_gore = True
            elif read.want_gore:
                avoid_gore = False
        references = [
            m.item_id
            for m in sorted(mentions, key=lambda m: -m.turn)
            if m.opinion != "disliked" and (m.role == "user" or m.opinion in ("liked", "seen"))
        ][:MAX_REFERENCES]
        latest = user[-1].intent if user else Intent()
        intent = Intent(
            wanted={k: v for k, v in wanted.items() if v},
            unwanted={k: v for k, v in unwanted.items() if v},
            reference_item_ids=references,
            year_min=year_min,
            year_max=year_max,
            count=count,
            keywords=list(latest.keywords),
        )
        return intent, {k: v for k, v in preferred.items() if v}, [GORE] if avoid_gore else []


def _names(words: frozenset[str], value: str) -> bool:
    """Whether a turn's words name a catalog value itself ("comedies" names Comedy; "jokes"
    only hints at it)."""
    parts = fold(value).split()
    if not parts:
        return False
    joined = "".join(parts)
    last = parts[-1]
    forms = {joined, joined + "s", last, last + "s", last + "es", last[:-1] + "ies"}
    return bool(forms & words) and all(p in words for p in parts[:-1])


def _with_tags(intent: Intent, found: Sequence[cues.TagCue]) -> Intent:
    """`intent` with the tag phrases the parser did not read: wanted, or unwanted when
    negated."""
    wanted = {name: list(values) for name, values in intent.wanted.items()}
    unwanted = {name: list(values) for name, values in intent.unwanted.items()}
    added = False
    for cue in found:
        target = unwanted if cue.negated else wanted
        for name, value in cue.values:
            if value in intent.wanted.get(name, ()) or value in intent.unwanted.get(name, ()):
                continue
            if value not in target.setdefault(name, []):
                target[name].append(value)
                added = True
    if not added:
        return intent
    update: dict[str, object] = {"wanted": wanted, "unwanted": unwanted}
    if any(not cue.negated for cue in found):
        update |= {"needs_clarification": False, "clarifying_question": None}
    return intent.model_copy(update=update)


def _people_attribute(name: str) -> bool:
    people = ("director", "actor", "cast", "star", "writer", "creator", "author", "composer")
    return any(p in name.lower() for p in people)


def _find(text: str, phrase: str) -> tuple[int, int] | None:
    at = text.find(phrase)
    return None if at < 0 else (at, at + len(phrase))


def _blanked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with the character ranges in `spans` replaced by spaces (offsets kept)."""
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)
