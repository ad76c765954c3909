"""The offline chat brain: a user message -> `Intent`, with no LLM.

`IntentParser(dataset)` reads the catalog once (attribute values, titles, years, popularity,
vocabulary); `parse(message)` then reads one message in well under a millisecond on the demo
catalog. `parse_intent(message, dataset)` keeps one parser per dataset (weakly referenced).

How a message is read (the word lists live in `agents.intent_vocab`):

1. Text is folded: NFKC, accents removed, lower case, "'s" and apostrophes dropped ("don't"
   -> "dont"), punctuation kept aside as boundaries; at most `MAX_MESSAGE_CHARS` are read.
2. Reference titles. Titles are normalised the same way (trailing "(1979)" dropped, "Matrix,
   The" -> "the matrix", leading articles dropped, "'s" and Roman numerals in two spellings,
   alternate titles in parentheses, the part before a colon and prefixes shared by several
   titles as franchise names: "star wars"). A title counts only when licensed: the whole
   message is titles, the title is quoted, follows a reference cue ("like", "similar to",
   "liked", ...), precedes a post cue ("a Toy Story fan"), or is a multi-word title typed
   with its capitals ("Star Wars"). Titles that are common words need more: pronoun-like
   titles ("It", "Up", "Her") need their capital letter; one-word titles ("Heat") need to
   follow a strong cue directly (or after "the") or to be capitalised; titles that are also
   attribute phrases ("The War", "Kids") need their capital; after a weak cue ("I love")
   common-word titles need their capital. Negative cues ("didn't like Heat")
   consume a title without making it a reference. Remakes resolve to the item whose year is
   mentioned, else to the most interacted-with one; a franchise name gives its items, most
   popular first.
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
5. Years: decades ("80s", "1980s", "eighties", "late 90s"), "before/after/since/until YEAR",
   ranges ("between 1990 and 1999", "1990-1999", "from 1990 to 1999"), "YEAR or later",
   "last 10 years", "recent"/"new" (year_min = newest catalog year - `RECENT_YEARS`) and
   "old"/"classic" (year_max = `CLASSIC_YEAR_MAX`); negated forms flip ("nothing before
   1990" -> year_min 1990, "nothing too old" -> year_min 1980).
6. Count: a number (digits or words, "a couple", "a few", "a dozen") before a noun such as
   "movies", or after "top"/"give me"/"recommend"; clamped to 1..`MAX_COUNT`.
7. Keywords: the remaining content words outside a negation (stopwords and request words
   dropped). Clarification is asked for when nothing usable is left: no attribute, reference
   or year, and no keyword that occurs anywhere in the catalog's text.

The message is data: nothing in it is executed, and only catalog ids can come out.
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Generic, Literal, TypeVar

import numpy as np

from agents import intent_vocab as vocab
from agents.schemas import Intent
from recdata.dataset import Dataset

MAX_MESSAGE_CHARS = 2_000
MAX_COUNT = 50
MAX_KEYWORDS = 16
MAX_REFERENCES = 10
MAX_FRANCHISE_ITEMS = 5
RECENT_YEARS = 5
"""'recent'/'new' means released in the catalog's last RECENT_YEARS years (year_min)."""
CLASSIC_YEAR_MAX = 1979
"""'old'/'classic' means released in CLASSIC_YEAR_MAX or before (year_max)."""
MIN_YEAR, MAX_YEAR = 1870, 2100
QUESTION_VALUES = 6

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]")
_HARD_PUNCT = frozenset(".!?;")
_QUOTES = frozenset("\"'“”‘’«»`")
_ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "st", "vs", "jr", "sr", "vol", "no", "inc"})
_YEAR_WORD = re.compile(r"(1[89]\d\d|20\d\d)")
_DECADE4 = re.compile(r"(1[89]\d0|20\d0)s")
_DECADE2 = re.compile(r"(\d)0s")
_TITLE_YEAR = re.compile(r"\s*\((?:\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_TITLE_PAREN = re.compile(r"\(([^()]*)\)")
_TRAILING_ARTICLE = re.compile(r"^(.*?),\s*([A-Za-z']+)$")

V = TypeVar("V")
CueKind = Literal["strong", "weak", "negative_strong", "negative_weak"]


@lru_cache(maxsize=65_536)
def fold_word(raw: str) -> str:
    """One word in folded form: accents removed, lower case, "'s" and apostrophes dropped."""
    text = unicodedata.normalize("NFKD", raw)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("’", "'")
    if text.endswith("'s"):
        text = text[:-2] + ("s" if text[:-2].isdigit() else "")
    return text.replace("'", "")


def fold(text: str) -> list[str]:
    """The folded words of a text ("&" reads as "and"); punctuation is dropped."""
    return [fold_word(t) if t != "&" else "and" for t in _words_of(text)]


def _words_of(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text) if t == "&" or t[0].isalnum()]


def value_key(value: str) -> str:
    """A catalog value's lookup key: "Sci-Fi" -> "scifi", "Children's" -> "children"."""
    return "".join(ch for ch in "".join(fold(value)) if ch.isalnum())


