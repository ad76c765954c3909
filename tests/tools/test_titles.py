"""The offline title linker on a small hand-made catalog."""

from __future__ import annotations

import pytest

from recdata.dataset import Dataset, Item
from tools.titles import TitleLinker, edit_distance

TITLES = {
    "inception": "Inception (2010)",
    "toy1": "Toy Story (1995)",
    "toy2": "Toy Story 2 (1999)",
    "toy3": "Toy Story 3 (2010)",
    "matrix": "Matrix, The (1999)",
    "thing82": "Thing, The (1982)",
    "thing11": "Thing, The (2011)",
    "cind50": "Cinderella (1950)",
    "cind15": "Cinderella (2015)",
    "up": "Up (2009)",
    "titanic": "Titanic (1997)",
    "rocky": "Rocky (1976)",
    "rocky2": "Rocky II (1979)",
    "sw4": "Star Wars: Episode IV - A New Hope (1977)",
    "sw5": "Star Wars: Episode V - The Empire Strikes Back (1980)",
    "spiderman": "Spider-Man (2002)",
    "leon": "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)",
    "shawshank": "Shawshank Redemption, The (1994)",
    "heat95": "Heat (1995)",
    "heat13": "Heat, The (2013)",
}
# interactions per item: the 1982 Thing, the 1950 Cinderella and Heat (1995) are the most
# popular of their titles
POPULARITY = {"thing82": 5, "thing11": 2, "cind50": 4, "cind15": 1, "heat95": 3, "heat13": 1}


@pytest.fixture(scope="module")
def linker() -> TitleLinker:
    items = [Item(i, t, {"genres": ("Comedy", "Horror")}) for i, t in TITLES.items()]
    rows = [(f"u{n}", item, 4.0, n) for item, count in POPULARITY.items() for n in range(count)]
    rows += [("u0", item, 4.0, 0) for item in TITLES if item not in POPULARITY]
    return TitleLinker(Dataset.build("titles", items, rows))


def linked_ids(linker: TitleLinker, message: str, context: list[str] | None = None) -> list[str]:
    index = linker.dataset.item_index
    found = linker.link(message, [index[i] for i in context or []])
    return [linker.dataset.item_ids[i] for i in found.items]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("something like Incepton but funnier", ["inception"]),
        ("i loved incpetion", ["inception"]),  # two letters swapped
        ("shawshenk redemtion was great", ["shawshank"]),
    ],
)
def test_typos_are_read_as_the_closest_title(
    linker: TitleLinker, message: str, expected: list[str]
) -> None:
    found = linker.link(message)
    assert linked_ids(linker, message) == expected
    assert [m.how for m in found.mentions] == ["typo"]


def test_a_mention_names_the_characters_that_were_typed(linker: TitleLinker) -> None:
    message = "I loved the matrix!"
    (mention,) = linker.link(message).mentions
    assert mention.item_id == "matrix" and mention.how == "exact"
    assert message[mention.start : mention.end] == mention.text == "the matrix"


@pytest.mark.parametrize(
    "message",
    ["I loved the matrix", "I loved Matrix", "i LOVED THE MATRIX", "matrix, the"],
)
def test_articles_and_case_do_not_matter(linker: TitleLinker, message: str) -> None:
    assert linked_ids(linker, message) == ["matrix"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("leon the professional", ["leon"]),  # accents and the colon
        ("have you seen spiderman", ["spiderman"]),  # "Spider-Man" written as one word
        ("I liked The Professional", ["leon"]),  # an alternate title in parentheses
    ],
)
def test_accents_punctuation_and_compounds(
    linker: TitleLinker, message: str, expected: list[str]
) -> None:
    assert linked_ids(linker, message) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("my kids love toy story 2", ["toy2"]),
        ("my kids love Toy Story II", ["toy2"]),
        ("my kids love toy story two", ["toy2"]),
        ("rocky 2 is better than rocky", ["rocky2", "rocky"]),
        ("toy story 3", ["toy3"]),
    ],
)
def test_sequel_numbers_in_digits_words_or_roman_numerals(
    linker: TitleLinker, message: str, expected: list[str]
) -> None:
    assert linked_ids(linker, message) == expected


def test_the_first_one_is_the_first_of_the_series_named_before(linker: TitleLinker) -> None:
    found = linker.link("i liked toy story 3 but the first one was better")
    assert [m.item_id for m in found.mentions] == ["toy3", "toy1"]
    assert found.mentions[1].text == "the first one" and found.mentions[1].how == "ordinal"
    assert linked_ids(linker, "the second one was better", ["toy3"]) == ["toy2"]
    assert linked_ids(linker, "the last one?", ["toy1"]) == ["toy3"]
    assert linked_ids(linker, "the first one") == []  # no series named: nothing to resolve
    assert linked_ids(linker, "the first one", ["titanic"]) == []


