"""The message side of the title linker (`tools.titles`): tokens, typo distances, and the
signs that a phrase is meant as a title (capitals, quotes, a cue before it) or is part of a
longer name.

A token is one word of the message, folded like catalog titles (`recdata.titles.fold`) and
with number words and Roman numerals as digits (`key`), keeping its characters, the text
before it (`gap`) and whether it is capitalised. Capitals mean nothing in a shouted message
(mostly upper case) nor in short acronyms ("LOL").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from recdata.titles import LEADING_ARTICLES, fold
from tools import title_words as words

MAX_QUOTED_WORDS = 8
TOKEN = re.compile(r"[^\W_]+(?:['’`´][^\W_]+)*|&")
QUOTES = frozenset('"“”«»')
SENTENCE_END = frozenset(".!?;\n")
SERIES_PARTS = frozenset({"part", "chapter", "vol", "volume", "episode"})
YEAR = re.compile(r"(18[89]\d|19\d\d|20[0-4]\d)")


@dataclass(slots=True)
class Token:
    raw: str
    start: int
    end: int
    word: str  # folded
    key: str  # folded, numbers as digits
    gap: str  # the text between the previous token and this one
    tail: str = ""  # the text after the last token (on the last token only)
    capital: bool = False
    sentence_start: bool = False


def canonical(word: str) -> str:
    """A folded word as titles are indexed: "two" and "ii" are "2", "volume" is "vol"."""
    return words.NUMBERS.get(word) or words.SPELLINGS.get(word, word)


def typo_limit(length: int) -> int:
    """The edits a word of `length` letters may be away from the title word it means."""
    return 1 if length < 8 else 2


def deletes(word: str, depth: int) -> set[str]:
    """`word` with up to `depth` letters deleted (symmetric-delete typo look-up)."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:k] + w[k + 1 :] for w in frontier for k in range(len(w))}
        found |= frontier
    return found


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours is one edit); `limit + 1` as
    soon as the distance exceeds `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def tokenize(text: str) -> list[Token]:
    """The words of `text` (see the module docstring); punctuation stays in the gaps."""
    tokens: list[Token] = []
    previous_end = 0
    for found in TOKEN.finditer(text):
        raw = found.group(0)
        gap = text[previous_end : found.start()]
        previous_end = found.end()
        folded = fold(raw).split() if raw != "&" else ["and"]
        for part in folded:
            tokens.append(Token(raw, found.start(), found.end(), part, canonical(part), gap))
            gap = ""
    if tokens:
        tokens[-1].tail = text[previous_end:]
    loud = shouting(tokens)
    for k, token in enumerate(tokens):
        token.sentence_start = k == 0 or bool(SENTENCE_END.intersection(token.gap))
        acronym = len(token.raw) <= 3 and token.raw.isupper()  # "LOL", "OMG"
        upper = token.raw[0].isupper() or token.raw[0].isdigit()
        token.capital = upper and not loud and not (acronym and len(token.raw) > 1)
    return tokens


def quoted_spans(tokens: list[Token]) -> list[tuple[int, int]]:
    """Token ranges between double quotes (at most `MAX_QUOTED_WORDS` words)."""
    spans = []
    i = 0
    while i < len(tokens):
        if not QUOTES.intersection(tokens[i].gap):
            i += 1
            continue
        j = i + 1
        while j < len(tokens) and j - i < MAX_QUOTED_WORDS:
            if QUOTES.intersection(tokens[j].gap) or SENTENCE_END.intersection(tokens[j].gap):
                break
            j += 1
        closing = tokens[j].gap if j < len(tokens) else tokens[-1].tail
        if QUOTES.intersection(closing):
            spans.append((i, j))
        i = j
    return spans


def shouting(tokens: list[Token]) -> bool:
    """Mostly upper case: capitals then say nothing about titles."""
    letters = [t.raw for t in tokens if t.raw[0].isalpha()]
    return len(letters) >= 3 and sum(r.isupper() for r in letters) >= 0.8 * len(letters)


def quoted(tokens: list[Token], i: int, j: int) -> bool:
    """Tokens i..j-1 are between quotes (double, or single ones around the phrase)."""
    after = tokens[j].gap if j < len(tokens) else tokens[-1].tail
    opening = QUOTES.intersection(tokens[i].gap) or "'" in tokens[i].gap[-1:]
    closing = QUOTES.intersection(after) or "'" in after[:1]
    return bool(opening and closing)


def capital(tokens: list[Token], i: int, j: int) -> bool:
    """Every content word capitalised, and more than the sentence's first word."""
    content = [t for t in tokens[i:j] if t.word not in words.STOPWORDS or t is tokens[i]]
    if not content or not all(t.capital for t in content):
        return False
    return not tokens[i].sentence_start or len(content) >= 2 or all_capital(tokens, i, j)


def all_capital(tokens: list[Token], i: int, j: int) -> bool:
    """Several words, all capitalised ("Get Out", "She's All That")."""
    return j - i >= 2 and all(t.capital for t in tokens[i:j])


def joined(tokens: list[Token], k: int) -> bool:
    """Nothing but spaces or quotes between token k - 1 and token k."""
    return not tokens[k].gap.strip(" \t'\"“”")


def cued(tokens: list[Token], i: int) -> bool:
    """A cue word (or pair) right before the title, or before its article."""
    k = i - 1
    if k >= 0 and tokens[k].word in LEADING_ARTICLES and joined(tokens, k + 1):
        k -= 1
    if k < 0 or not joined(tokens, k + 1):
        return False
    if tokens[k].word in words.CUES:
        return True
    return k > 0 and joined(tokens, k) and (tokens[k - 1].word, tokens[k].word) in words.CUE_PAIRS


def longer_title_follows(tokens: list[Token], j: int) -> bool:
    """A sequel number, a numbered part or a capitalised subtitle right after a title: the
    text names a longer title than the one matched."""
    if j >= len(tokens):
        return False
    token = tokens[j]
    if token.key.isdigit() and joined(tokens, j) and not YEAR.fullmatch(token.word):
        return True
    if ":" not in token.gap and not joined(tokens, j):
        return False
    if token.word in SERIES_PARTS:
        return j + 1 < len(tokens) and tokens[j + 1].key.isdigit()
    return ":" in token.gap and token.capital


def in_longer_name(tokens: list[Token], i: int) -> bool:
    """A one-word title next to a word that is neither everyday nor a cue, or inside a run of
    capitalised words: "Emma" in "Emma Stone", "cruise" in "tom cruise", "Girls" in "Girls
    Trip"."""

    def unusual(k: int) -> bool:
        token = tokens[k]
        if token.word in words.STOPWORDS or token.word.isdigit():
            return False
        if token.capital and not token.sentence_start:
            return True
        return token.word not in words.COMMON_WORDS and token.word not in words.CUES

    before = i > 0 and joined(tokens, i) and unusual(i - 1)
    after = i + 1 < len(tokens) and joined(tokens, i + 1) and unusual(i + 1)
    return before or after
