"""Grounding: every item list an agent emits passes through here before it can leave.

"Grounded or nothing" (DESIGN.md): an item reaches a caller only if it is a catalog item, passes
the request's filters and, for ranking tasks, belongs to the candidate set. What an LLM
proposes is resolved to catalog ids, and whatever cannot be resolved safely is dropped, never
passed through. Free text that may be shown to users (explanations, reasons) is reduced to
capped plain text.

Resolution of one proposal, in order (the first that succeeds wins):

1. the text is a catalog id as it stands: kept;
2. after list numbering ("1.", "2)", "-", "*"), wrapping quotes or brackets, markdown emphasis
   and an id prefix ("#", "id:", "item_id=") are removed, it is a catalog id, exactly or up to
   case, and only one id fits: repaired ("id_format");
3. its normalised title (case, accents, punctuation, leading English articles, "Matrix, The"
   order, a "(1999)" year) matches catalog titles: one match is repaired ("title"). A year in
   the text picks among several matches and must agree (within one year) with a single one;
   several matches left are narrowed to the candidate set when there is one; still several is
   "ambiguous" and dropped.

Steps 2 and 3 are tried on the whole text, then on shorter prefixes cut before trailing
commentary ("Alien (1979) - a classic", "Alien (1979) by Ridley Scott", "The Matrix: because
you liked ..."). A cut is made only when the prefix ends with a year or the rest reads like a
sentence (it has a lowercase word that is not a title's small word, or no word at all as in
"9/10" but not a bare number), so "Alien: Resurrection" is never cut down to "Alien" nor
"Toy Story: 2" to "Toy Story".

4. Failing that, an id and a title side by side ("50: Star Wars", "The Matrix [the-matrix-1999]")
   resolve when both name the same item ("id_format"); when they name different items the
   proposal is "ambiguous".
"""

from __future__ import annotations

import html
import itertools
import math
import re
import unicodedata
import weakref
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel

from agents.schemas import RankedItem, RankedList
from recdata.dataset import Attributes, Dataset
from tools.base import History
from tools.candidates import CandidateFilters, catalog_index

RepairKind = Literal["id_format", "title"]
DropReason = Literal[
    "empty",  # nothing to resolve: None, "", a dict without an id or title
    "invalid",  # not a string, number, dict or RankedItem (lists, nested dicts, bools, ...)
    "unknown",  # resolves to no catalog item
    "ambiguous",  # the title fits several catalog items and nothing tells them apart
    "duplicate",  # resolves to an item already in the list
    "seen",  # in the user's history and the filters exclude seen items
    "filtered",  # excluded by the filters (ids, attribute include/exclude)
    "not_in_candidates",  # outside the candidate set of a ranking task
]

MAX_PROPOSALS = 500
"""Proposals beyond this many are not examined (a guard against runaway or hostile output)."""
MAX_EXAMINED_CHARS = 600
"""Only this much of a proposal's text is examined; a longer text can only resolve by a prefix."""
MAX_CUTS = 8
MAX_EXPLANATION_CHARS = 600
MAX_REASON_CHARS = 200
MAX_REASONS = 8
MAX_DESCRIBED_CHARS = 120
YEAR_TOLERANCE = 1
"""A stated year may be off by this much (release dates differ between countries)."""
REFILL_EXPLANATION = "Added from the offline ranking."

