"""What a chat turn says beyond titles and catalog values, read with no LLM.

- Opinions: what the user thinks of a title in the clause that names it ("I didn't like
  Titanic": disliked; "I loved Alien": liked; "I've seen it": seen; "I haven't seen that
  one": neutral), and of the last suggestion when the turn names no title ("not that one,
  I've seen it").
- Moods: "something lighter", "feel good", "less scary" rule out the dark genres (horror,
  thriller, war) of whatever catalog is loaded.
- Content to avoid: a gore word under a negation in its clause ("nothing too gory", "not
  into movies with a lot of blood") rules out gory titles; what counts as gory in the
  catalog is read from its own words (`gory_items`: descriptions and tags).
- People: a capitalised name after "with", "starring", "featuring", "directed by", "by"
  ("something with Tom Hanks"), so a reply can say when the catalog cannot search by them.
- Tags: the catalog's own tag phrases of two words or more ("twist ending", "dark comedy",
  "time travel"; `TagPhrases`), found in a turn even where a genre word inside them was
  read as a genre ("dark comedy" is a comedy, and what people tagged "dark comedy"), wanted
  or, after a negator in their clause and before a comma, unwanted.

Every phrase is in folded form (`recdata.titles.fold`: lower case, no accents, apostrophes
dropped: "didn't" is "didnt"). Turns are read as `tools.title_text` tokens.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from recdata.dataset import Dataset
from recdata.titles import LEADING_ARTICLES, fold
from tools.title_text import SENTENCE_END, Token

Opinion = Literal["liked", "disliked", "seen", "neutral"]
PersonKind = Literal["actor", "director"]
TAG_ATTRIBUTES = ("tags",)
"""Attributes of free-form labels people applied (MovieLens `tags.csv`): preferences, since
an item without a tag may still be what it describes."""
MIN_TAG_WORDS = 2


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(text: str) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(p.split()) for p in text.split(",") if p.strip())


# fmt: off
DISLIKE = _phrases(
    """didnt like, did not like, dont like, do not like, didnt enjoy, did not enjoy,
    didnt care for, did not care for, dont care for, not a fan, wasnt a fan, not a big fan,
    wasnt a big fan, not really a fan, not much of a fan, not into, hated, hate, hate it,
    disliked, dislike, cant stand, couldnt stand, cannot stand, boring, overrated, terrible,
    awful, horrible, not that one, not for me, no thanks, not my thing, not my type,
    wasnt good, wasnt great, not good, not great, meh, worst, lousiest, not interested,
    not a good, didnt love, did not love, nah, pass"""
)
UNSEEN = _phrases(
    """havent seen, have not seen, never seen, not seen, didnt see, did not see, never saw,
    havent watched, have not watched, never watched, not watched, havent see, not yet"""
)
SEEN = _phrases(
    """seen it, seen that, seen this, seen them, seen both, seen all, have seen, ive seen,
    already seen, already watched, watched it, watched that, saw it, saw that, i saw,
    i have seen, seen, watched, i have, ive watched"""
)
LIKE = _phrases(
    """loved, love, liked, i like, i really like, enjoyed, enjoy, favorite, favourite,
    great, awesome, amazing, good, fan of, big fan, adore, adored, fantastic, excellent,
    brilliant, the best, one of my favorites, one of my favourites, sounds good,
    sounds great, sounds interesting, love that, loved that"""
)
LIGHTER = _phrases(
    """lighter, something light, light hearted, lighthearted, feel good, feelgood, uplifting,
    cheerful, less dark, not so dark, not too dark, nothing dark, less scary, not scary,
    not too scary, nothing scary, less intense, not too intense, nothing too intense,
    wholesome, cozy, cosy, easy going, easygoing, light comedy"""
)
DARK_CONCEPTS = ("horror", "thriller", "war")
"""Genre concepts (`agents.intent_vocab.CONCEPT_KEYS`) a lighter mood rules out."""
GORE_TERMS = _words(
    """gore gory blood bloody bloodshed bloodbath violent violence graphic gruesome splatter
    guts grisly"""
)
NEGATORS = _words(
    """no not nothing without less dont doesnt isnt arent wasnt never avoid avoiding hate nor
    too skip minus"""
)
GORY_WORDS = _words(
    """gore gory blood bloody bloodbath bloodshed gruesome grisly splatter slasher slashers
    zombie zombies cannibal cannibals cannibalism chainsaw torture tortured dismember
    dismembered dismemberment mutilation mutilated carnage disembowel entrails"""
)
"""Words of an item's own text (title, description, tags) that mark it as gory."""
GORY_PHRASES = _phrases("chain saw, body horror, torture porn")
HORROR_GORY_WORDS = _words(
    """killer killers killing killings murderer murderers massacre massacres victims corpse
    corpses demons demonic possessed butcher butchered"""
)
"""Words that mark a horror film as gory ("a killer stalks babysitters"), and say nothing
about gore in a comedy or a western ("a killer arrives on the noon train")."""
CLAUSE_WORDS = _words("but though although however whereas")
PERSON_CUES: dict[tuple[str, ...], PersonKind] = {
    ("with",): "actor", ("starring",): "actor", ("stars",): "actor",
    ("featuring",): "actor", ("actor",): "actor", ("actress",): "actor",
    ("directed", "by"): "director", ("by",): "director", ("director",): "director",
    ("from", "director"): "director",
}
# fmt: on
_PHRASE_LENGTH = 5


