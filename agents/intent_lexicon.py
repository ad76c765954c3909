"""What the offline intent parser (`agents.intent`) knows about one catalog, built once:
the phrases of its attribute values (with synonym families and surnames), its titles (with
their alternate spellings, franchise names and remakes), the words that steer a reading
(negators, cues, number words), its vocabulary and the clarifying question it asks.

Titles are normalised like messages (`agents.intent_message.fold`): trailing "(1979)"
dropped, "Matrix, The" -> "the matrix", leading articles dropped, "'s" and Roman numerals in
two spellings, alternate titles in parentheses, the part before a colon and prefixes shared by
several titles as franchise names ("star wars").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents import intent_vocab as vocab
from agents.intent_message import (
    DECADE2,
    YEAR_WORD,
    Phrases,
    fold,
    fold_word,
    stem,
    value_key,
    words_of,
)
from recdata.dataset import Dataset

QUESTION_VALUES = 6

_TITLE_YEAR = re.compile(r"\s*\((?:\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_TITLE_PAREN = re.compile(r"\(([^()]*)\)")
_TRAILING_ARTICLE = re.compile(r"^(.*?),\s*([A-Za-z']+)$")

CueKind = Literal["strong", "weak", "negative_strong", "negative_weak"]


@dataclass(frozen=True, slots=True)
class AttrEntry:
    targets: tuple[tuple[str, str], ...]  # (attribute, value)
    priority: int  # 2 catalog name, 1 one-value synonym, 0 several-value word
    lowercase_only: bool = False
    capital_only: bool = False


@dataclass(frozen=True, slots=True)
class TitleEntry:
    items: tuple[int, ...]
    exact: bool
    tier: int  # 1 pronoun-like, 2 one content word, 3 other
    common: bool  # every word is a common word
    clash: bool  # the title is also an attribute phrase ("The War", "Kids")


class Lexicon:
    """The phrase tables of one catalog and what the parser needs to know of its items."""

    def __init__(self, dataset: Dataset, *, attribute: str = "genres") -> None:
        self.attribute = attribute
        self.item_ids: tuple[str, ...] = tuple(dataset.item_ids)
        self.popularity = np.bincount(
            np.asarray(dataset.interactions.item, dtype=np.int64), minlength=dataset.n_items
        )[: dataset.n_items]
        self.item_years: list[int | None] = [_item_year(it.attributes) for it in dataset.items]
        known_years = [y for y in self.item_years if y is not None]
        self.newest_year: int | None = max(known_years) if known_years else None
        self.attrs: Phrases[AttrEntry] = Phrases()
        self._build_attribute_phrases(dataset)
        self.titles: Phrases[TitleEntry] = Phrases()
        self._build_titles(dataset)
        self.control: Phrases[str] = Phrases()
        for phrases, kind in (
            (vocab.NEGATORS, "negator"),
            (vocab.NEUTRAL_PHRASES, "neutral"),
            (vocab.BOUNDARY_WORDS, "boundary"),
            (vocab.RESETS, "reset"),
        ):
            for phrase in phrases:
                self.control.add(phrase.split(), kind)
        self.cues: Phrases[CueKind] = Phrases()
        for phrase in vocab.WEAK_CUES:
            self.cues.add(phrase.split(), "weak")
        for phrase in vocab.STRONG_CUES:
            self.cues.add(phrase.split(), "strong")
        for phrase in vocab.NEGATIVE_CUES:
            strong = phrase not in {"not", "except", "other than", "apart from", "instead of"}
            self.cues.add(phrase.split(), "negative_strong" if strong else "negative_weak")
        self.numbers: Phrases[int] = Phrases()
        for phrase, number in vocab.NUMBER_WORDS.items():
            self.numbers.add(phrase.split(), number)
        self.vocabulary = self._build_vocabulary(dataset)
        self.clarifying_question = self._build_question(dataset)

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
                self.attrs.add(phrase.split(), AttrEntry(targets, 1, lowercase))
        for phrase, concepts in vocab.MULTI_CONCEPT_SYNONYMS.items():
            multi = [v for c in concepts for v in by_concept.get(c, [])]
            if multi:
                targets = tuple((self.attribute, v) for v in multi)
                self.attrs.add(phrase.split(), AttrEntry(targets, 0))
        for value in main_values:
            words = fold(value)
            if not words:
                continue
            entry = AttrEntry(((self.attribute, value),), 2)
            for variant in (words, [*words[:-1], _plural(words[-1])], ["".join(words)]):
                self.attrs.add(variant, entry)

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
                or all(w.isdigit() or DECADE2.fullmatch(w) for w in words)
                or all(w in vocab.STOPWORDS for w in words)
                or (
                    len(words) == 1
                    and (words[0] in vocab.GENERIC_WORDS or words[0] in vocab.COMMON_WORDS)
                )
            ):
                continue
            self._merge_attr(words, AttrEntry(((name, value),), 2))
            if persons and len(words) >= 2:
                if len(words) >= 3 and words[-2] in vocab.NAME_PARTICLES:
                    surnames.setdefault(tuple(words[-2:]), []).append(value)
                surnames.setdefault((words[-1],), []).append(value)
        for surname, owners in surnames.items():
            last = surname[-1]
            if len(last) < 3 or last in vocab.STOPWORDS or last in vocab.GENERIC_WORDS:
                continue
            if surname in self.attrs:
                continue
            capital_only = last in vocab.COMMON_WORDS or len(last) < 4
            targets = tuple((name, v) for v in owners)
            self.attrs.add(surname, AttrEntry(targets, 1, capital_only=capital_only))

    def _merge_attr(self, words: list[str], entry: AttrEntry) -> None:
        old = self.attrs.get(words)
        if old is not None and old.priority == entry.priority:
            entry = AttrEntry(old.targets + entry.targets, entry.priority)
        self.attrs.add(words, entry)

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
                self.titles.add(
                    key, _title_entry(key, items, exact=False, clash=self._clashes(key))
                )
        for key, items in exact.items():
            self.titles.add(key, _title_entry(key, items, exact=True, clash=self._clashes(key)))

    def _clashes(self, key: tuple[str, ...]) -> bool:
        entry = self.attrs.get(key)
        return entry is not None and not entry.lowercase_only

    def _build_vocabulary(self, dataset: Dataset) -> frozenset[str]:
        words: set[str] = set()
        for item in dataset.items:
            words.update(fold(item.title))
            words.update(fold(item.text))
            for values in item.attributes.values():
                for value in values:
                    words.update(fold(value))
        words.update(w for phrase in self.attrs.entries for w in phrase)
        return frozenset(stem(w) for w in words)

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


def _item_year(attributes: object) -> int | None:
    values = getattr(attributes, "get", lambda _k, _d=(): _d)("year", ())
    for value in values:
        match = YEAR_WORD.search(str(value))
        if match:
            return int(match.group(1))
    return None


def _plural(word: str) -> str:
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


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
        for t in words_of(text)
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


def _title_entry(key: tuple[str, ...], items: list[int], *, exact: bool, clash: bool) -> TitleEntry:
    content = [w for w in key if w not in vocab.STOPWORDS]
    if not content or len("".join(key)) <= 2:
        tier = 1
    elif len(key) == 1 or (len(content) == 1 and content[0] in vocab.COMMON_WORDS):
        tier = 2
    else:
        tier = 3
    common = all(w in vocab.STOPWORDS or w in vocab.COMMON_WORDS for w in key)
    return TitleEntry(tuple(items), exact, tier, common, clash)


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