_ENGLISH_ARTICLES = frozenset({"the", "a", "an"})
_TRAILING_ARTICLE = re.compile(
    r",\s*(the|a|an|les|la|le|il|die|der|das|el|los|las)\s*(?=\(|$)", re.IGNORECASE
)
_YEAR_AT_END = re.compile(r"\(\s*(\d{4})(?:\s*[-–]\s*\d{2,4})?\s*\)\s*$")
_BARE_YEAR_AT_END = re.compile(r"^(.*\S)\s+(\d{4})$")
_PARENTHETICAL = re.compile(r"\(([^()]*)\)")
_APOSTROPHES = re.compile(r"['’`´]")
_NON_WORD = re.compile(r"[\W_]+")
_NUMBERING = re.compile(
    r"^\s*(?:[-*•·>]+\s+)?(?:(?:\d{1,3}[.)]|#\d{1,3}[.):]?|\d{1,3}\s*[-–—])\s+)?"
)
_EMPHASIS = re.compile(r"\*\*|__|~~")
_WRAPPERS = "\"'`“”‘’«»[]{}<>*_ \t\r\n"
_QUOTES = "\"'`“”‘’«»*_ \t\r\n"
_BRACKET_PAIRS = {"[": "]", "{": "}", "<": ">", "(": ")"}
_ID_PREFIX = re.compile(
    r"^(?:#|(?:item[\s_-]?)?id\s*[:=#]|item\s*[:=#]|catalog[\s_-]?id\s*[:=#])\s*", re.IGNORECASE
)
_CUT = re.compile(r"\s+[-–—|]\s+|\s*[:;]\s+|,\s+|\s+\((?!\s*\d{4}\s*\))")
_YEAR_IN_TEXT = re.compile(r"\(\s*\d{4}(?:\s*[-–]\s*\d{2,4})?\s*\)")
_BRACKETED_END = re.compile(r"^(.+?)\s*[(\[]\s*([^()\[\]]+?)\s*[)\]]$")
_SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "nor", "of", "on"}
    | {"or", "per", "the", "to", "vs", "via", "with"}
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_MIN_YEAR, _MAX_YEAR = 1800, 2100

# Free text shown to users.
_LINK_TARGET = r"\((?:[^()]|\([^()]*\))*\)"  # one level of nested parentheses
_MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]" + _LINK_TARGET)
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]" + _LINK_TARGET)
_TAG = re.compile(r"<[^<>]*>")
_SCRIPT_SCHEME = re.compile(r"\b(?:javascript|vbscript|data):(?=\S)", re.IGNORECASE)
_DROPPED_CATEGORIES = frozenset({"Cf", "Co", "Cs", "Cn"})  # format (bidi overrides), private
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MARKUP_CHARS = str.maketrans("", "", "<>`")


# --- normalisation ------------------------------------------------------------------------


def title_key(title: str) -> str:
    """The form titles are compared in: "Matrix, The" and "the matrix!" both give "matrix".

    Accents and case are dropped, "&" reads "and", apostrophes vanish, other punctuation
    separates words, a trailing article (", The" before the end or a parenthesis) is dropped
    when English and moved to the front otherwise ("Misérables, Les" reads "les miserables"),
    and a leading English article is dropped. Years are not touched here.
    """
    if title.isascii():
        text = title.lower()
    else:
        text = unicodedata.normalize("NFKD", title)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    moved: list[str] = []

    def drop_article(match: re.Match[str]) -> str:
        article = match.group(1)
        if article not in _ENGLISH_ARTICLES and not moved:
            moved.append(article)
        return " "

    if "," in text:
        text = _TRAILING_ARTICLE.sub(drop_article, text)
    text = text.replace("&", " and ")
    text = _APOSTROPHES.sub("", text)
    tokens = _NON_WORD.sub(" ", text).split()
    if len(tokens) > 1 and tokens[0] in _ENGLISH_ARTICLES:
        tokens = tokens[1:]
    return " ".join(moved + tokens)


def split_year(text: str) -> tuple[str, int | None]:
    """`text` without a final "(1999)" (or "(2005-2007)"), and that year."""
    match = _YEAR_AT_END.search(text)
    if match is None:
        return text, None
    return text[: match.start()].rstrip(), int(match.group(1))


def _item_year(title_year: int | None, attributes: Attributes) -> int | None:
    """The item's "year" attribute if it holds one, else the year in its title."""
    for value in attributes.get("year", ()):
        head = value.strip()[:4]
        if head.isdigit():
            return int(head)
    return title_year


# --- the per-dataset index ------------------------------------------------------------------


