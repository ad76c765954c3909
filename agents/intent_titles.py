"""Reference titles in a chat message ("something like Alien", "a Toy Story fan").

A title counts only when licensed: the whole message is titles, the title is quoted, follows a
reference cue ("like", "similar to", "liked", ...), precedes a post cue ("a Toy Story fan"),
or is a multi-word title typed with its capitals ("Star Wars"). Titles that are common words
need more: pronoun-like titles ("It", "Up", "Her") need their capital letter; one-word titles
("Heat") need to follow a strong cue directly (or after "the") or to be capitalised; titles
that are also attribute phrases ("The War", "Kids") need their capital; after a weak cue ("I
love") common-word titles need their capital. Negative cues ("didn't like Heat") consume a
title without making it a reference. Remakes resolve to the item whose year is mentioned, else
to the most interacted-with one; a franchise name gives its items, most popular first.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents import intent_vocab as vocab
from agents.intent_lexicon import CueKind, Lexicon, TitleEntry
from agents.intent_message import YEAR_WORD, Message, Reading

MAX_FRANCHISE_ITEMS = 5


@dataclass(frozen=True, slots=True)
class TitleMatch:
    start: int
    end: int
    entry: TitleEntry
    year_before: int | None = None


def _title_at(lex: Lexicon, msg: Message, i: int) -> TitleMatch | None:
    if msg.consumed[i]:
        return None
    found = lex.titles.longest(msg, i)
    if found is not None:
        return TitleMatch(i, i + found[0], found[1])
    year = YEAR_WORD.fullmatch(msg.words[i])
    if year and i + 1 < len(msg):
        after = lex.titles.longest(msg, i + 1)
        if after is not None:
            entry = after[1]
            if int(year.group(1)) in {lex.item_years[k] for k in entry.items}:
                return TitleMatch(i, i + 1 + after[0], entry, int(year.group(1)))
    return None


def whole_message_titles(lex: Lexicon, msg: Message, reading: Reading) -> bool:
    content = [
        k
        for k, w in enumerate(msg.words)
        if w not in vocab.WHOLE_MESSAGE_FILLERS and w not in vocab.TITLE_SEPARATORS
    ]
    if not content:
        return False
    words = [msg.words[k] for k in content]
    as_attribute = lex.attrs.get(words)
    if (as_attribute is not None and not as_attribute.lowercase_only) or all(
        YEAR_WORD.fullmatch(w) for w in words
    ):
        return False
    matches: list[TitleMatch] = []
    i = 0
    while i < len(msg):
        if msg.words[i] in vocab.WHOLE_MESSAGE_FILLERS or (
            matches and msg.words[i] in vocab.TITLE_SEPARATORS
        ):
            i += 1
            continue
        match = _title_at(lex, msg, i)
        if match is None:
            if not matches or not YEAR_WORD.fullmatch(msg.words[i]):
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
        _take_title(lex, msg, reading, match, negative=False)
    return bool(matches)


def cued_titles(lex: Lexicon, msg: Message, reading: Reading) -> None:
    i = 0
    n = len(msg)
    while i < n:
        match = _title_at(lex, msg, i)
        if match is not None and _accept_uncued(lex, msg, match):
            _take_title(lex, msg, reading, match, negative=False)
            i = match.end
            continue
        cue = _cue_at(lex, msg, i)
        if cue is None:
            i += 1
            continue
        length, kind = cue
        i = max(_cue_scope(lex, msg, reading, i + length, kind), i + length)


def _cue_at(lex: Lexicon, msg: Message, i: int) -> tuple[int, CueKind] | None:
    found = lex.cues.longest(msg, i)
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


def _cue_scope(lex: Lexicon, msg: Message, reading: Reading, j: int, kind: CueKind) -> int:
    skipped = 0
    adjacent = True
    found = False
    while j < len(msg):
        if msg.hard_before(j):
            break
        match = _title_at(lex, msg, j)
        if match is not None and _accept_cued(lex, msg, match, kind, adjacent):
            j = _take_title(lex, msg, reading, match, negative=kind.startswith("negative"))
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
    lex: Lexicon, msg: Message, match: TitleMatch, kind: CueKind, adjacent: bool
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


def _accept_uncued(lex: Lexicon, msg: Message, match: TitleMatch) -> bool:
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
    lex: Lexicon, msg: Message, reading: Reading, match: TitleMatch, *, negative: bool
) -> int:
    """Records the items a title match names; returns the index after it (and its year)."""
    entry = match.entry
    end = match.end
    candidate_years = {lex.item_years[k] for k in entry.items}
    year_here = match.year_before
    if year_here is None and end < len(msg):
        k = end + 1 if msg.words[end] in ("from", "in") and end + 1 < len(msg) else end
        year = YEAR_WORD.fullmatch(msg.words[k])
        if year and int(year.group(1)) in candidate_years:
            year_here, end = int(year.group(1)), k + 1
    msg.consume(match.start, end)
    if negative:
        return end
    items = list(entry.items)
    if len(items) > 1:
        wanted_years = {year_here} if year_here is not None else msg.years
        dated = [k for k in items if lex.item_years[k] in wanted_years]
        items = dated or items
        items.sort(key=lambda k: -int(lex.popularity[k]))
        if entry.exact or dated:
            items = items[:1] if entry.exact or year_here is not None else items
        items = items[:MAX_FRANCHISE_ITEMS]
    for k in items:
        if k not in reading.references:
            reading.references.append(k)
    return end