def test_a_series_name_resolves_to_its_most_popular_item(linker: TitleLinker) -> None:
    found = linker.link("I love star wars")
    assert [(m.item_id, m.how) for m in found.mentions] == [("sw4", "series")]
    assert linked_ids(linker, "I liked star wars and the second one", []) == ["sw4", "sw5"]


@pytest.mark.parametrize(
    ("message", "context", "expected"),
    [
        ("have you seen The Thing?", [], "thing82"),  # the more popular one
        ("have you seen The Thing from 2011?", [], "thing11"),  # the year given
        ("The Thing (2011) was fun", [], "thing11"),
        ("have you seen The Thing?", ["thing11"], "thing11"),  # the one mentioned before
        ("I want to see the new Cinderella", [], "cind15"),  # "new": the latest
        ("the original Cinderella", [], "cind50"),
        ("something like The Heat", [], "heat13"),  # typed with its article
        ("something like Heat", [], "heat95"),
    ],
)
def test_duplicate_titles_by_year_context_or_popularity(
    linker: TitleLinker, message: str, context: list[str], expected: str
) -> None:
    assert linked_ids(linker, message, context) == [expected]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("I'm up for anything", []),
        ("the thing is, I do not like horror", []),
        ("Have you seen Up?", ["up"]),
        ('I loved "Up"', ["up"]),
        ("I watched titanic yesterday", ["titanic"]),  # not an everyday word: no cue needed
    ],
)
def test_titles_that_are_everyday_words_need_a_sign(
    linker: TitleLinker, message: str, expected: list[str]
) -> None:
    assert linked_ids(linker, message) == expected


@pytest.mark.parametrize(
    ("message", "unknown"),
    [
        ("something like Super Troopers", ("Super Troopers",)),
        ("something like super troopers but funnier", ("super troopers",)),
        ('I loved "Moonlight Serenade" a lot', ("Moonlight Serenade",)),
        ("have you seen Paddington 2?", ("Paddington 2",)),
        ("have you seen Toy Story 2?", ()),  # a known title is not unknown ...
        ("I like Tom Hanks movies", ()),  # ... nor a person, a genre or an everyday phrase
        ("something like Horror", ()),
        ("something like a comedy", ()),
    ],
)
def test_title_like_phrases_that_match_nothing_are_reported(
    linker: TitleLinker, message: str, unknown: tuple[str, ...]
) -> None:
    assert linker.link(message).unknown == unknown


def test_a_title_inside_a_longer_quoted_title_is_not_linked(linker: TitleLinker) -> None:
    found = linker.link('have you seen "Up in the Air"?')
    assert found.items == [] and found.unknown == ("Up in the Air",)


def test_a_sequel_the_catalog_lacks_is_not_its_first_part(linker: TitleLinker) -> None:
    assert linked_ids(linker, "have you seen Inception 2?") == []


def test_link_conversation_carries_the_context(linker: TitleLinker) -> None:
    turns = ["I loved Toy Story 3", "Have you seen the first one?", "have you seen The Thing"]
    found = linker.link_conversation(turns)
    names = [[linker.dataset.item_ids[i] for i in f.items] for f in found]
    assert names == [["toy3"], ["toy1"], ["thing82"]]


def test_years_come_from_the_year_attribute_when_titles_have_none() -> None:
    items = [
        Item("a", "Cinderella", {"year": ("1950",)}),
        Item("b", "Cinderella", {"year": ("2015",)}),
    ]
    linker = TitleLinker(Dataset.build("no-years", items, [("u", "a", 5.0, 1)]))
    assert [m.item_id for m in linker.link("cinderella from 2015").mentions] == ["b"]
    assert [m.item_id for m in linker.link("cinderella").mentions] == ["a"]


def test_odd_input_gives_nothing(linker: TitleLinker) -> None:
    for message in ("", "   ", "!!!", "@@@ ###", "a" * 10_000):
        found = linker.link(message)
        assert found.items == [] and isinstance(found.unknown, tuple)


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("inception", "inception", 0), ("incepton", "inception", 1), ("incpetion", "inception", 1),
     ("jurrasic", "jurassic", 2), ("abc", "xyz", 3)],
)  # fmt: skip
def test_edit_distance_counts_a_swap_as_one_edit(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, 3) == distance