class TitleIndex:
    """Per-dataset lookups for resolving proposals, computed once (see `title_index`).

    `primary` maps the key of each item's title (with and without parenthesised alternative
    titles) to item indices; `alias` maps the keys of those alternative titles ("Se7en").
    """

    def __init__(self, dataset: Dataset) -> None:
        self.item_index = dataset.item_index
        self.item_ids = dataset.item_ids
        primary: dict[str, list[int]] = {}
        alias: dict[str, list[int]] = {}
        ids_folded: dict[str, list[int]] = {}
        years: list[int | None] = []
        for index, item in enumerate(dataset.items):
            base, year = split_year(item.title)
            years.append(_item_year(year, item.attributes))
            keys = {title_key(base), title_key(_PARENTHETICAL.sub(" ", base))}
            for key in keys:
                if key:
                    _add(primary, key, index)
            for inner in _PARENTHETICAL.findall(base):
                key = title_key(inner)
                if key and key not in keys and not key.isdigit():
                    _add(alias, key, index)
            _add(ids_folded, item.item_id.strip().casefold(), index)
        self.primary = {k: tuple(v) for k, v in primary.items()}
        self.alias = {k: tuple(v) for k, v in alias.items()}
        self.ids_folded = {k: tuple(v) for k, v in ids_folded.items()}
        self.years = years
        self.longest_key = max((len(k) for k in (*self.primary, *self.alias)), default=0)
        longest_text = max(
            (max(len(split_year(it.title)[0]), len(it.item_id)) for it in dataset.items),
            default=0,
        )
        # a piece of a proposal longer than this cannot be a catalog id or title, even with
        # a " (1999)" year and some extra spaces or punctuation
        self.max_piece_chars = longest_text + 24

    def title_matches(self, text: str) -> tuple[tuple[int, ...], int | None]:
        """Catalog items whose title fits `text`, and the year stated in `text` if any."""
        base, year = split_year(text)
        for candidate in dict.fromkeys((base, _PARENTHETICAL.sub(" ", base))):
            key = title_key(candidate)
            if not key or len(key) > self.longest_key + 5:  # room for a bare year
                continue
            found = self.primary.get(key) or self.alias.get(key)
            if found:
                return found, year
            if year is None and (bare := _BARE_YEAR_AT_END.match(key)):
                stated = int(bare.group(2))
                found = self.primary.get(bare.group(1))
                if found and _MIN_YEAR <= stated <= _MAX_YEAR:
                    return found, stated
        return (), year


def _add(table: dict[str, list[int]], key: str, index: int) -> None:
    entries = table.setdefault(key, [])
    if not entries or entries[-1] != index:
        entries.append(index)


_title_indexes: weakref.WeakKeyDictionary[Dataset, TitleIndex] = weakref.WeakKeyDictionary()


def title_index(dataset: Dataset) -> TitleIndex:
    """The `TitleIndex` of `dataset`, built on first use and kept while the dataset lives."""
    index = _title_indexes.get(dataset)
    if index is None:
        index = _title_indexes[dataset] = TitleIndex(dataset)
    return index


