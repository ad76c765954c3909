"""Reading a whole conversation: titles either side named, opinions, what was suggested, the
latest constraint first, moods, content to avoid, people, unknown titles."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agents.conversation import RECOMMENDED_KEY, ChatTurn, ConversationReading, chat_turns
from agents.toolbox import Toolbox, get_toolbox


@pytest.fixture(scope="module")
def box() -> Toolbox:
    return get_toolbox("demo")


def read(box: Toolbox, *turns: tuple[str, str]) -> ConversationReading:
    roles = {"u": "user", "a": "assistant"}
    return box.conversation_reader.read([ChatTurn(roles[r], text) for r, text in turns])  # type: ignore[arg-type]


def test_messages_become_user_and_assistant_turns() -> None:
    messages = [
        SystemMessage("be nice"),
        HumanMessage("I loved Alien"),
        AIMessage("How about Aliens?", additional_kwargs={RECOMMENDED_KEY: ["aliens-1986"]}),
        AIMessage("", tool_calls=[{"name": "search", "args": {}, "id": "1"}]),
        HumanMessage([{"type": "text", "text": "seen it"}]),
    ]
    assert chat_turns(messages) == [
        ChatTurn("user", "I loved Alien"),
        ChatTurn("assistant", "How about Aliens?", ("aliens-1986",)),
        ChatTurn("user", "seen it"),
    ]


def test_titles_either_side_named_are_never_recommended_again(box: Toolbox) -> None:
    reading = read(
        box,
        ("u", "I loved Alien"),
        ("a", "Have you seen Aliens?"),
        ("u", "I haven't seen that one"),
    )
    conversation = reading.conversation
    opinions = {m.item_id: (m.role, m.opinion) for m in conversation.mentions}
    assert opinions == {"alien-1979": ("user", "liked"), "aliens-1986": ("assistant", "neutral")}
    assert conversation.suggested_item_ids == ["aliens-1986"]
    assert set(conversation.excluded_item_ids) == {"alien-1979", "aliens-1986"}
    assert reading.intent.reference_item_ids == ["alien-1979"]


def test_recommended_ids_of_an_assistant_turn_count_as_suggested(box: Toolbox) -> None:
    turns = [
        ChatTurn("user", "a comedy"),
        ChatTurn("assistant", "Here you go.", ("paddington-2014", "notting-hill-1999")),
        ChatTurn("user", "another one"),
    ]
    conversation = box.conversation_reader.read(turns).conversation
    assert conversation.suggested_item_ids == ["paddington-2014", "notting-hill-1999"]


@pytest.mark.parametrize(
    ("reaction", "opinion"),
    [
        ("not that one, I've seen it", "disliked"),
        ("I've seen it", "seen"),
        ("I loved it!", "liked"),
        ("I haven't seen that one", "neutral"),
        ("not a fan", "disliked"),
    ],
)
def test_a_turn_naming_no_title_reacts_to_the_last_suggestion(
    box: Toolbox, reaction: str, opinion: str
) -> None:
    conversation = read(
        box, ("u", "a comedy"), ("a", "My top pick is Paddington (2014)."), ("u", reaction)
    ).conversation
    assert [(m.item_id, m.opinion) for m in conversation.mentions] == [("paddington-2014", opinion)]


def test_a_disliked_title_is_no_reference(box: Toolbox) -> None:
    reading = read(box, ("u", "I didn't like Titanic but I loved Alien"))
    opinions = {m.item_id: m.opinion for m in reading.conversation.mentions}
    assert opinions == {"titanic-1997": "disliked", "alien-1979": "liked"}
    assert reading.intent.reference_item_ids == ["alien-1979"]


def test_the_latest_constraint_comes_first(box: Toolbox) -> None:
    reading = read(
        box,
        ("u", "a scary film"),
        ("a", "How about The Conjuring?"),
        ("u", "something lighter, a comedy"),
    )
    assert reading.intent.wanted == {"genres": ["Comedy"]}
    assert {"Horror", "Thriller", "War"} <= set(reading.intent.unwanted["genres"])
    assert reading.intent.keywords == []  # "lighter" is read as a mood, not searched for
    assert reading.conversation.cues == ["lighter"]
    assert reading.conversation.asked.wanted == {"genres": ["Comedy"]}


def test_older_constraints_hold_until_changed(box: Toolbox) -> None:
    reading = read(box, ("u", "a western"), ("a", "Sure."), ("u", "from the 60s please"))
    assert reading.intent.wanted == {"genres": ["Western"]}
    assert (reading.intent.year_min, reading.intent.year_max) == (1960, 1969)


def test_a_hint_does_not_undo_an_explicit_wish(box: Toolbox) -> None:
    reading = read(box, ("u", "I would like a comedy"), ("u", "Don't like nasty jokes"))
    assert reading.intent.wanted == {"genres": ["Comedy"]}
    undone = read(box, ("u", "I would like a comedy"), ("u", "actually, no comedies"))
    assert "genres" not in undone.intent.wanted
    assert undone.intent.unwanted == {"genres": ["Comedy"]}


def test_scary_but_not_gory(box: Toolbox) -> None:
    reading = read(box, ("u", "I like scary movies but nothing too gory"))
    assert reading.intent.wanted == {"genres": ["Horror"]}
    assert not reading.intent.unwanted
    assert reading.conversation.avoid == ["gore"]


def test_gory_items_are_read_from_the_catalogs_own_words(box: Toolbox) -> None:
    gory = box.conversation_reader.flagged("gore")
    titles = {box.dataset.items[i].item_id for i in np.flatnonzero(gory)}
    assert {"the-evil-dead-1981", "the-thing-1982", "the-texas-chain-saw-massacre-1974"} <= titles
    # "a killer" marks a horror film, not a western or a comedy
    assert not {"high-noon-1952", "some-like-it-hot-1959", "alien-1979"} & titles


def test_people_the_catalog_cannot_search(box: Toolbox) -> None:
    conversation = read(box, ("u", "I didn't like Titanic. Something with Tom Hanks?")).conversation
    assert [(p.name, p.role) for p in conversation.people_not_found] == [("Tom Hanks", "actor")]
    assert not conversation.cast_listed  # the demo catalog lists directors, not cast
    nolan = read(box, ("u", "something by Christopher Nolan"))
    assert nolan.intent.wanted == {"director": ["Christopher Nolan"]}
    assert not nolan.conversation.people_not_found


def test_unknown_titles_are_reported(box: Toolbox) -> None:
    reading = read(box, ("u", "like Super Troopers"))
    assert reading.conversation.unknown_titles == ["Super Troopers"]
    assert reading.intent.keywords == []  # the unknown title is not searched as words


def test_a_reference_with_a_mood(box: Toolbox) -> None:
    reading = read(box, ("u", "something like Inception but funnier"))
    assert reading.intent.reference_item_ids == ["inception-2010"]
    assert reading.intent.wanted == {"genres": ["Comedy"]}


def test_a_conversation_with_nothing_usable_is_vague(box: Toolbox) -> None:
    reading = read(box, ("u", "hi"), ("a", "Hello! How can I help?"), ("u", "how are you"))
    assert reading.conversation.vague
    assert reading.intent.needs_clarification and reading.intent.clarifying_question
    assert not read(box, ("u", "hi"), ("u", "a western")).conversation.vague


def test_turns_are_read_once(box: Toolbox) -> None:
    reader = box.conversation_reader
    turns = [ChatTurn("user", "I loved Alien, something similar please")]
    first = reader.read(turns)
    calls: list[ChatTurn] = []
    original = reader._read_turn

    def counting(turn: ChatTurn, context: tuple[int, ...]) -> object:
        calls.append(turn)
        return original(turn, context)

    reader._read_turn = counting  # type: ignore[assignment,method-assign]
    try:
        again = reader.read([*turns, ChatTurn("assistant", "How about Aliens?")])
    finally:
        del reader._read_turn
    assert calls == [ChatTurn("assistant", "How about Aliens?")]
    assert again.intent.reference_item_ids == first.intent.reference_item_ids
