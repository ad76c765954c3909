"""Offline title linking: the catalog titles a free-text message names, and the title-like
phrases it could not link.

`TitleLinker(dataset)` indexes the catalog once; `link(message, context)` reads one message.
What it understands:

- Titles as people type them: without the year, in any case, without the leading article
  ("matrix"), with the trailing article of catalogs undone ("Matrix, The"), accents and
  punctuation ignored ("leon the professional", "spiderman"), alternate titles in
  parentheses ("Se7en"), the part before a colon ("Terminator 2"), sequel numbers in
  digits, words or Roman numerals ("toy story two", "Rocky 2"), and series names shared by
  several titles ("star wars", "harry potter").
- Typos: a word that is neither a title word nor an everyday word is read as the closest
  title word within 1 edit (2 for words of 8+ letters; a swap of two letters is one edit):
  "Incepton" -> "inception".
- "the first one", "the second one", "the last one", "the original": the item at that place
  (by year) in the series of the title named just before (in the message, else in `context`).
- Duplicate titles ("Heat", "The Thing"): the item whose year the message gives, else the one
  already mentioned in `context`, else the latest after "new" (the earliest after
  "original"), else one whose title has an article if one was typed ("The Heat") or none if
  none was ("Heat"), else the one with the most interactions.
- Titles that are everyday words ("Heat", "Up", "Home Alone") count only with a sign they
  are meant as titles: a capital letter (not just the sentence's first word), quotes, a cue
  just before ("seen", "like", "how about") or one of its years just after ("Heat 1995").
  Pronoun-like titles ("It", "Up", "Her") need quotes, or a capital and a cue (several
  capitalised words suffice: "Get Out").
- Not linked: a title inside a longer quoted phrase (the phrase is reported unknown); a
  title followed by a sequel number or subtitle the catalog lacks ("Annabelle 2"); a
  one-word title that is part of a longer name ("Emma" in "Emma Stone", "tom cruise").

`unknown` lists the phrases that look like titles but match none: text in quotes, a
capitalised phrase after a cue ("like Super Troopers"), or any phrase after "something like",
"movies like", "similar to", "such as", "called" that holds a word which is neither an
everyday word nor a catalog value (genres, tags). A reply can then say it does not know them.

The message side (tokens, capitals, quotes, cues, typo distances) is `tools.title_text`;
the word lists are `tools.title_words`.

Cost: building reads every title once (0.6 s for MovieLens' 9,742 titles); a message costs
O(words x title lengths) dictionary look-ups plus one cached typo look-up per unknown word
(benchmarks/title_linking.py measures it: p99 about 1 ms).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from recdata.dataset import Dataset
from recdata.titles import LEADING_ARTICLES, fold, item_year, title_variants
from tools import title_text
from tools import title_words as words
from tools.title_text import edit_distance

MAX_MESSAGE_CHARS = 4_000
TYPO_CACHE_SIZE = 50_000

_COMPOUND = re.compile(r"[^\W_]+(?:[-·.][^\W_]+)+")
_HEAD = re.compile(r":|\s[-–—]\s")

How = Literal["exact", "typo", "series", "ordinal"]


@dataclass(frozen=True, slots=True)
class TitleMention:
    """One catalog item named in a message."""

    item: int
    item_id: str
    title: str
    start: int
    end: int
    """The characters of the message that name it: `message[start:end]`."""
    text: str
    how: How
    """exact: a title or its part; typo: read through a typo; series: a series name resolved
    to one of its items; ordinal: "the first one" and the like."""


@dataclass(frozen=True, slots=True)
class Linked:
    mentions: tuple[TitleMention, ...] = ()
    unknown: tuple[str, ...] = ()
    """Title-like phrases that match no catalog title, as typed."""

    @property
    def items(self) -> list[int]:
        """The catalog indices named, in order of first mention, each once."""
        return list(dict.fromkeys(m.item for m in self.mentions))


@dataclass(slots=True)
class _Entry:
    exact: list[int] = field(default_factory=list)
    alias: list[int] = field(default_factory=list)
    tier: int = 5
    """1: pronoun-like or a number; 2: one everyday word; 3: one other word; 4: several
    everyday words; 5: several words, one of them not an everyday word."""


@dataclass(slots=True)
class _Match:
    start: int  # token indices
    end: int
    entry: _Entry
    typo: bool


def _key(text: str) -> tuple[str, ...]:
    return tuple(title_text.canonical(w) for w in fold(text).split())


def _tier(key: tuple[str, ...]) -> int:
    content = [w for w in key if w not in words.STOPWORDS]
    if not content or len("".join(key)) <= 2 or all(w.isdigit() for w in content):
        return 1
    if len(content) == 1:
        word = content[0]
        return 2 if word in words.COMMON_WORDS or len(word) <= 3 else 3
    return 4 if all(w in words.COMMON_WORDS or w.isdigit() for w in content) else 5


class TitleLinker:
    """Finds the catalog titles named in free text (see the module docstring)."""

    def __init__(self, dataset: Dataset, popularity: np.ndarray | None = None) -> None:
        self.dataset = dataset
        if popularity is None:
            counts = np.asarray(dataset.interactions.item, dtype=np.int64)
            popularity = np.bincount(counts, minlength=dataset.n_items)[: dataset.n_items]
        self.popularity = np.asarray(popularity, dtype=np.float64)
        self.years: list[int | None] = []
        self._article: list[bool] = []  # the main title begins with "The", "A" or "An"
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self._lengths: dict[str, list[int]] = {}
        self._series: dict[tuple[str, ...], list[int]] = {}
        self._series_of: dict[int, tuple[str, ...]] = {}
        main_keys: list[tuple[str, ...]] = []
        for index, item in enumerate(dataset.items):
            variants = title_variants(item.title)[0]
            self.years.append(item_year(item.title, item.attributes))
            self._article.append(
                bool(variants) and fold(variants[0]).split(" ")[0] in LEADING_ARTICLES
            )
            main_keys.append(self._index_title(index, variants))
        self._index_series(main_keys)
        for key, entry in self._entries.items():
            entry.tier = _tier(key)
            lengths = self._lengths.setdefault(key[0], [])
            if len(key) not in lengths:
                lengths.append(len(key))
        for lengths in self._lengths.values():
            lengths.sort(reverse=True)
        self._vocabulary = {w for key in self._entries for w in key}
        self._value_phrases = {
            fold(value)
            for name in dataset.attribute_names
            if name != "year"
            for value in dataset.attribute_values(name)
        }
        self._value_words = {w for phrase in self._value_phrases for w in phrase.split()}
        self._known = self._vocabulary | words.COMMON_WORDS | words.CUES | self._value_words
        self._word_weight: dict[str, float] = {}
        for key, entry in self._entries.items():
            weight = float(self.popularity[entry.exact or entry.alias].sum()) + 1.0
            for w in key:
                self._word_weight[w] = self._word_weight.get(w, 0.0) + weight
        self._typo_index: dict[str, list[str]] = {}
        for w in self._vocabulary:
            if len(w) >= 5 and w.isalpha():
                for d in title_text.deletes(w, title_text.typo_limit(len(w))):
                    self._typo_index.setdefault(d, []).append(w)
        self._typo_cache: dict[str, str | None] = {}

    # ---- index ---------------------------------------------------------------------------

    def _add(self, key: tuple[str, ...], index: int, *, exact: bool) -> None:
        if not key:
            return
        entry = self._entries.setdefault(key, _Entry())
        target = entry.exact if exact else entry.alias
        if index not in target:
            target.append(index)

    def _index_title(self, index: int, variants: list[str]) -> tuple[str, ...]:
        main: tuple[str, ...] = ()
        for variant in variants:
            spellings = [variant]
            joined = _COMPOUND.sub(lambda m: re.sub(r"[-·.]", "", m.group(0)), variant)
            if joined != variant:
                spellings.append(joined)  # "Spider-Man" is also "spiderman"
            for spelling in spellings:
                key = _key(spelling)
                if len(key) > 1 and key[0] in LEADING_ARTICLES:
                    key = key[1:]
                self._add(key, index, exact=True)
                main = main or key
                parts = _HEAD.split(spelling)
                for k in range(1, len(parts)):
                    head_key = _key(" ".join(parts[:k]))
                    if len(head_key) > 1 and head_key[0] in LEADING_ARTICLES:
                        head_key = head_key[1:]
                    self._add(head_key, index, exact=False)
                    if k == 1:
                        self._series.setdefault(self._series_base(head_key), []).append(index)
        return main

    @staticmethod
    def _series_base(key: tuple[str, ...]) -> tuple[str, ...]:
        """The series a numbered title belongs to: "toy story 2" -> "toy story"."""
        if len(key) > 1 and key[-1].isdigit():
            key = key[:-1]
            if len(key) > 1 and key[-1] in title_text.SERIES_PARTS:
                key = key[:-1]
        return key

    def _index_series(self, main_keys: list[tuple[str, ...]]) -> None:
        for index, key in enumerate(main_keys):
            base = self._series_base(key)
            if base != key:
                self._series.setdefault(base, []).append(index)
            for k in range(2, len(key)):
                prefix = key[:k]
                if prefix[-1] not in words.STOPWORDS and _tier(prefix) == 5:
                    self._series.setdefault(prefix, []).append(index)
        for index, key in enumerate(main_keys):
            if key in self._series:
                self._series[key].append(index)  # "Toy Story" begins the "toy story" series
        for base, members in list(self._series.items()):
            unique = sorted(set(members), key=lambda i: (self.years[i] or 9999, i))
            if len(unique) < 2:
                del self._series[base]
                continue
            self._series[base] = unique
            for index in unique:
                self._add(base, index, exact=False)
                if len(base) > len(self._series_of.get(index, ())):
                    self._series_of[index] = base

    # ---- reading -------------------------------------------------------------------------

    def link(self, message: str, context: Sequence[int] = ()) -> Linked:
        """The titles `message` names. `context`: catalog indices mentioned earlier in the
        conversation, oldest first (for duplicates and "the first one")."""
        text = message[:MAX_MESSAGE_CHARS] if isinstance(message, str) else ""
        tokens = title_text.tokenize(text)
        if not tokens:
            return Linked()
        keys, typos = self._corrected(tokens)
        quotes = title_text.quoted_spans(tokens)
        years = {int(t.word) for t in tokens if title_text.YEAR.fullmatch(t.word)}
        matches: list[_Match] = []
        i = 0
        while i < len(tokens):
            match = self._match_at(tokens, keys, typos, i, quotes)
            if match is None:
                i += 1
                continue
            matches.append(match)
            i = match.end
        mentions: list[tuple[int, TitleMention]] = []
        for match in matches:
            start = match.start
            article = start > 0 and tokens[start - 1].word in LEADING_ARTICLES
            if article and title_text.joined(tokens, start):
                start -= 1
            version = (
                tokens[start - 1].word if start > 0 and title_text.joined(tokens, start) else ""
            )
            item = self._resolve(match.entry, years, context, article=article, version=version)
            several = not match.entry.exact and len(match.entry.alias) > 1
            how: How = "typo" if match.typo else "series" if several else "exact"
            mentions.append((match.start, self._mention(text, tokens, start, match.end, item, how)))
        mentions.extend(self._ordinals(text, tokens, matches, mentions, context))
        mentions.sort(key=lambda pair: pair[0])
        taken = [(m.start, m.end) for _, m in mentions]
        unknown = self._unknown(text, tokens, taken, quotes)
        return Linked(tuple(m for _, m in mentions), unknown)

    def link_conversation(self, messages: Sequence[str]) -> list[Linked]:
        """Each message linked with the items of the messages before it as context."""
        context: list[int] = []
        out = []
        for message in messages:
            linked = self.link(message, context)
            out.append(linked)
            context.extend(i for i in linked.items if i not in context)
        return out

    def _mention(
        self, text: str, tokens: list[title_text.Token], start: int, end: int, item: int, how: How
    ) -> TitleMention:
        lo, hi = tokens[start].start, tokens[end - 1].end
        it = self.dataset.items[item]
        return TitleMention(item, it.item_id, it.title, lo, hi, text[lo:hi], how)

    def _corrected(self, tokens: list[title_text.Token]) -> tuple[list[str], list[bool]]:
        keys = [t.key for t in tokens]
        typos = [False] * len(tokens)
        for k, token in enumerate(tokens):
            word = token.key
            if word in self._known or len(word) < 5 or not word.isalpha():
                continue
            fixed = self._typo(word)
            if fixed is not None:
                keys[k], typos[k] = fixed, True
        return keys, typos

    def _typo(self, word: str) -> str | None:
        if word in self._typo_cache:
            return self._typo_cache[word]
        limit = title_text.typo_limit(len(word))
        best: tuple[int, float, str] | None = None
        for deleted in title_text.deletes(word, limit):
            for candidate in self._typo_index.get(deleted, ()):
                allowed = title_text.typo_limit(min(len(word), len(candidate)))
                distance = edit_distance(word, candidate, allowed)
                if distance > allowed:
                    continue
                rank = (distance, -self._word_weight.get(candidate, 0.0), candidate)
                if best is None or rank < best:
                    best = rank
        if len(self._typo_cache) >= TYPO_CACHE_SIZE:
            self._typo_cache.clear()
        found = self._typo_cache[word] = None if best is None else best[2]
        return found

    def _match_at(
        self,
        tokens: list[title_text.Token],
        keys: list[str],
        typos: list[bool],
        i: int,
        quotes: list[tuple[int, int]],
    ) -> _Match | None:
        for length in self._lengths.get(keys[i], ()):
            end = i + length
            if end > len(tokens):
                continue
            entry = self._entries.get(tuple(keys[i:end]))
            if entry is None:
                continue
            match = _Match(i, end, entry, any(typos[i:end]))
            inside = any(a <= i and end <= b and b - a > end - i for a, b in quotes)
            if not inside and self._accept(tokens, match):
                return match
        return None

    def _accept(self, tokens: list[title_text.Token], match: _Match) -> bool:
        tier = match.entry.tier
        i, j = match.start, match.end
        if title_text.longer_title_follows(tokens, j):
            return False  # "Annabelle 2", "Insidious: Chapter 4", "Avengers: Infinity War"
        single = j - i == 1
        if (
            single
            and tier > 1
            and title_text.in_longer_name(tokens, i)
            and not title_text.quoted(tokens, i, j)
        ):
            return False
        if match.typo:
            if tier not in (3, 5):
                return False
            return not single or len(tokens[i].word) >= 8 or self._signal(tokens, match)
        if tier in (3, 5):
            return True
        if tier == 1:
            return (
                title_text.quoted(tokens, i, j)
                or title_text.all_capital(tokens, i, j)
                or (title_text.capital(tokens, i, j) and title_text.cued(tokens, i))
            )
        return self._signal(tokens, match)

    def _signal(self, tokens: list[title_text.Token], match: _Match) -> bool:
        i, j = match.start, match.end
        return (
            title_text.quoted(tokens, i, j)
            or title_text.capital(tokens, i, j)
            or title_text.cued(tokens, i)
            or self._year_after(tokens, match)
        )

    def _year_after(self, tokens: list[title_text.Token], match: _Match) -> bool:
        """A year of one of the title's items right after it: "the thing from 2011"."""
        k = match.end
        if k < len(tokens) and tokens[k].word in ("from", "in") and k + 1 < len(tokens):
            k += 1
        if k >= len(tokens) or not title_text.YEAR.fullmatch(tokens[k].word):
            return False
        return int(tokens[k].word) in {
            self.years[i] for i in match.entry.exact or match.entry.alias
        }

    def _resolve(
        self,
        entry: _Entry,
        years: set[int],
        context: Sequence[int],
        *,
        article: bool = False,
        version: str = "",
    ) -> int:
        """One item of a title shared by several: the year given, the one already mentioned,
        the latest after "new" (the earliest after "original"), the one whose title has an
        article when one was typed ("The Heat") or none when none was ("Heat"), the most
        interacted-with one."""
        items = entry.exact or entry.alias
        if len(items) == 1:
            return items[0]
        dated = [i for i in items if self.years[i] in years]
        pool = dated or items
        for previous in reversed(context):
            if previous in pool:
                return previous
        if version in words.LATEST_CUES or version in words.EARLIEST_CUES:
            known = [i for i in pool if self.years[i] is not None]
            if known:
                sign = 1 if version in words.LATEST_CUES else -1
                return max(known, key=lambda i: (sign * (self.years[i] or 0), -i))
        agreeing = [i for i in pool if self._article[i] == article]
        return max(agreeing or pool, key=lambda i: (self.popularity[i], -i))

    def _ordinals(
        self,
        text: str,
        tokens: list[title_text.Token],
        matches: list[_Match],
        found: list[tuple[int, TitleMention]],
        context: Sequence[int],
    ) -> list[tuple[int, TitleMention]]:
        out: list[tuple[int, TitleMention]] = []
        for k in range(len(tokens) - 1):
            if tokens[k].word != "the" or tokens[k + 1].word not in words.ORDINALS:
                continue
            ordinal = tokens[k + 1].word
            end = k + 2
            if end < len(tokens) and tokens[end].word in ("one", "movie", "film", "part"):
                end += 1
            elif ordinal != "original":
                continue
            if any(m.start < end and k < m.end for m in matches):
                continue
            before = [m.item for start, m in found if start < k]
            after = [m.item for start, m in found if start >= end]
            anchors = [*before[-1:], *context[-1:], *after[:1]]
            series = self._series_of.get(anchors[0]) if anchors else None
            if series is None:
                continue
            members = self._series[series]
            place = words.ORDINALS[ordinal]
            if place < len(members):
                out.append((k, self._mention(text, tokens, k, end, members[place], "ordinal")))
        return out

    def _unknown(
        self,
        text: str,
        tokens: list[title_text.Token],
        taken: list[tuple[int, int]],
        quotes: list[tuple[int, int]],
    ) -> tuple[str, ...]:
        spans = list(quotes)
        shouting = title_text.shouting(tokens)
        for i, token in enumerate(tokens):
            if token.word in words.UNKNOWN_CUES and not shouting:
                spans.extend(self._capitalised_after(tokens, i + 1))
            for cue in words.LIKE_CUES:
                if tuple(t.word for t in tokens[i - len(cue) + 1 : i + 1]) == cue:
                    spans.extend(self._phrase_after(tokens, i + 1))
        out: list[str] = []
        for i, j in spans:
            lo, hi = tokens[i].start, tokens[j - 1].end
            if any(lo < b and a < hi for a, b in taken):
                continue
            phrase = text[lo:hi]
            if phrase not in out:
                out.append(phrase)
        return tuple(out)

    def _capitalised_after(self, tokens: list[title_text.Token], i: int) -> list[tuple[int, int]]:
        if i < len(tokens) and tokens[i].word in LEADING_ARTICLES and not tokens[i].capital:
            i += 1
        j = i
        last = -1
        while j < len(tokens) and j - i < title_text.MAX_QUOTED_WORDS:
            if j > i and title_text.SENTENCE_END.union(",").intersection(tokens[j].gap):
                break
            if tokens[j].capital and tokens[j].word != "i":
                last = j
            elif tokens[j].word not in words.STOPWORDS or j == i:
                break
            j += 1
        if last < i:
            return []
        end = last + 1
        if end < len(tokens) and tokens[end].word in words.NOT_TITLE_AFTER:
            return []
        span = [t.word for t in tokens[i:end]]
        if all(w in words.STOPWORDS for w in span) or " ".join(span) in self._value_phrases:
            return []
        return [(i, end)]

    def _phrase_after(self, tokens: list[title_text.Token], i: int) -> list[tuple[int, int]]:
        if i < len(tokens) and tokens[i].word in LEADING_ARTICLES:
            i += 1
        j = i
        while j < len(tokens) and j - i < 5:
            if j > i and title_text.SENTENCE_END.union(",").intersection(tokens[j].gap):
                break
            if tokens[j].word in words.BOUNDARIES:
                break
            j += 1
        content = [t.word for t in tokens[i:j]]
        if not content or (j < len(tokens) and tokens[j].word in words.NOT_TITLE_AFTER):
            return []
        unusual = [
            w
            for w in content
            if w not in words.COMMON_WORDS and w not in self._value_words and not w.isdigit()
        ]
        return [(i, j)] if unusual else []