# --- resolving one proposal -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """What one proposed text resolved to: an item index and how, or why not.

    `repair` is None when the text was a catalog id as it stands.
    """

    item_index: int | None
    repair: RepairKind | None = None
    failure: DropReason | None = None


def resolve_item(
    text: str, index: TitleIndex, *, prefer: Collection[int] | None = None
) -> Resolution:
    """Resolve one proposed id or title to a catalog item (see the module docstring).

    `prefer` (item indices, typically the candidate set) only decides between items that share
    a title; it never makes an unknown text resolve.
    """
    exact = index.item_index.get(text)
    if exact is not None:
        return Resolution(exact)
    cleaned = _strip_decoration(text[:MAX_EXAMINED_CHARS])
    if not cleaned:
        return Resolution(None, failure="empty")
    for piece in _pieces(
        cleaned, whole=len(text) <= MAX_EXAMINED_CHARS, max_chars=index.max_piece_chars
    ):
        found = _resolve_id(piece, index)
        if found is not None:
            return Resolution(found, "id_format")
        matches, year = index.title_matches(piece)
        if matches:
            # the longest piece that names catalog titles decides: a shorter one says less
            chosen, failure = _choose(matches, year, index.years, prefer)
            if chosen is None:
                return Resolution(None, failure=failure)
            return Resolution(chosen, "title")
    return _resolve_pair(cleaned, index, prefer) or Resolution(None, failure="unknown")


def _strip_decoration(text: str) -> str:
    """`text` without markdown emphasis, wrapping quotes or brackets and list numbering."""
    text = _unwrap(_EMPHASIS.sub("", text))
    return _unwrap(_NUMBERING.sub("", text, count=1))


def _unwrap(text: str) -> str:
    """Strips quotes at either end and brackets that enclose the whole text."""
    for _ in range(4):
        text = text.strip(_QUOTES)
        close = _BRACKET_PAIRS.get(text[:1])
        inner = text[1:-1]
        if len(text) < 2 or close != text[-1] or text[0] in inner or close in inner:
            break
        text = inner
    return text


def _pieces(text: str, *, whole: bool, max_chars: int) -> Iterable[str]:
    """`text` (when `whole`), then its prefixes before commentary, longest first.

    A prefix ends at a separator (" - ", ": ", ", ", " (") or right after a "(1999)" year.
    Pieces longer than `max_chars` cannot name a catalog item and are skipped.
    """
    if whole and len(text) <= max_chars:
        yield text
    window = text[: max_chars + 4]
    rest_at = {cut.start(): cut.end() for cut in _CUT.finditer(window)}
    for year in _YEAR_IN_TEXT.finditer(window):
        if year.end() < len(text):
            rest_at.setdefault(year.end(), year.end())
    for end in sorted((e for e in rest_at if e <= max_chars), reverse=True)[:MAX_CUTS]:
        prefix = _unwrap(text[:end])
        if prefix and _is_commentary(prefix, text[rest_at[end] : rest_at[end] + 80]):
            yield prefix


def _resolve_pair(
    text: str, index: TitleIndex, prefer: Collection[int] | None
) -> Resolution | None:
    """An id and a title side by side ("50: Star Wars", "The Matrix [the-matrix-1999]").

    Resolves only when the id and the title name the same item; when they name different
    items, neither can be trusted ("ambiguous").
    """
    if len(text) > 2 * index.max_piece_chars:
        return None
    for parts in _pairs(text):
        named: list[tuple[int | None, int | None]] = []  # (by id, by title) per part
        for part in parts:
            part = _unwrap(part)
            if part.count("(") != part.count(")"):
                part = part.strip("() ")
            matches, year = index.title_matches(part) if part else ((), None)
            by_title = _choose(matches, year, index.years, prefer)[0] if matches else None
            named.append((_resolve_id(part, index) if part else None, by_title))
        (left_id, left_title), (right_id, right_title) = named
        for by_id, by_title in ((left_id, right_title), (right_id, left_title)):
            if by_id is not None and by_title is not None:
                if by_id == by_title:
                    return Resolution(by_id, "id_format")
                return Resolution(None, failure="ambiguous")
    return None


def _pairs(text: str) -> Iterable[tuple[str, str]]:
    bracketed = _BRACKETED_END.match(text)
    if bracketed:
        yield bracketed.group(1), bracketed.group(2)
    for cut in itertools.islice(_CUT.finditer(text), MAX_CUTS):
        yield text[: cut.start()], text[cut.end() :]


def _is_commentary(prefix: str, rest: str) -> bool:
    """Whether `rest` reads as a remark on the title in `prefix` rather than part of it."""
    if _YEAR_AT_END.search(prefix):
        return True
    words = _WORD.findall(rest)
    if not words:  # "9/10" is a remark, "2" may be a sequel's number
        return not rest.strip(" )]}").isdigit()
    if len(words) > 8:
        return True
    return any(w[0].islower() and w.casefold() not in _SMALL_WORDS for w in words)


def _resolve_id(piece: str, index: TitleIndex) -> int | None:
    bare = _ID_PREFIX.sub("", piece, count=1).strip(_WRAPPERS)
    for candidate in dict.fromkeys((bare, bare.rstrip(".,;:!?"))):
        if not candidate:
            continue
        found = index.item_index.get(candidate)
        if found is not None:
            return found
        folded = index.ids_folded.get(candidate.casefold())
        if folded is not None and len(folded) == 1:
            return folded[0]
    return None


def _choose(
    matches: Sequence[int],
    year: int | None,
    years: Sequence[int | None],
    prefer: Collection[int] | None,
) -> tuple[int | None, DropReason | None]:
    pool = list(matches)
    if year is not None:
        exact = [m for m in pool if years[m] == year]
        pool = exact or [
            m for m in pool if (y := years[m]) is None or abs(y - year) <= YEAR_TOLERANCE
        ]
        if not pool:
            return None, "unknown"  # a title with another year is another film (a remake)
    if len(pool) > 1 and prefer is not None:
        preferred = [m for m in pool if m in prefer]
        if len(preferred) == 1:
            return preferred[0], None
    if len(pool) == 1:
        return pool[0], None
    return None, "ambiguous"


# --- text shown to users --------------------------------------------------------------------


def clean_text(text: object, max_chars: int) -> str:
    """`text` as capped, single-line plain text: no markup, no control or format characters.

    HTML entities are decoded and tags removed, then any remaining angle bracket or backtick
    goes, so nothing can form markup; markdown links and images keep only their text.
    Anything that is not a string gives "".
    """
    if not isinstance(text, str) or not text or max_chars <= 0:
        return ""
    text = html.unescape(text[: max_chars * 2 + 64])
    text = _MARKDOWN_IMAGE.sub(r"\1", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _SCRIPT_SCHEME.sub("", text)
    text = _ASCII_CONTROL.sub(" ", text) if text.isascii() else _unicode_plain(text)
    text = " ".join(text.translate(_MARKUP_CHARS).split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space > max_chars * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _unicode_plain(text: str) -> str:
    kept: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" or category in ("Zl", "Zp"):
            kept.append(" ")
        elif category not in _DROPPED_CATEGORIES:
            kept.append(ch)
    return "".join(kept)


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Repair:
    proposed: str
    item_id: str
    how: RepairKind


@dataclass(frozen=True, slots=True)
class Drop:
    """A proposal left out. `item_id` is what it resolved to, when it resolved."""

    proposed: str
    reason: DropReason
    item_id: str | None = None


@dataclass(slots=True)
class GroundingReport:
    """The grounded list and what grounding did to the proposal.

    `items` holds `kept` and `repaired` items in proposal order, then `refilled` ones.
    `unexamined` counts proposals not looked at because the list was already full (or the
    proposal cap was reached); they are not changes.
    """

    items: list[RankedItem] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    repaired: list[Repair] = field(default_factory=list)
    dropped: list[Drop] = field(default_factory=list)
    refilled: list[str] = field(default_factory=list)
    unexamined: int = 0

    @property
    def changed(self) -> bool:
        """Whether any proposal was repaired or dropped or any item refilled."""
        return bool(self.repaired or self.dropped or self.refilled)

    @property
    def item_ids(self) -> list[str]:
        return [item.item_id for item in self.items]

    def counts(self) -> dict[str, int]:
        """Sizes of each part, e.g. for a trace event."""
        return {
            "items": len(self.items),
            "kept": len(self.kept),
            "repaired": len(self.repaired),
            "dropped": len(self.dropped),
            "refilled": len(self.refilled),
            "unexamined": self.unexamined,
        }


# --- grounding lists ------------------------------------------------------------------------


class _Rules:
    """Whether a catalog item may be in the list: the filters' mask and the candidate set."""

    def __init__(
        self,
        dataset: Dataset,
        history: History | None,
        filters: CandidateFilters | None,
        allowed_ids: Collection[str] | None,
    ) -> None:
        filters = filters if filters is not None else CandidateFilters()
        self.allowed = catalog_index(dataset).allowed(filters, history)
        self.seen: frozenset[int] = frozenset()
        if filters.exclude_seen and history is not None:
            self.seen = frozenset(np.asarray(history.items).tolist())
        self.candidates: frozenset[int] | None = None
        if allowed_ids is not None:
            ids = [allowed_ids] if isinstance(allowed_ids, str) else allowed_ids
            lookup = dataset.item_index
            self.candidates = frozenset(
                lookup[i] for i in ids if isinstance(i, str) and i in lookup
            )

    def problem(self, item: int) -> DropReason | None:
        if not self.allowed[item]:
            if item in self.seen:
                return "seen"
            return "filtered"
        if self.candidates is not None and item not in self.candidates:
            return "not_in_candidates"
        return None