@dataclass(slots=True)
class _Token:
    word: str
    raw: str
    gap: str  # punctuation between the previous word and this one
    sentence_start: bool
    capital: bool = False


@dataclass(slots=True)
class _Message:
    tokens: list[_Token]
    tail_gap: str
    words: list[str] = field(init=False)
    consumed: list[bool] = field(init=False)
    years: set[int] = field(init=False)

    def __post_init__(self) -> None:
        self.words = [t.word for t in self.tokens]
        self.consumed = [False] * len(self.tokens)
        self.years = {int(w) for w in self.words if _YEAR_WORD.fullmatch(w)}
        for i, tok in enumerate(self.tokens):
            tok.sentence_start = i == 0 or self.hard_before(i)

    def __len__(self) -> int:
        return len(self.tokens)

    def gap_after(self, i: int) -> str:
        return self.tokens[i + 1].gap if i + 1 < len(self.tokens) else self.tail_gap

    def hard_before(self, i: int) -> bool:
        tok = self.tokens[i]
        if i == 0 or not _HARD_PUNCT.intersection(tok.gap):
            return False
        prev = self.tokens[i - 1]
        abbreviation = tok.gap.strip() == "." and (
            len(prev.word) <= 1 or prev.word in _ABBREVIATIONS
        )
        return not abbreviation

    def comma_before(self, i: int) -> bool:
        return "," in self.tokens[i].gap

    def quoted(self, start: int, end: int) -> bool:
        return bool(
            _QUOTES.intersection(self.tokens[start].gap)
            and _QUOTES.intersection(self.gap_after(end - 1))
        )

    def free(self, start: int, end: int) -> bool:
        return end <= len(self.tokens) and not any(self.consumed[start:end])

    def consume(self, start: int, end: int) -> None:
        for k in range(start, end):
            self.consumed[k] = True


def _tokenize(message: str) -> _Message:
    text = unicodedata.normalize("NFKC", message[:MAX_MESSAGE_CHARS])
    tokens: list[_Token] = []
    gap: list[str] = []
    sentence_start = True
    for piece in _TOKEN.findall(text):
        if piece != "&" and not piece[0].isalnum():
            gap.append(piece)
            if piece in _HARD_PUNCT:
                sentence_start = True
            continue
        word = "and" if piece == "&" else fold_word(piece)
        if not word:
            continue
        tokens.append(_Token(word, piece, "".join(gap), sentence_start))
        gap = []
        sentence_start = False
    letters = [t.raw for t in tokens if t.raw[0].isalpha()]
    shouting = len(letters) >= 3 and sum(r.isupper() for r in letters) >= 0.8 * len(letters)
    for tok in tokens:
        tok.capital = not shouting and (tok.raw[0].isupper() or tok.raw[0].isdigit())
    return _Message(tokens, "".join(gap))


