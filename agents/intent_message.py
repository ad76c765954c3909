"""A chat message as the offline intent parser (`agents.intent`) reads it: folded words with
the punctuation before them and their capitals, which words are already consumed, and what has
been read from it so far (`Reading`); phrase tables matched longest first.

Folding: NFKC, accents removed, lower case, "'s" and apostrophes dropped ("don't" -> "dont"),
punctuation kept aside as boundaries; at most `MAX_MESSAGE_CHARS` are read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Generic, TypeVar

MAX_MESSAGE_CHARS = 2_000

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]")
_HARD_PUNCT = frozenset(".!?;")
_QUOTES = frozenset("\"'“”‘’«»`")
_ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "st", "vs", "jr", "sr", "vol", "no", "inc"})
YEAR_WORD = re.compile(r"(1[89]\d\d|20\d\d)")
DECADE2 = re.compile(r"(\d)0s")

V = TypeVar("V")


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
    return [fold_word(t) if t != "&" else "and" for t in words_of(text)]


def words_of(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text) if t == "&" or t[0].isalnum()]


def value_key(value: str) -> str:
    """A catalog value's lookup key: "Sci-Fi" -> "scifi", "Children's" -> "children"."""
    return "".join(ch for ch in "".join(fold(value)) if ch.isalnum())


@dataclass(slots=True)
class Token:
    word: str
    raw: str
    gap: str  # punctuation between the previous word and this one
    sentence_start: bool
    capital: bool = False


@dataclass(slots=True)
class Message:
    tokens: list[Token]
    tail_gap: str
    words: list[str] = field(init=False)
    consumed: list[bool] = field(init=False)
    years: set[int] = field(init=False)

    def __post_init__(self) -> None:
        self.words = [t.word for t in self.tokens]
        self.consumed = [False] * len(self.tokens)
        self.years = {int(w) for w in self.words if YEAR_WORD.fullmatch(w)}
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


def tokenize(message: str) -> Message:
    text = unicodedata.normalize("NFKC", message[:MAX_MESSAGE_CHARS])
    tokens: list[Token] = []
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
        tokens.append(Token(word, piece, "".join(gap), sentence_start))
        gap = []
        sentence_start = False
    letters = [t.raw for t in tokens if t.raw[0].isalpha()]
    shouting = len(letters) >= 3 and sum(r.isupper() for r in letters) >= 0.8 * len(letters)
    for tok in tokens:
        tok.capital = not shouting and (tok.raw[0].isupper() or tok.raw[0].isdigit())
    return Message(tokens, "".join(gap))


class Phrases(Generic[V]):
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

    def longest(self, msg: Message, i: int) -> tuple[int, V] | None:
        """The longest phrase starting at word `i` over words not yet consumed."""
        for length in self._lengths.get(msg.words[i], ()):
            if msg.free(i, i + length):
                value = self.entries.get(tuple(msg.words[i : i + length]))
                if value is not None:
                    return length, value
        return None


@dataclass(slots=True)
class Reading:
    """What one message says, gathered before it becomes an `Intent`."""

    mentions: list[tuple[str, str, bool, int]] = field(default_factory=list)
    references: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    lower_bounds: list[int] = field(default_factory=list)
    upper_bounds: list[int] = field(default_factory=list)
    count: int | None = None
    keywords: list[str] = field(default_factory=list)


def phrase_at(words: Sequence[str], i: int, phrases: Phrases[str]) -> tuple[str | None, int]:
    """The longest of `phrases` starting at words[i], and the index after it."""
    found = phrases.match(words, i)
    if found is None:
        return None, i
    return found[1], i + found[0]


def phrase_set(phrases: Iterable[str]) -> Phrases[str]:
    table: Phrases[str] = Phrases()
    for phrase in phrases:
        table.add(phrase.split(), phrase)
    return table


def is_small_number(word: str) -> bool:
    """One to three ASCII digits (so never a year, and never a Unicode digit like "❾")."""
    return word.isascii() and word.isdigit() and len(word) <= 3


def stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    return word