@dataclass(frozen=True, slots=True)
class _Proposal:
    text: str | None
    failure: DropReason | None = None
    score: float | None = None
    explanation: str = ""
    reasons: tuple[str, ...] = ()


_ID_KEYS = ("item_id", "id", "itemId", "item", "catalog_id")
_TITLE_KEYS = ("title", "name")


def _read_proposal(proposal: object) -> _Proposal:
    if isinstance(proposal, RankedItem):
        score = proposal.score if "score" in proposal.model_fields_set else None
        return _with_text(
            proposal.item_id, _as_score(score), proposal.explanation, proposal.reasons
        )
    if isinstance(proposal, dict):
        value: object = None
        for key in (*_ID_KEYS, *_TITLE_KEYS):
            value = proposal.get(key)
            if value is not None and value != "":
                break
        return _with_text(
            value,
            _as_score(proposal.get("score")),
            proposal.get("explanation"),
            proposal.get("reasons"),
        )
    return _with_text(proposal, None, "", ())


def _with_text(
    value: object, score: float | None, explanation: object, reasons: object
) -> _Proposal:
    text, failure = _as_text(value)
    reason_list = reasons if isinstance(reasons, list | tuple) else ()
    return _Proposal(
        text=text,
        failure=failure,
        score=score,
        explanation=clean_text(explanation, MAX_EXPLANATION_CHARS),
        reasons=tuple(
            cleaned
            for reason in reason_list[:MAX_REASONS]
            if (cleaned := clean_text(reason, MAX_REASON_CHARS))
        ),
    )