class _Phrases(Generic[V]):
    """Phrases (tuples of folded words) -> values, matched longest first."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, ...], V] = {}
        self._lengths: dict[str, list[int]] = {}

    def add(self, words: Sequence[str], value: V) -> None:
        key = tuple(words)
        if not key:
            return
        self.entries[key] = value
        lengths = self._lengths.setdefault(key[0], [])
        if len(key) not in lengths:
            lengths.append(len(key))
            lengths.sort(reverse=True)

    def get(self, words: Sequence[str]) -> V | None:
        return self.entries.get(tuple(words))

    def __contains__(self, words: object) -> bool:
        return words in self.entries

    def match(self, words: Sequence[str], i: int) -> tuple[int, V] | None:
        """The longest phrase starting at words[i]."""
        if i >= len(words):
            return None
        for length in self._lengths.get(words[i], ()):
            value = self.entries.get(tuple(words[i : i + length]))
            if value is not None:
                return length, value
        return None

    def longest(self, msg: _Message, i: int) -> tuple[int, V] | None:
        """The longest phrase starting at word `i` over words not yet consumed."""
        for length in self._lengths.get(msg.words[i], ()):
            if msg.free(i, i + length):
                value = self.entries.get(tuple(msg.words[i : i + length]))
                if value is not None:
                    return length, value
        return None


@dataclass(frozen=True, slots=True)
class _AttrEntry:
    targets: tuple[tuple[str, str], ...]  # (attribute, value)
    priority: int  # 2 catalog name, 1 one-value synonym, 0 several-value word
    lowercase_only: bool = False
    capital_only: bool = False


@dataclass(frozen=True, slots=True)
class _TitleEntry:
    items: tuple[int, ...]
    exact: bool
    tier: int  # 1 pronoun-like, 2 one content word, 3 other
    common: bool  # every word is a common word
    clash: bool  # the title is also an attribute phrase ("The War", "Kids")


@dataclass(frozen=True, slots=True)
class _TitleMatch:
    start: int
    end: int
    entry: _TitleEntry
    year_before: int | None = None


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


@dataclass(slots=True)
class _Reading:
    """What one message says, gathered before it becomes an `Intent`."""

    mentions: list[tuple[str, str, bool, int]] = field(default_factory=list)
    references: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    lower_bounds: list[int] = field(default_factory=list)
    upper_bounds: list[int] = field(default_factory=list)
    count: int | None = None
    keywords: list[str] = field(default_factory=list)


class IntentParser:
    """Reads chat messages into `Intent`s against one catalog (built once, reused)."""

    def __init__(self, dataset: Dataset, *, attribute: str = "genres") -> None:
        self.attribute = attribute
        self.item_ids: tuple[str, ...] = tuple(dataset.item_ids)
        self._popularity = np.bincount(
            np.asarray(dataset.interactions.item, dtype=np.int64), minlength=dataset.n_items
        )[: dataset.n_items]
        self._item_years: list[int | None] = [_item_year(it.attributes) for it in dataset.items]
        known_years = [y for y in self._item_years if y is not None]
        self.newest_year: int | None = max(known_years) if known_years else None
        self._attrs: _Phrases[_AttrEntry] = _Phrases()
        self._build_attribute_phrases(dataset)
        self._titles: _Phrases[_TitleEntry] = _Phrases()
        self._build_titles(dataset)
        self._control: _Phrases[str] = _Phrases()
        for phrases, kind in (
            (vocab.NEGATORS, "negator"),
            (vocab.NEUTRAL_PHRASES, "neutral"),
            (vocab.BOUNDARY_WORDS, "boundary"),
            (vocab.RESETS, "reset"),
        ):
            for phrase in phrases:
                self._control.add(phrase.split(), kind)
        self._cues: _Phrases[CueKind] = _Phrases()
        for phrase in vocab.WEAK_CUES:
            self._cues.add(phrase.split(), "weak")
        for phrase in vocab.STRONG_CUES:
            self._cues.add(phrase.split(), "strong")
        for phrase in vocab.NEGATIVE_CUES:
            strong = phrase not in {"not", "except", "other than", "apart from", "instead of"}
            self._cues.add(phrase.split(), "negative_strong" if strong else "negative_weak")
        self._numbers: _Phrases[int] = _Phrases()
        for phrase, number in vocab.NUMBER_WORDS.items():
            self._numbers.add(phrase.split(), number)
        self._vocabulary = self._build_vocabulary(dataset)
        self.clarifying_question = self._build_question(dataset)

    # ---- catalog -------------------------------------------------------------------------

    def _build_attribute_phrases(self, dataset: Dataset) -> None:
        names: list[str] = []
        for item in dataset.items:
            for name in item.attributes:
                if name not in names:
                    names.append(name)
        for name in names:
            if name != self.attribute and name not in ("year", "decade"):
                self._add_other_attribute(name, dataset.attribute_values(name))
        main_values = [
            v
            for v in dataset.attribute_values(self.attribute)
            if " ".join(fold(v)) not in vocab.VALUE_BLOCKLIST
        ]
        by_concept: dict[str, list[str]] = {}
        for value in main_values:
            key = value_key(value)
            for concept, keys in vocab.CONCEPT_KEYS.items():
                if key in keys or key.rstrip("s") in keys:
                    by_concept.setdefault(concept, []).append(value)
        synonym_values: dict[str, list[str]] = {}
        for concept, phrases in vocab.SYNONYMS.items():
            for phrase in phrases:
                for value in by_concept.get(concept, []):
                    if value not in synonym_values.setdefault(phrase, []):
                        synonym_values[phrase].append(value)
        for phrase, values in synonym_values.items():
            if values:
                targets = tuple((self.attribute, v) for v in values)
                lowercase = phrase in vocab.LOWERCASE_ONLY
                self._attrs.add(phrase.split(), _AttrEntry(targets, 1, lowercase))
        for phrase, concepts in vocab.MULTI_CONCEPT_SYNONYMS.items():
            multi = [v for c in concepts for v in by_concept.get(c, [])]
            if multi:
                targets = tuple((self.attribute, v) for v in multi)
                self._attrs.add(phrase.split(), _AttrEntry(targets, 0))
        for value in main_values:
            words = fold(value)
            if not words:
                continue
            entry = _AttrEntry(((self.attribute, value),), 2)
            for variant in (words, [*words[:-1], _plural(words[-1])], ["".join(words)]):
                self._attrs.add(variant, entry)

    def _add_other_attribute(self, name: str, values: list[str]) -> None:
        persons = _looks_like_people(name, values)
        surnames: dict[tuple[str, ...], list[str]] = {}
        for value in values:
            words = fold(value)
            joined = " ".join(words)
            if (
                not words
                or len(joined) < 3
                or joined in vocab.VALUE_BLOCKLIST
                or all(w.isdigit() or _DECADE2.fullmatch(w) for w in words)
                or all(w in vocab.STOPWORDS for w in words)
                or (
                    len(words) == 1
                    and (words[0] in vocab.GENERIC_WORDS or words[0] in vocab.COMMON_WORDS)
                )
            ):
                continue
            self._merge_attr(words, _AttrEntry(((name, value),), 2))
            if persons and len(words) >= 2:
                if len(words) >= 3 and words[-2] in vocab.NAME_PARTICLES:
                    surnames.setdefault(tuple(words[-2:]), []).append(value)
                surnames.setdefault((words[-1],), []).append(value)
        for surname, owners in surnames.items():
            last = surname[-1]
            if len(last) < 3 or last in vocab.STOPWORDS or last in vocab.GENERIC_WORDS:
                continue
            if surname in self._attrs:
                continue
            capital_only = last in vocab.COMMON_WORDS or len(last) < 4
            targets = tuple((name, v) for v in owners)
            self._attrs.add(surname, _AttrEntry(targets, 1, capital_only=capital_only))

    def _merge_attr(self, words: list[str], entry: _AttrEntry) -> None:
        old = self._attrs.get(words)
        if old is not None and old.priority == entry.priority:
            entry = _AttrEntry(old.targets + entry.targets, entry.priority)
        self._attrs.add(words, entry)

    def _build_titles(self, dataset: Dataset) -> None:
        exact: dict[tuple[str, ...], list[int]] = {}
        alias: dict[tuple[str, ...], list[int]] = {}
        for index, item in enumerate(dataset.items):
            full, parts = _title_keys(item.title)
            for key in full:
                _append_unique(exact.setdefault(key, []), index)
            for key in parts:
                _append_unique(alias.setdefault(key, []), index)
        prefixes: dict[tuple[str, ...], list[int]] = {}
        for key, items in exact.items():
            for k in range(2, len(key)):
                prefix = key[:k]
                if prefix[-1] not in vocab.STOPWORDS:
                    for index in items:
                        _append_unique(prefixes.setdefault(prefix, []), index)
        for prefix, items in prefixes.items():
            if len(items) >= 2:
                for index in items:
                    _append_unique(alias.setdefault(prefix, []), index)
        for key, items in alias.items():
            if key not in exact:
                self._titles.add(
                    key, _title_entry(key, items, exact=False, clash=self._clashes(key))
                )
        for key, items in exact.items():
            self._titles.add(key, _title_entry(key, items, exact=True, clash=self._clashes(key)))

    def _clashes(self, key: tuple[str, ...]) -> bool:
        entry = self._attrs.get(key)
        return entry is not None and not entry.lowercase_only

    def _build_vocabulary(self, dataset: Dataset) -> frozenset[str]:
        words: set[str] = set()
        for item in dataset.items:
            words.update(fold(item.title))
            words.update(fold(item.text))
            for values in item.attributes.values():
                for value in values:
                    words.update(fold(value))
        words.update(w for phrase in self._attrs.entries for w in phrase)
        return frozenset(_stem(w) for w in words)

    def _build_question(self, dataset: Dataset) -> str:
        counts: Counter[str] = Counter(
            v
            for item in dataset.items
            for v in item.attributes.get(self.attribute, ())
            if " ".join(fold(v)) not in vocab.VALUE_BLOCKLIST
        )
        examples = [v.lower() for v, _ in counts.most_common(QUESTION_VALUES)]
        question = "What are you in the mood for?"
        if len(examples) >= 2:
            question += f" For example {', '.join(examples[:-1])} or {examples[-1]}."
        elif examples:
            question += f" For example {examples[0]}."
        return question + " You can also name a film you liked or a decade."

    # ---- parsing -------------------------------------------------------------------------

    def parse(self, message: str) -> Intent:
        """The intent of one chat message. Never raises on text input."""
        msg = _tokenize(message if isinstance(message, str) else "")
        reading = _Reading()
        if len(msg):
            if not self._whole_message_titles(msg, reading):
                self._cued_titles(msg, reading)
            self._read(msg, reading)
        return self._intent(reading)

    # titles

    def _title_at(self, msg: _Message, i: int) -> _TitleMatch | None:
        if msg.consumed[i]:
            return None
        found = self._titles.longest(msg, i)
        if found is not None:
            return _TitleMatch(i, i + found[0], found[1])
        year = _YEAR_WORD.fullmatch(msg.words[i])
        if year and i + 1 < len(msg):
            after = self._titles.longest(msg, i + 1)
            if after is not None:
                entry = after[1]
                if int(year.group(1)) in {self._item_years[k] for k in entry.items}:
                    return _TitleMatch(i, i + 1 + after[0], entry, int(year.group(1)))
        return None

    def _whole_message_titles(self, msg: _Message, reading: _Reading) -> bool:
        content = [
            k
            for k, w in enumerate(msg.words)
            if w not in vocab.WHOLE_MESSAGE_FILLERS and w not in vocab.TITLE_SEPARATORS
        ]
        if not content:
            return False
        words = [msg.words[k] for k in content]
        as_attribute = self._attrs.get(words)
        if (as_attribute is not None and not as_attribute.lowercase_only) or all(
            _YEAR_WORD.fullmatch(w) for w in words
        ):
            return False
        matches: list[_TitleMatch] = []
        i = 0
        while i < len(msg):
            if msg.words[i] in vocab.WHOLE_MESSAGE_FILLERS or (
                matches and msg.words[i] in vocab.TITLE_SEPARATORS
            ):
                i += 1
                continue
            match = self._title_at(msg, i)
            if match is None:
                if not matches or not _YEAR_WORD.fullmatch(msg.words[i]):
                    return False
                i += 1  # a year after a title ("Alien 1979") is read with the title
                continue
            matched = msg.words[match.start : match.end]
            if all(w in vocab.STOPWORDS or w in vocab.GENERIC_WORDS for w in matched) and not (
                msg.tokens[match.start].capital
            ):
                return False
            matches.append(match)
            i = match.end
        for match in matches:
            self._take_title(msg, reading, match, negative=False)
        return bool(matches)

    def _cued_titles(self, msg: _Message, reading: _Reading) -> None:
        i = 0
        n = len(msg)
        while i < n:
            match = self._title_at(msg, i)
            if match is not None and self._accept_uncued(msg, match):
                self._take_title(msg, reading, match, negative=False)
                i = match.end
                continue
            cue = self._cue_at(msg, i)
            if cue is None:
                i += 1
                continue
            length, kind = cue
            i = max(self._cue_scope(msg, reading, i + length, kind), i + length)

    def _cue_at(self, msg: _Message, i: int) -> tuple[int, CueKind] | None:
        found = self._cues.longest(msg, i)
        if found is None:
            return None
        length, kind = found
        if msg.words[i] == "like" and length == 1:
            before = msg.words[i - 1] if i > 0 else ""
            if before in vocab.LIKE_AS_WANT:
                return None
            if before in vocab.LIKE_SUBJECTS or (
                i > 1 and msg.words[i - 2] in vocab.LIKE_SUBJECTS and before in ("just", "do")
            ):
                kind = "weak"
        return length, kind

    def _cue_scope(self, msg: _Message, reading: _Reading, j: int, kind: CueKind) -> int:
        skipped = 0
        adjacent = True
        found = False
        while j < len(msg):
            if msg.hard_before(j):
                break
            match = self._title_at(msg, j)
            if match is not None and self._accept_cued(msg, match, kind, adjacent):
                j = self._take_title(msg, reading, match, negative=kind.startswith("negative"))
                found, skipped, adjacent = True, 0, True
                continue
            word = msg.words[j]
            if found and word in vocab.TITLE_SEPARATORS:
                j += 1
                continue
            if word in vocab.CUE_FILLERS and skipped < 3:
                skipped += 1
                adjacent = adjacent and word == "the"  # "like the Heat", not "like a game"
                j += 1
                continue
            break
        return j

    def _accept_cued(
        self, msg: _Message, match: _TitleMatch, kind: CueKind, adjacent: bool
    ) -> bool:
        entry = match.entry
        capital = msg.tokens[match.start].capital
        if msg.quoted(match.start, match.end):
            return True
        if entry.tier == 1:
            return capital and adjacent
        if kind in ("weak", "negative_weak"):
            return capital or not (entry.common or entry.clash or entry.tier == 2)
        if entry.tier == 2:
            return capital or (adjacent and not entry.clash)
        return capital or not entry.clash

    def _accept_uncued(self, msg: _Message, match: _TitleMatch) -> bool:
        entry = match.entry
        if msg.quoted(match.start, match.end) and entry.tier > 1:
            return True
        span = msg.tokens[match.start : match.end]
        capitals = all(t.capital for t in span if t.word not in vocab.STOPWORDS)
        if match.end < len(msg) and msg.words[match.end] in vocab.POST_CUES:
            return capitals or not (entry.common or entry.clash or entry.tier < 3)
        if entry.tier < 3 or len(span) < 2 or not capitals:
            return False
        others = [t for k, t in enumerate(msg.tokens) if not match.start <= k < match.end]
        return any(t.raw[0].islower() for t in others)

    def _take_title(
        self, msg: _Message, reading: _Reading, match: _TitleMatch, *, negative: bool
    ) -> int:
        """Records the items a title match names; returns the index after it (and its year)."""
        entry = match.entry
        end = match.end
        candidate_years = {self._item_years[k] for k in entry.items}
        year_here = match.year_before
        if year_here is None and end < len(msg):
            k = end + 1 if msg.words[end] in ("from", "in") and end + 1 < len(msg) else end
            year = _YEAR_WORD.fullmatch(msg.words[k])
            if year and int(year.group(1)) in candidate_years:
                year_here, end = int(year.group(1)), k + 1
        msg.consume(match.start, end)
        if negative:
            return end
        items = list(entry.items)
        if len(items) > 1:
            wanted_years = {year_here} if year_here is not None else msg.years
            dated = [k for k in items if self._item_years[k] in wanted_years]
            items = dated or items
            items.sort(key=lambda k: -int(self._popularity[k]))
            if entry.exact or dated:
                items = items[:1] if entry.exact or year_here is not None else items
            items = items[:MAX_FRANCHISE_ITEMS]
        for k in items:
            _append_unique(reading.references, k)
        return end

    # the rest

    def _read(self, msg: _Message, reading: _Reading) -> None:
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
            control = self._control.longest(msg, i)
            attr = self._attrs.longest(msg, i)
            time_length = self._read_time(msg, i, reading, negated=direct, dry_run=True)
            count = self._count_at(msg, i)
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
                self._read_time(msg, i, reading, negated=direct, dry_run=False)
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

    def _attr_allowed(self, msg: _Message, i: int, entry: _AttrEntry) -> bool:
        tok = msg.tokens[i]
        if entry.lowercase_only and tok.capital and not tok.sentence_start:
            return False
        return not (entry.capital_only and not (tok.capital and not tok.sentence_start))

    def _keyword(self, msg: _Message, i: int, reading: _Reading, scope: _Scope) -> None:
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

    def _list_follows(self, msg: _Message, i: int) -> bool:
        """Whether the words after a comma continue a negated list ("no horror, gore or war")."""
        conjunction = False
        j = i
        while j < len(msg) and not (j > i and msg.hard_before(j)):
            if msg.consumed[j]:
                j += 1
                continue
            found = self._attrs.longest(msg, j)
            if found is not None:
                j += found[0]
                continue
            word = msg.words[j]
            if word not in vocab.LIST_WORDS:
                return False
            conjunction = conjunction or word in ("or", "and", "nor")
            j += 1
        return conjunction

    def _count_at(self, msg: _Message, i: int) -> tuple[int, int] | None:
        word = msg.words[i]
        number: int | None = None
        length = 1
        if _is_small_number(word):
            number = int(word)
        else:
            found = self._numbers.longest(msg, i)
            if found is not None:
                length, number = found
        if number is None:
            return None
        upper = self._count_range_end(msg, i + length, i > 0 and msg.words[i - 1] == "between")
        if upper is not None:
            length, number = length + upper[0], upper[1]
        before = msg.words[i - 1] if i > 0 else ""
        if word == "one" and before in ("the", "no", "any", "every", "some", "this", "that"):
            return None
        lead = before in vocab.COUNT_LEADS or (
            i > 1 and " ".join(msg.words[i - 2 : i]) in vocab.COUNT_LEADS
        )
        j = i + length
        for k in range(j, min(j + 5, len(msg))):
            if msg.hard_before(k):
                break
            ahead = msg.words[k]
            if ahead in vocab.COUNT_BLOCKERS:
                return None
            if (ahead in vocab.COUNT_NOUNS and ahead != "one") or self._main_attr_at(msg, k):
                return length, number
        if lead and word != "one":
            return length, number
        if lead and before in ("just", "only", "top"):
            return length, number
        return None

    def _count_range_end(self, msg: _Message, j: int, between: bool) -> tuple[int, int] | None:
        """The upper end of a count range ("2 or 3", "3 to 5", "between 2 and 4")."""
        joiners = ("or", "to", "and") if between else ("or", "to")
        if j + 1 >= len(msg) or msg.words[j] not in joiners:
            return None
        word = msg.words[j + 1]
        if _is_small_number(word):
            return 2, int(word)
        number = vocab.NUMBER_WORDS.get(word)
        return (2, number) if number is not None else None

    def _main_attr_at(self, msg: _Message, k: int) -> bool:
        found = self._attrs.longest(msg, k)
        return found is not None and any(a == self.attribute for a, _ in found[1].targets)

    # years

    def _read_time(
        self, msg: _Message, i: int, reading: _Reading, *, negated: bool, dry_run: bool
    ) -> int:
        """Length of the year expression at word `i` (0 if none); records it unless dry_run."""
        words = msg.words
        n = len(msg)
        lower: int | None = None
        upper: int | None = None
        span: tuple[int, int] | None = None
        length = 0
        relative = self._relative_years(msg, i)
        recency = self._recency_word(msg, i) if relative is None else None
        if relative is not None:
            length, lower = relative
        elif recency is not None:
            length, kind = recency
            newest = self.newest_year
            if kind == "recent" and newest is not None:
                if negated:
                    upper = newest - RECENT_YEARS - 1
                else:
                    lower = newest - RECENT_YEARS
            elif kind == "old":
                if negated:
                    lower = CLASSIC_YEAR_MAX + 1
                else:
                    upper = CLASSIC_YEAR_MAX
            else:
                return 0
        else:
            mod, j = _phrase_at(words, i, _TIME_MODIFIERS)
            if j < n and words[j] == "the":
                j += 1
            first = self._year_atom(msg, j)
            if first is None:
                return 0
            a, b, j = first
            joined = self._range_end(msg, j)
            if joined is not None and mod in (None, "between", "from", "in"):
                _, b, j = joined
                span = (a, b)
            elif mod in vocab.BEFORE_WORDS:
                lower, upper = (a, None) if negated else (None, a - 1)
            elif mod in vocab.AFTER_WORDS:
                lower, upper = (None, b) if negated else (b + 1, None)
            elif mod in vocab.SINCE_WORDS:
                lower, upper = (None, a - 1) if negated else (a, None)
            elif mod in vocab.UNTIL_WORDS:
                lower, upper = (b + 1, None) if negated else (None, b)
            else:
                open_end, _ = _phrase_at(words, j, _OPEN_ENDS)
                if "+" in msg.gap_after(j - 1):
                    lower = a
                elif open_end in vocab.OPEN_LATER and open_end is not None:
                    lower, j = a, j + len(open_end.split())
                elif open_end in vocab.OPEN_EARLIER and open_end is not None:
                    upper, j = b, j + len(open_end.split())
                elif not negated:
                    span = (a, b)
            length = j - i
        if length <= 0 or not msg.free(i, i + length):
            return 0
        if not dry_run:
            if span is not None:
                reading.spans.append(span)
            if lower is not None:
                reading.lower_bounds.append(lower)
            if upper is not None:
                reading.upper_bounds.append(upper)
        return length

    def _relative_years(self, msg: _Message, i: int) -> tuple[int, int] | None:
        """'last 10 years', 'past decade', 'last few years' -> (length, year_min)."""
        words = msg.words
        if self.newest_year is None or words[i] not in ("last", "past") or i + 1 >= len(msg):
            return None
        nxt = words[i + 1]
        if nxt == "decade":
            return 2, self.newest_year - 9
        found = self._numbers.longest(msg, i + 1) if not _is_small_number(nxt) else (1, int(nxt))
        if found is None:
            if nxt in ("few", "couple") and i + 2 < len(msg) and words[i + 2] == "years":
                return 3, self.newest_year - 4
            return None
        length, number = found
        k = i + 1 + length
        if k < len(msg) and words[k] in ("years", "year") and 0 < number < 200:
            return k + 1 - i, self.newest_year - number + 1
        if k < len(msg) and words[k] in ("decades", "decade") and 0 < number < 20:
            return k + 1 - i, self.newest_year - 10 * number + 1
        return None

    def _recency_word(self, msg: _Message, i: int) -> tuple[int, str] | None:
        for words, kind in ((_RECENT, "recent"), (_OLD, "old")):
            phrase, _ = _phrase_at(msg.words, i, words)
            if phrase is None:
                continue
            length = len(phrase.split())
            if phrase == "new" and i + 1 < len(msg):
                nxt = msg.tokens[i + 1]
                if nxt.capital and not nxt.sentence_start:
                    return None  # "New York"
            return length, kind
        return None

    def _year_atom(self, msg: _Message, j: int) -> tuple[int, int, int] | None:
        """A year, decade or part of a decade at word j -> (first, last, index after)."""
        if j >= len(msg):
            return None
        words = msg.words
        part = vocab.DECADE_PARTS.get(words[j])
        if part is not None and j + 1 < len(msg):
            inner = self._year_atom(msg, j + 1 + (words[j + 1] == "the"))
            if inner is not None and inner[1] - inner[0] == 9:
                return inner[0] + part[0], inner[0] + part[1], inner[2]
            return None
        word = words[j]
        if _YEAR_WORD.fullmatch(word) and MIN_YEAR <= int(word) <= MAX_YEAR:
            return int(word), int(word), j + 1
        if _DECADE4.fullmatch(word):
            start = int(word[:4])
            return start, start + 9, j + 1
        two = _DECADE2.fullmatch(word)
        decade = int(two.group(1)) * 10 if two else vocab.DECADE_WORDS.get(word)
        if decade is None:
            return None
        if decade <= 10:
            start = 2000 + decade
        elif decade == 20 and self.newest_year is not None and self.newest_year >= 2020:
            start = 2020
        else:
            start = 1900 + decade
        return start, start + 9, j + 1

    def _range_end(self, msg: _Message, j: int) -> tuple[int, int, int] | None:
        """The second half of a year range ("to 1999", "-1999", "and the 90s")."""
        if j >= len(msg):
            return None
        if msg.words[j] in vocab.RANGE_JOINERS:
            k = j + 1 + (j + 1 < len(msg) and msg.words[j + 1] == "the")
            return self._year_atom(msg, k)
        if set(msg.tokens[j].gap.strip()) & {"-", "–", "—"}:
            return self._year_atom(msg, j)
        return None

    # result

    def _intent(self, reading: _Reading) -> Intent:
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
        year_min, year_max = self._years(reading)
        references = [self.item_ids[k] for k in reading.references[:MAX_REFERENCES]]
        signal = bool(
            wanted
            or unwanted
            or references
            or year_min is not None
            or year_max is not None
            or any(_stem(w) in self._vocabulary for w in reading.keywords)
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

    @staticmethod
    def _years(reading: _Reading) -> tuple[int | None, int | None]:
        span_min = min((a for a, _ in reading.spans), default=None)
        span_max = max((b for _, b in reading.spans), default=None)
        bound_min = max(reading.lower_bounds, default=None)
        bound_max = min(reading.upper_bounds, default=None)
        year_min = _pick(max, span_min, bound_min)
        year_max = _pick(min, span_max, bound_max)
        if year_min is not None and year_max is not None and year_min > year_max:
            year_min, year_max = span_min, span_max  # contradicting bounds: keep the spans
            if year_min is None and year_max is None:
                year_min, year_max = bound_min, None
        return year_min, year_max


_PARSERS: weakref.WeakKeyDictionary[Dataset, dict[str, IntentParser]] = weakref.WeakKeyDictionary()


def parse_intent(message: str, dataset: Dataset, *, attribute: str = "genres") -> Intent:
    """The intent of `message` against `dataset`'s catalog (one cached parser per dataset)."""
    parsers = _PARSERS.setdefault(dataset, {})
    parser = parsers.get(attribute)
    if parser is None:
        parser = parsers[attribute] = IntentParser(dataset, attribute=attribute)
    return parser.parse(message)