@dataclass(frozen=True, slots=True)
class PersonCue:
    name: str
    kind: PersonKind
    start: int
    end: int
    """Character offsets of the name in the turn."""


def clause_bounds(tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """Token ranges of the turn's clauses: sentences, split again at ';' and at "but"."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for k in range(1, len(tokens)):
        if SENTENCE_END.intersection(tokens[k].gap) or tokens[k].word in CLAUSE_WORDS:
            bounds.append((start, k))
            start = k
    if tokens:
        bounds.append((start, len(tokens)))
    return bounds


def clause_of(bounds: Sequence[tuple[int, int]], k: int) -> tuple[int, int]:
    for start, end in bounds:
        if start <= k < end:
            return start, end
    return 0, 0


def _matches(words: Sequence[str], table: frozenset[tuple[str, ...]]) -> bool:
    for i in range(len(words)):
        for n in range(min(_PHRASE_LENGTH, len(words) - i), 0, -1):
            if tuple(words[i : i + n]) in table:
                return True
    return False


def opinion_of(words: Sequence[str]) -> Opinion | None:
    """The opinion a clause's words state (None: none). A dislike beats everything, "not
    seen" beats "seen", and liking beats having seen."""
    if not words:
        return None
    if _matches(words, DISLIKE):
        return "disliked"
    if _matches(words, UNSEEN):
        return "neutral"
    if _matches(words, LIKE):
        return "liked"
    if _matches(words, SEEN):
        return "seen"
    return None


def token_spans(
    tokens: Sequence[Token], table: frozenset[tuple[str, ...]]
) -> list[tuple[int, int]]:
    """Token ranges of the phrases of `table` in the turn, longest first, not overlapping."""
    words = [t.word for t in tokens]
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        for n in range(min(_PHRASE_LENGTH, len(words) - i), 0, -1):
            if tuple(words[i : i + n]) in table:
                spans.append((i, i + n))
                i += n
                break
        else:
            i += 1
    return spans


def gore_cues(tokens: Sequence[Token]) -> tuple[bool, bool, list[int]]:
    """(avoid gore, want gore, the tokens that are gore words) of a turn. A gore word is
    avoided when a negator ("not", "nothing", "too" ...) comes before it in its clause."""
    bounds = clause_bounds(tokens)
    avoid = want = False
    found: list[int] = []
    for k, token in enumerate(tokens):
        if token.word not in GORE_TERMS:
            continue
        found.append(k)
        start, _ = clause_of(bounds, k)
        if any(tokens[j].word in NEGATORS for j in range(start, k)):
            avoid = True
        else:
            want = True
    return avoid, want and not avoid, found


def person_cues(tokens: Sequence[Token], text: str) -> list[PersonCue]:
    """Capitalised names of two or three words after a person cue ("with Tom Hanks")."""
    found: list[PersonCue] = []
    for k in range(len(tokens)):
        for cue, kind in PERSON_CUES.items():
            end = k + len(cue)
            if tuple(t.word for t in tokens[k:end]) != cue:
                continue
            name = _name_at(tokens, end)
            if name is not None:
                lo, hi = tokens[end].start, tokens[name - 1].end
                found.append(PersonCue(text[lo:hi], kind, lo, hi))
    return found


def _name_at(tokens: Sequence[Token], i: int) -> int | None:
    """The end of a name of 2-3 capitalised words starting at token i, or None."""
    j = i
    while j < len(tokens) and j - i < 3:
        token = tokens[j]
        if j > i and (SENTENCE_END.intersection(token.gap) or "," in token.gap):
            break
        if not (token.capital and token.raw[:1].isalpha()) or token.word in LEADING_ARTICLES:
            break
        j += 1
    return j if j - i >= 2 else None


@dataclass(frozen=True, slots=True)
class TagCue:
    start: int
    end: int
    """Token range of the phrase in the turn."""
    values: tuple[tuple[str, str], ...]
    """(attribute, value) of every spelling of the phrase in the catalog."""
    negated: bool


class TagPhrases:
    """The multi-word values of a catalog's tag attributes (`TAG_ATTRIBUTES`), looked up by
    their folded words: one dictionary probe per token and phrase length."""

    def __init__(self, dataset: Dataset) -> None:
        table: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for name in TAG_ATTRIBUTES:
            for value in dataset.attribute_values(name):
                words = tuple(fold(value).split())
                if MIN_TAG_WORDS <= len(words) <= _PHRASE_LENGTH:
                    table.setdefault(words, []).append((name, value))
        self._table = {words: tuple(values) for words, values in table.items()}
        self._firsts = frozenset(words[0] for words in table)

    def __bool__(self) -> bool:
        return bool(self._table)

    def find(self, tokens: Sequence[Token], skip: Sequence[tuple[int, int]] = ()) -> list[TagCue]:
        """The tag phrases of the turn, longest first, not overlapping each other nor the
        character ranges in `skip` (titles, names)."""
        if not self._table:
            return []
        bounds = clause_bounds(tokens)
        words = [t.word for t in tokens]
        found: list[TagCue] = []
        i = 0
        while i < len(words):
            if words[i] not in self._firsts:
                i += 1
                continue
            for n in range(min(_PHRASE_LENGTH, len(words) - i), MIN_TAG_WORDS - 1, -1):
                values = self._table.get(tuple(words[i : i + n]))
                if values is None:
                    continue
                lo, hi = tokens[i].start, tokens[i + n - 1].end
                if any(a < hi and lo < b for a, b in skip):
                    continue
                found.append(TagCue(i, i + n, values, _negated(tokens, bounds, i)))
                i += n
                break
            else:
                i += 1
        return found


def _negated(tokens: Sequence[Token], bounds: Sequence[tuple[int, int]], k: int) -> bool:
    """Whether a negator comes before token k in its clause with no comma in between."""
    start, _ = clause_of(bounds, k)
    for j in range(k - 1, start - 1, -1):
        if "," in tokens[j + 1].gap:
            return False
        if tokens[j].word in NEGATORS:
            return True
    return False


def gory_items(dataset: Dataset, horror_values: Iterable[str] = ()) -> np.ndarray:
    """Boolean mask of the catalog items whose own words (description, tags) mark
    them as gory: `GORY_WORDS` anywhere, `HORROR_GORY_WORDS` in items of one of the
    `horror_values` (the catalog's horror genre)."""
    horror = set(horror_values)
    mask = np.zeros(dataset.n_items, dtype=bool)
    for index, item in enumerate(dataset.items):
        texts = [item.text, *item.attributes.get("tags", ())]
        words = {w for text in texts if text for w in fold(text).split()}
        pairs = {
            (a, b) for text in texts if text for a, b in itertools.pairwise(fold(text).split())
        }
        is_horror = bool(horror.intersection(item.attributes.get("genres", ())))
        mask[index] = bool(
            GORY_WORDS & words
            or GORY_PHRASES & pairs
            or (is_horror and (HORROR_GORY_WORDS & words or ("serial", "killer") in pairs))
        )
    return mask