def _as_text(value: object) -> tuple[str | None, DropReason | None]:
    if value is None:
        return None, "empty"
    if isinstance(value, str):
        return (value, None) if value.strip() else (None, "empty")
    if isinstance(value, bool):
        return None, "invalid"
    if isinstance(value, int) and abs(value) < 10**18:
        return str(value), None  # JSON ids of numeric catalogs (MovieLens) arrive as numbers
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return _as_text(int(value))
    return None, "invalid"


def _as_score(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    score = float(value)
    return score if math.isfinite(score) else None


def _describe(proposal: object, text: str | None) -> str:
    if text is not None:
        return clean_text(text, MAX_DESCRIBED_CHARS)
    if proposal is None:
        return "(none)"
    return f"({type(proposal).__name__})"


def _as_sequence(proposed: object, max_proposals: int | None) -> Sequence[object]:
    if proposed is None:
        return ()
    if isinstance(proposed, RankedList):
        return proposed.items
    if isinstance(proposed, str | bytes | dict | BaseModel) or not isinstance(
        proposed, Sequence | Iterable
    ):
        return (proposed,)
    if isinstance(proposed, Sequence):
        return proposed
    if max_proposals is None:
        return list(proposed)
    return list(itertools.islice(proposed, max_proposals + 1))


def ground_ranked_list(
    proposed: Iterable[object] | RankedList | None,
    dataset: Dataset,
    *,
    k: int,
    history: History | None = None,
    filters: CandidateFilters | None = None,
    allowed_ids: Collection[str] | None = None,
    fallback: Sequence[str] = (),
    max_proposals: int | None = MAX_PROPOSALS,
    refill_explanation: str = REFILL_EXPLANATION,
) -> GroundingReport:
    """The first `k` grounded items of `proposed`, refilled from `fallback`, and a report.

    Each proposal (a `RankedItem`, a dict with an id or title, or a bare id or title) is
    resolved to a catalog item (see the module docstring), then dropped if it repeats an item
    already in the list, fails `filters` (None means `CandidateFilters()`: seen items go when
    `history` is given) or, when `allowed_ids` is given (the candidate set of a ranking task),
    is outside it. Free text is cleaned with `clean_text`. Proposals are examined in order
    until `k` items are in the list, and at most `max_proposals` of them (None: all).

    Missing places are filled from `fallback` (catalog ids of the offline ranking, best first),
    skipping ids that are not catalog ids as they stand, already listed, or invalid by the same
    rules. The list has `min(k, available)` items: it is shorter, never padded, when nothing
    valid is left.

    Scores: a proposal's own finite score is kept; otherwise the score is rank-based,
    1 / (1 + position), the position in the output for proposals and in `fallback` for refilled
    items. The list's order is the ranking; scores of refilled items are not comparable with
    proposed ones.
    """
    index = title_index(dataset)
    rules = _Rules(dataset, history, filters, allowed_ids)
    k = max(k, 0)
    proposals = _as_sequence(proposed, max_proposals)
    limit = len(proposals) if max_proposals is None else min(len(proposals), max_proposals)
    report = GroundingReport()
    chosen: set[int] = set()
    examined = 0
    for proposal in itertools.islice(proposals, limit):
        if len(report.items) >= k:
            break
        examined += 1
        if isinstance(proposal, str) and proposal in dataset.item_index:
            read = _Proposal(proposal)  # a bare catalog id: the common case, kept fast
        else:
            read = _read_proposal(proposal)
        if read.text is None:
            report.dropped.append(Drop(_describe(proposal, None), read.failure or "invalid"))
            continue
        resolution = resolve_item(read.text, index, prefer=rules.candidates)
        item = resolution.item_index
        if item is None:
            described = _describe(proposal, read.text)
            report.dropped.append(Drop(described, resolution.failure or "unknown"))
            continue
        item_id = dataset.item_ids[item]
        problem = "duplicate" if item in chosen else rules.problem(item)
        if problem is not None:
            report.dropped.append(Drop(_describe(proposal, read.text), problem, item_id))
            continue
        chosen.add(item)
        score = read.score if read.score is not None else 1.0 / (1 + len(report.items))
        # every field is already of its schema type and cleaned: no validation needed
        report.items.append(
            RankedItem.model_construct(
                item_id=item_id,
                score=score,
                explanation=read.explanation,
                reasons=list(read.reasons),
                sources=[],  # every field given: model_construct skips the default factories
            )
        )
        if resolution.repair is None:
            report.kept.append(item_id)
        else:
            described = _describe(proposal, read.text)
            report.repaired.append(Repair(described, item_id, resolution.repair))
    report.unexamined = len(proposals) - examined
    explanation = clean_text(refill_explanation, MAX_EXPLANATION_CHARS)
    for position, item_id in enumerate(fallback):
        if len(report.items) >= k:
            break
        item = dataset.item_index.get(item_id) if isinstance(item_id, str) else None
        if item is None or item in chosen or rules.problem(item) is not None:
            continue
        chosen.add(item)
        report.items.append(
            RankedItem.model_construct(
                item_id=item_id,
                score=1.0 / (1 + position),
                explanation=explanation,
                reasons=[],
                sources=[],
            )
        )
        report.refilled.append(item_id)
    return report


def ground_item_ids(
    ids: Sequence[object],
    dataset: Dataset,
    *,
    k: int | None = None,
    history: History | None = None,
    filters: CandidateFilters | None = None,
    allowed_ids: Collection[str] | None = None,
) -> list[str]:
    """Catalog ids for a plain id list (a searcher's pool, a ranking task's candidates).

    The same resolution and rules as `ground_ranked_list`, without refill; at most `k` ids
    (all when None), in their first-seen order. Every entry is examined (no proposal cap).
    """
    report = ground_ranked_list(
        ids,
        dataset,
        k=len(ids) if k is None else k,
        history=history,
        filters=filters,
        allowed_ids=allowed_ids,
        max_proposals=None,
    )
    return report.item_ids
