"""The offline chat brain: a user message -> `Intent`, with no LLM.

`IntentParser(dataset)` reads the catalog once (attribute values, titles, years, popularity,
vocabulary); `parse(message)` then reads one message in well under a millisecond on the demo
catalog. `parse_intent(message, dataset)` keeps one parser per dataset (weakly referenced).

How a message is read (the word lists live in `agents.intent_vocab`, what is known of the
catalog in `agents.intent_lexicon`):

1. Text is folded (`agents.intent_message`): NFKC, accents removed, lower case, "'s" and
   apostrophes dropped ("don't" -> "dont"), punctuation kept aside as boundaries; at most
   `MAX_MESSAGE_CHARS` are read.
2. Reference titles (`agents.intent_titles`): titles normalised the same way, counted only
   when licensed (the whole message is titles, quoted, after a cue such as "like", before a
   post cue such as "fan", or a multi-word title typed with its capitals); titles that are
   common words need more. Negative cues ("didn't like Heat") consume a title without making
   it a reference.
3. Everything else is read left to right with a negation scope. A negator ("no", "not",
   "without", "hate", "except", ...) makes the attribute phrases after it unwanted until the
   clause ends: at ". ! ? ;" or "but"/"however"; at a comma once the negation has caught
   something (unless a list "A, B or C" follows); or at a reset word ("I want", "maybe",
   "something") after it has caught something.
4. Attribute phrases: for the main attribute (default "genres") the catalog's own values
   (with plurals: "comedies", "westerns") and synonym families mapped onto whatever values
   the catalog has ("scary" -> Horror, "kids" -> Children or Children's); for every other
   attribute its values as phrases (directors, tags; person names also by surname). When a
   value is both wanted and unwanted, the more direct mention wins (catalog name > one-genre
   synonym > several-genre word like "violent"), and on a tie unwanted wins.
5. Years (`agents.intent_numbers`): decades, "before/after/since/until YEAR", ranges, "YEAR
   or later", "last 10 years", "recent"/"new" and "old"/"classic"; negated forms flip
   ("nothing before 1990" -> year_min 1990).
6. Count (`agents.intent_numbers`): a number before a noun such as "movies", or after
   "top"/"give me"/"recommend"; clamped to 1..`MAX_COUNT`.
7. Keywords: the remaining content words outside a negation (stopwords and request words
   dropped). Clarification is asked for when nothing usable is left: no attribute, reference
   or year, and no keyword that occurs anywhere in the catalog's text.

The message is data: nothing in it is executed, and only catalog ids can come out.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from agents import intent_vocab as vocab
from agents.intent_lexicon import AttrEntry, Lexicon
from agents.intent_message import Message, Reading, stem, tokenize
from agents.intent_numbers import count_at, read_time, year_bounds
from agents.intent_titles import cued_titles, whole_message_titles
from agents.schemas import Intent
from recdata.dataset import Dataset

MAX_COUNT = 50
MAX_KEYWORDS = 16
MAX_REFERENCES = 10


@dataclass(slots=True)
class _Scope:
    """Negation state while reading a message left to right."""

    active: bool = False
    caught: bool = False
    negator_end: int = -1

    def open(self, end: int) -> None:
        self.active, self.caught, self.negator_end = True, False, end

    def close(self) -> None:
        self.active = self.caught = False


class IntentParser:
    """Reads chat messages into `Intent`s against one catalog (built once, reused)."""

    def __init__(self, dataset: Dataset, *, attribute: str = "genres") -> None:
        self.lexicon = Lexicon(dataset, attribute=attribute)
        self.attribute = attribute
        self.item_ids: tuple[str, ...] = self.lexicon.item_ids
        self.newest_year: int | None = self.lexicon.newest_year
        self.clarifying_question = self.lexicon.clarifying_question

    def parse(self, message: str) -> Intent:
        """The intent of one chat message. Never raises on text input."""
        msg = tokenize(message if isinstance(message, str) else "")
        reading = Reading()
        if len(msg):
            if not whole_message_titles(self.lexicon, msg, reading):
                cued_titles(self.lexicon, msg, reading)
            self._read(msg, reading)
        return self._intent(reading)

    # the rest

    def _read(self, msg: Message, reading: Reading) -> None:
        scope = _Scope()
        i = 0
        n = len(msg)
        while i < n:
            if msg.consumed[i]:
                scope.caught = scope.caught or scope.active  # e.g. a title after "hated"
                i += 1
                continue
            if msg.tokens[i].sentence_start or (
                scope.active
                and scope.caught
                and msg.comma_before(i)
                and not self._list_follows(msg, i)
            ):
                scope.close()
            direct = scope.active and all(
                msg.words[k] in vocab.NEGATION_TRANSPARENT for k in range(scope.negator_end, i)
            )
            control = self.lexicon.control.longest(msg, i)
            attr = self.lexicon.attrs.longest(msg, i)
            time_length = read_time(self.lexicon, msg, i, reading, negated=direct, dry_run=True)
            count = count_at(self.lexicon, msg, i)
            best = max(
                (control[0] if control else 0, 3),
                (time_length, 2),
                (count[0] if count else 0, 1),
                (attr[0] if attr else 0, 0),
            )
            length, which = best
            if length == 0:
                self._keyword(msg, i, reading, scope)
                i += 1
                continue
            if which == 3 and control is not None:
                kind = control[1]
                if kind == "negator":
                    scope.open(i + length)
                elif kind == "boundary" or (kind == "reset" and scope.caught):
                    scope.close()
            elif which == 2:
                read_time(self.lexicon, msg, i, reading, negated=direct, dry_run=False)
            elif which == 1 and count is not None:
                if reading.count is None:
                    reading.count = max(1, min(MAX_COUNT, count[1]))
            elif attr is not None:
                if not self._attr_allowed(msg, i, attr[1]):
                    self._keyword(msg, i, reading, scope)
                    i += 1
                    continue
                for attribute, value in attr[1].targets:
                    reading.mentions.append((attribute, value, scope.active, attr[1].priority))
                if scope.active:
                    scope.caught = True
            msg.consume(i, i + length)
            i += length

    def _attr_allowed(self, msg: Message, i: int, entry: AttrEntry) -> bool:
        tok = msg.tokens[i]
        if entry.lowercase_only and tok.capital and not tok.sentence_start:
            return False
        return not (entry.capital_only and not (tok.capital and not tok.sentence_start))

    def _keyword(self, msg: Message, i: int, reading: Reading, scope: _Scope) -> None:
        word = msg.words[i]
        if (
            len(word) < 2
            or word in vocab.STOPWORDS
            or word in vocab.GENERIC_WORDS
            or not any(ch.isalpha() for ch in word)
        ):
            return
        if scope.active:
            scope.caught = True
        elif word not in reading.keywords and len(reading.keywords) < MAX_KEYWORDS:
            reading.keywords.append(word)

    def _list_follows(self, msg: Message, i: int) -> bool:
        """Whether the words after a comma continue a negated list ("no horror, gore or war")."""
        conjunction = False
        j = i
        while j < len(msg) and not (j > i and msg.hard_before(j)):
            if msg.consumed[j]:
                j += 1
                continue
            found = self.lexicon.attrs.longest(msg, j)
            if found is not None:
                j += found[0]
                continue
            word = msg.words[j]
            if word not in vocab.LIST_WORDS:
                return False
            conjunction = conjunction or word in ("or", "and", "nor")
            j += 1
        return conjunction

    # result

    def _intent(self, reading: Reading) -> Intent:
        wanted: dict[str, list[str]] = {}
        unwanted: dict[str, list[str]] = {}
        best: dict[tuple[str, str], tuple[int, bool]] = {}
        order: list[tuple[str, str]] = []
        for attribute, value, negated, priority in reading.mentions:
            key = (attribute, value)
            if key not in best:
                order.append(key)
                best[key] = (priority, negated)
                continue
            old_priority, old_negated = best[key]
            if priority > old_priority:
                best[key] = (priority, negated)
            elif priority == old_priority:
                best[key] = (priority, negated and old_negated)
        for attribute, value in order:
            target = unwanted if best[(attribute, value)][1] else wanted
            target.setdefault(attribute, []).append(value)
        year_min, year_max = year_bounds(reading)
        references = [self.item_ids[k] for k in reading.references[:MAX_REFERENCES]]
        signal = bool(
            wanted
            or unwanted
            or references
            or year_min is not None
            or year_max is not None
            or any(stem(w) in self.lexicon.vocabulary for w in reading.keywords)
        )
        return Intent(
            wanted=wanted,
            unwanted=unwanted,
            reference_item_ids=references,
            year_min=year_min,
            year_max=year_max,
            count=reading.count,
            keywords=list(reading.keywords),
            needs_clarification=not signal,
            clarifying_question=None if signal else self.clarifying_question,
        )


_PARSERS: weakref.WeakKeyDictionary[Dataset, dict[str, IntentParser]] = weakref.WeakKeyDictionary()


def parse_intent(message: str, dataset: Dataset, *, attribute: str = "genres") -> Intent:
    """The intent of `message` against `dataset`'s catalog (one cached parser per dataset)."""
    parsers = _PARSERS.setdefault(dataset, {})
    parser = parsers.get(attribute)
    if parser is None:
        parser = parsers[attribute] = IntentParser(dataset, attribute=attribute)
    return parser.parse(message)
