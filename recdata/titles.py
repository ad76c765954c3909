"""Normalised forms of film titles, shared by the ReDial mention mapping and the title linker.

A title such as "Postman, The (Postino, Il) (1994)" has a year and several *forms*, each a
string of folded words: the main title and every alternate title in parentheses, with a
trailing article moved to the front ("Matrix, The" is "The Matrix") and a leading English
article then dropped, so "The Matrix", "Matrix, The" and "Matrix" share the form "matrix".
Folding removes accents, case and apostrophes, reads "&" as "and" and turns every other
punctuation mark into a space: "Léon: The Professional" -> "leon the professional".
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache

YEAR_AT_END = re.compile(r"\s*\(\s*((?:18|19|20)\d\d)(?:\s*[-–]\s*\d{0,4})?\s*\)\s*$")
_PARENTHESES = re.compile(r"\(([^()]*)\)")
_AKA = re.compile(r"^(?:a\.?\s?k\.?\s?a\.?|aka)\s+", re.IGNORECASE)
_TRAILING_ARTICLE = re.compile(r"^(.*\S)\s*,\s*([^\W\d_]+['’]?)$")
_APOSTROPHES = re.compile(r"['’`´]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_FOUR_DIGITS = re.compile(r"(?:18|19|20)\d\d")

LEADING_ARTICLES = frozenset({"the", "a", "an"})
"""Dropped at the front of a form (the article people leave out when they type a title)."""
TRAILING_ARTICLES = frozenset(
    {"the", "a", "an", "il", "le", "la", "les", "l", "el", "los", "las", "der", "die", "das",
     "den", "det", "lo", "gli", "i"}
)  # fmt: skip
"""Articles that catalogs move to the end ("Misérables, Les"), in any language."""


@lru_cache(maxsize=131_072)
def fold(text: str) -> str:
    """Folded words of `text` joined by single spaces: HTML entities unescaped, accents and
    case removed, apostrophes dropped ("Ocean's" -> "oceans"), "&" read as "and", every other
    non-alphanumeric character a word boundary."""
    text = unicodedata.normalize("NFKD", html.unescape(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = _APOSTROPHES.sub("", text).replace("&", " and ")
    return _NOT_WORD.sub(" ", text).strip()


def split_year(title: str) -> tuple[str, int | None]:
    """("Matrix, The", 1999) from "Matrix, The (1999)"; the year is None when absent."""
    text = html.unescape(title or "").strip()
    match = YEAR_AT_END.search(text)
    if match is None:
        return text, None
    return text[: match.start()].strip(), int(match.group(1))


def item_year(title: str, attributes: Mapping[str, Sequence[str]]) -> int | None:
    """A catalog item's year: from its title ("Heat (1995)"), else its "year" attribute."""
    year = split_year(title)[1]
    if year is not None:
        return year
    for value in attributes.get("year", ()):
        match = _FOUR_DIGITS.search(str(value))
        if match:
            return int(match.group(0))
    return None


def title_without_year(title: str) -> str:
    """The title as typed, without a trailing "(1999)" and surrounding spaces."""
    return split_year(title)[0]


def _front_article(variant: str) -> str:
    moved = _TRAILING_ARTICLE.match(variant)
    if moved is not None and fold(moved.group(2)) in TRAILING_ARTICLES:
        return f"{moved.group(2)} {moved.group(1)}"
    return variant


def drop_leading_article(words: str) -> str:
    """Folded words without a leading English article (kept when it is the only word)."""
    head, _, rest = words.partition(" ")
    return rest if head in LEADING_ARTICLES and rest else words


def title_variants(title: str) -> tuple[list[str], int | None]:
    """The main title and each alternate title in parentheses, as written but with a trailing
    article moved to the front ("Postino, Il" -> "Il Postino"), and the year."""
    text, year = split_year(title)
    alternates = [_AKA.sub("", p.strip()) for p in _PARENTHESES.findall(text)]
    main = _PARENTHESES.sub(" ", text).strip()
    variants = [_front_article(v.strip()) for v in (main, *alternates)]
    return [v for v in variants if v], year


@lru_cache(maxsize=65_536)
def title_forms(title: str) -> tuple[tuple[str, ...], int | None]:
    """The normalised forms of a title (main title first, then alternate titles) and its
    year. Empty titles have no forms."""
    variants, year = title_variants(title)
    forms: list[str] = []
    for variant in variants:
        words = drop_leading_article(fold(variant))
        if words and words not in forms:
            forms.append(words)
    return tuple(forms), year
