"""Years and counts in a chat message.

Years: decades ("80s", "1980s", "eighties", "late 90s"), "before/after/since/until YEAR",
ranges ("between 1990 and 1999", "1990-1999", "from 1990 to 1999"), "YEAR or later",
"last 10 years", "recent"/"new" (year_min = newest catalog year - `RECENT_YEARS`) and
"old"/"classic" (year_max = `CLASSIC_YEAR_MAX`); negated forms flip ("nothing before
1990" -> year_min 1990, "nothing too old" -> year_min 1980).

Count: a number (digits or words, "a couple", "a few", "a dozen") before a noun such as
"movies", or after "top"/"give me"/"recommend".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agents import intent_vocab as vocab
from agents.intent_lexicon import Lexicon
from agents.intent_message import (
    DECADE2,
    YEAR_WORD,
    Message,
    Reading,
    is_small_number,
    phrase_at,
    phrase_set,
)

RECENT_YEARS = 5
"""'recent'/'new' means released in the catalog's last RECENT_YEARS years (year_min)."""
CLASSIC_YEAR_MAX = 1979
"""'old'/'classic' means released in CLASSIC_YEAR_MAX or before (year_max)."""
MIN_YEAR, MAX_YEAR = 1870, 2100

_DECADE4 = re.compile(r"(1[89]\d0|20\d0)s")


def count_at(lex: Lexicon, msg: Message, i: int) -> tuple[int, int] | None:
    word = msg.words[i]
    number: int | None = None
    length = 1
    if is_small_number(word):
        number = int(word)
    else:
        found = lex.numbers.longest(msg, i)
        if found is not None:
            length, number = found
    if number is None:
        return None
    upper = _count_range_end(lex, msg, i + length, i > 0 and msg.words[i - 1] == "between")
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
        if (ahead in vocab.COUNT_NOUNS and ahead != "one") or _main_attr_at(lex, msg, k):
            return length, number
    if lead and word != "one":
        return length, number
    if lead and before in ("just", "only", "top"):
        return length, number
    return None


def _count_range_end(lex: Lexicon, msg: Message, j: int, between: bool) -> tuple[int, int] | None:
    """The upper end of a count range ("2 or 3", "3 to 5", "between 2 and 4")."""
    joiners = ("or", "to", "and") if between else ("or", "to")
    if j + 1 >= len(msg) or msg.words[j] not in joiners:
        return None
    word = msg.words[j + 1]
    if is_small_number(word):
        return 2, int(word)
    number = vocab.NUMBER_WORDS.get(word)
    return (2, number) if number is not None else None


def _main_attr_at(lex: Lexicon, msg: Message, k: int) -> bool:
    found = lex.attrs.longest(msg, k)
    return found is not None and any(a == lex.attribute for a, _ in found[1].targets)


def read_time(
    lex: Lexicon, msg: Message, i: int, reading: Reading, *, negated: bool, dry_run: bool
) -> int:
    """Length of the year expression at word `i` (0 if none); records it unless dry_run."""
    words = msg.words
    n = len(msg)
    lower: int | None = None
    upper: int | None = None
    span: tuple[int, int] | None = None
    length = 0
    relative = _relative_years(lex, msg, i)
    recency = _recency_word(lex, msg, i) if relative is None else None
    if relative is not None:
        length, lower = relative
    elif recency is not None:
        length, kind = recency
        newest = lex.newest_year
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
        mod, j = phrase_at(words, i, _TIME_MODIFIERS)
        if j < n and words[j] == "the":
            j += 1
        first = _year_atom(lex, msg, j)
        if first is None:
            return 0
        a, b, j = first
        joined = _range_end(lex, msg, j)
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
            open_end, _ = phrase_at(words, j, _OPEN_ENDS)
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


def _relative_years(lex: Lexicon, msg: Message, i: int) -> tuple[int, int] | None:
    """'last 10 years', 'past decade', 'last few years' -> (length, year_min)."""
    words = msg.words
    if lex.newest_year is None or words[i] not in ("last", "past") or i + 1 >= len(msg):
        return None
    nxt = words[i + 1]
    if nxt == "decade":
        return 2, lex.newest_year - 9
    found = lex.numbers.longest(msg, i + 1) if not is_small_number(nxt) else (1, int(nxt))
    if found is None:
        if nxt in ("few", "couple") and i + 2 < len(msg) and words[i + 2] == "years":
            return 3, lex.newest_year - 4
        return None
    length, number = found
    k = i + 1 + length
    if k < len(msg) and words[k] in ("years", "year") and 0 < number < 200:
        return k + 1 - i, lex.newest_year - number + 1
    if k < len(msg) and words[k] in ("decades", "decade") and 0 < number < 20:
        return k + 1 - i, lex.newest_year - 10 * number + 1
    return None


def _recency_word(lex: Lexicon, msg: Message, i: int) -> tuple[int, str] | None:
    for words, kind in ((_RECENT, "recent"), (_OLD, "old")):
        phrase, _ = phrase_at(msg.words, i, words)
        if phrase is None:
            continue
        length = len(phrase.split())
        if phrase == "new" and i + 1 < len(msg):
            nxt = msg.tokens[i + 1]
            if nxt.capital and not nxt.sentence_start:
                return None  # "New York"
        return length, kind
    return None


def _year_atom(lex: Lexicon, msg: Message, j: int) -> tuple[int, int, int] | None:
    """A year, decade or part of a decade at word j -> (first, last, index after)."""
    if j >= len(msg):
        return None
    words = msg.words
    part = vocab.DECADE_PARTS.get(words[j])
    if part is not None and j + 1 < len(msg):
        inner = _year_atom(lex, msg, j + 1 + (words[j + 1] == "the"))
        if inner is not None and inner[1] - inner[0] == 9:
            return inner[0] + part[0], inner[0] + part[1], inner[2]
        return None
    word = words[j]
    if YEAR_WORD.fullmatch(word) and MIN_YEAR <= int(word) <= MAX_YEAR:
        return int(word), int(word), j + 1
    if _DECADE4.fullmatch(word):
        start = int(word[:4])
        return start, start + 9, j + 1
    two = DECADE2.fullmatch(word)
    decade = int(two.group(1)) * 10 if two else vocab.DECADE_WORDS.get(word)
    if decade is None:
        return None
    if decade <= 10:
        start = 2000 + decade
    elif decade == 20 and lex.newest_year is not None and lex.newest_year >= 2020:
        start = 2020
    else:
        start = 1900 + decade
    return start, start + 9, j + 1


def _range_end(lex: Lexicon, msg: Message, j: int) -> tuple[int, int, int] | None:
    """The second half of a year range ("to 1999", "-1999", "and the 90s")."""
    if j >= len(msg):
        return None
    if msg.words[j] in vocab.RANGE_JOINERS:
        k = j + 1 + (j + 1 < len(msg) and msg.words[j + 1] == "the")
        return _year_atom(lex, msg, k)
    if set(msg.tokens[j].gap.strip()) & {"-", "–", "—"}:
        return _year_atom(lex, msg, j)
    return None


def year_bounds(reading: Reading) -> tuple[int | None, int | None]:
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


def _pick(choose: Callable[[list[int]], int], *values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return choose(present) if present else None


_TIME_MODIFIERS = phrase_set(
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
_OPEN_ENDS = phrase_set(vocab.OPEN_LATER | vocab.OPEN_EARLIER)
_RECENT = phrase_set(vocab.RECENT_WORDS)
_OLD = phrase_set(vocab.OLD_WORDS)