# ---- helpers -----------------------------------------------------------------------------


def _pick(choose: Callable[[list[int]], int], *values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return choose(present) if present else None


def _phrase_at(words: Sequence[str], i: int, phrases: _Phrases[str]) -> tuple[str | None, int]:
    """The longest of `phrases` starting at words[i], and the index after it."""
    found = phrases.match(words, i)
    if found is None:
        return None, i
    return found[1], i + found[0]


def _phrase_set(phrases: Iterable[str]) -> _Phrases[str]:
    table: _Phrases[str] = _Phrases()
    for phrase in phrases:
        table.add(phrase.split(), phrase)
    return table


def _item_year(attributes: object) -> int | None:
    values = getattr(attributes, "get", lambda _k, _d=(): _d)("year", ())
    for value in values:
        match = _YEAR_WORD.search(str(value))
        if match:
            return int(match.group(1))
    return None


def _is_small_number(word: str) -> bool:
    """One to three ASCII digits (so never a year, and never a Unicode digit like "❾")."""
    return word.isascii() and word.isdigit() and len(word) <= 3


def _plural(word: str) -> str:
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    return word


def _append_unique(items: list[int], index: int) -> None:
    if index not in items:
        items.append(index)


def _looks_like_people(name: str, values: list[str]) -> bool:
    """Whether an attribute holds person names (so surnames alone may name them)."""
    people = ("director", "actor", "cast", "star", "writer", "creator", "author", "composer")
    if any(p in name.lower() for p in people):
        return True
    if not values:
        return False
    names = sum(
        1
        for v in values
        if 2 <= len(v.split()) <= 4 and all(part[:1].isupper() for part in v.split())
    )
    return names >= 0.8 * len(values)


def _title_keys(title: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Lookup keys of a title: its full forms and its parts (before a colon or a dash)."""
    text = _TITLE_YEAR.sub("", title.strip())
    alternates = [p.strip() for p in _TITLE_PAREN.findall(text) if p.strip()]
    main = _TITLE_PAREN.sub(" ", text).strip()
    full: list[tuple[str, ...]] = []
    parts: list[tuple[str, ...]] = []
    for variant in [main, *alternates]:
        variant = re.sub(r"^(a\.k\.a\.|aka)\s+", "", variant, flags=re.IGNORECASE)
        moved = _TRAILING_ARTICLE.match(variant)
        forms = [variant]
        if moved and fold_word(moved.group(2)) in vocab.TRAILING_ARTICLES:
            variant = f"{moved.group(2)} {moved.group(1)}"
            forms = [variant, moved.group(1)]  # "Postino, Il": "il postino" and "postino"
        for form in forms:
            for key in _spellings(form):
                if key not in full:
                    full.append(key)
        head = re.split(r":|\s[-–—]\s", variant, maxsplit=1)[0]
        if head != variant:
            parts.extend(k for k in _spellings(head) if k not in full and k not in parts)
    return full, parts


def _spellings(text: str) -> list[tuple[str, ...]]:
    """The folded forms of a title: without leading article, with "'s" kept or dropped,
    Roman numerals as digits."""
    base = fold(text)
    with_s = [
        "and" if t == "&" else fold_word(t.replace("'s", "s").replace("’s", "s"))
        for t in _words_of(text)
    ]
    keys: list[tuple[str, ...]] = []
    for words in (base, with_s):
        while len(words) > 1 and words[0] in vocab.LEADING_ARTICLES:
            words = words[1:]
        for key in (
            tuple(words),
            tuple(vocab.ROMAN_NUMERALS.get(w, w) for w in words),
            tuple(_NUMBER_SPELLING.get(w, w) for w in words),
        ):
            if key and key not in keys:
                keys.append(key)
    return keys


def _title_entry(
    key: tuple[str, ...], items: list[int], *, exact: bool, clash: bool
) -> _TitleEntry:
    content = [w for w in key if w not in vocab.STOPWORDS]
    if not content or len("".join(key)) <= 2:
        tier = 1
    elif len(key) == 1 or (len(content) == 1 and content[0] in vocab.COMMON_WORDS):
        tier = 2
    else:
        tier = 3
    common = all(w in vocab.STOPWORDS or w in vocab.COMMON_WORDS for w in key)
    return _TitleEntry(tuple(items), exact, tier, common, clash)


_TIME_MODIFIERS = _phrase_set(
    (
        vocab.BEFORE_WORDS
        | vocab.AFTER_WORDS
        | vocab.SINCE_WORDS
        | vocab.UNTIL_WORDS
        | vocab.SPAN_PREFIXES
        | {"between"}
    )
    - {"the"}
)
_SPELLED_NUMBERS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]
_NUMBER_SPELLING: dict[str, str] = {
    **{w: str(n) for n, w in enumerate(_SPELLED_NUMBERS, start=1)},
    **{str(n): w for n, w in enumerate(_SPELLED_NUMBERS, start=1)},
}
_OPEN_ENDS = _phrase_set(vocab.OPEN_LATER | vocab.OPEN_EARLIER)
_RECENT = _phrase_set(vocab.RECENT_WORDS)
_OLD = _phrase_set(vocab.OLD_WORDS)
