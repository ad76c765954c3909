"""Tags as attribute cues in a chat: a catalog loaded with MovieLens `tags.csv` is searched
by the tag phrases a conversation uses ("a twist ending", "a dark comedy", "time travel"),
as preferences, and a negated one rules its items out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.context import Context
from agents.conversation import ChatTurn, ConversationReader
from agents.toolbox import Toolbox, register_toolbox, unregister_toolbox
from graphs.recommend import build_graph
from recdata.loaders import load_dataset
from recdata.titles import fold
from tools import registry
from tools.base import TrainSet
from tools.titles import TitleLinker

ML_LATEST_SMALL = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-latest-small"

MOVIES = {
    "1": ("Harbour Lights (2001)", "Drama|Mystery"),
    "2": ("The Long Con (2004)", "Crime|Mystery"),
    "3": ("Quiet Street (1999)", "Drama|Mystery"),
    "4": ("Funeral Party (2007)", "Comedy"),
    "5": ("Sunny Picnic (2003)", "Comedy"),
    "6": ("Office Hours (2010)", "Comedy"),
    "7": ("Clockwork Summer (1996)", "Sci-Fi|Comedy"),
    "8": ("Star Freight (2012)", "Sci-Fi"),
}
RATINGS = {"1": 3, "2": 8, "3": 7, "4": 2, "5": 8, "6": 7, "7": 2, "8": 8}
"""The tagged films are the least rated: only their tags can put them first."""
TAGS = [
    ("1", "twist ending"), ("1", "Twist Ending"), ("1", "atmospheric"),
    ("4", "dark comedy"), ("4", "funeral"),
    ("7", "time travel"), ("7", "quirky"),
    ("2", "heist"),
]  # fmt: skip


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toolbox]:
    """A MovieLens-CSV catalog with a tags.csv, registered as the run catalog 'tagged'."""
    folder = tmp_path_factory.mktemp("tagged")
    movies = "".join(f'{i},"{title}",{genres}\n' for i, (title, genres) in MOVIES.items())
    (folder / "movies.csv").write_text("movieId,title,genres\n" + movies, encoding="utf-8")
    rows = [f"{u},{m},4.0,{100 * u}\n" for m, n in RATINGS.items() for u in range(1, n + 1)]
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "".join(rows), encoding="utf-8"
    )
    tags = "".join(f"9,{m},{tag},1000\n" for m, tag in TAGS)
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n" + tags, encoding="utf-8")
    box = Toolbox.build(load_dataset(folder, "movielens-csv")).prepare()
    register_toolbox("tagged", box)
    yield box
    unregister_toolbox("tagged")


def read(box: Toolbox, *texts: str) -> Any:
    return box.conversation_reader.read([ChatTurn("user", text) for text in texts])


def chat(text: str, catalog: str = "tagged", count: int = 3) -> dict[str, Any]:
    app: Any = build_graph().compile()  # runs take dicts, as LangGraph Studio sends them
    out: dict[str, Any] = app.invoke(
        {"task": "chat", "message": text, "count": count}, context=Context(catalog=catalog)
    )
    return out


def ids(out: dict[str, Any]) -> list[str]:
    return [item.item_id for item in out["recommendations"]]


def test_the_loader_keeps_the_tags_of_tags_csv(tagged: Toolbox) -> None:
    ds = tagged.dataset
    assert ds.items[ds.item_index["1"]].attributes["tags"] == ("twist ending", "atmospheric")
    assert "time travel" in ds.items[ds.item_index["7"]].text


def test_tag_phrases_are_preferences_even_inside_a_genre_phrase(tagged: Toolbox) -> None:
    twist = read(tagged, "something with a twist ending")
    assert twist.conversation.preferred == {"tags": ["twist ending"]}
    assert not twist.conversation.vague and twist.intent.wanted == {}
    dark = read(tagged, "I'd like a dark comedy")
    assert dark.intent.wanted == {"genres": ["Comedy"]}  # still a comedy
    assert dark.conversation.preferred == {"tags": ["dark comedy"]}
    travel = read(tagged, "a film about time travel")
    assert travel.conversation.preferred == {"tags": ["time travel"]}
    # the latest wish wins; a negated tag rules its items out
    later = read(tagged, "a dark comedy", "hmm, rather something with a twist ending")
    assert later.conversation.preferred == {"tags": ["twist ending"]}
    nothing = read(tagged, "a mystery, nothing with a twist ending")
    assert nothing.intent.unwanted.get("tags") == ["twist ending"]
    assert "tags" not in nothing.conversation.preferred
    comma = read(tagged, "not too long, with a twist ending")
    assert comma.conversation.preferred == {"tags": ["twist ending"]}


def test_a_chat_turn_puts_the_tagged_titles_first(tagged: Toolbox) -> None:
    twist = chat("something with a twist ending")
    assert ids(twist)[0] == "1"
    assert 'people tagged it "twist ending"' in twist["reply"]
    dark = chat("I'd like a dark comedy")
    assert ids(dark)[0] == "4"
    ds = tagged.dataset
    assert all("Comedy" in ds.items[ds.item_index[i]].attributes["genres"] for i in ids(dark))
    assert ids(chat("a film about time travel"))[0] == "7"
    assert "1" not in ids(chat("a mystery, nothing with a twist ending"))


@pytest.mark.skipif(
    not (ML_LATEST_SMALL / "tags.csv").is_file(),
    reason="needs ../shared/data/ml-latest-small (MovieLens is not in the repo)",
)
def test_tag_cues_on_ml_latest_small() -> None:
    """On MovieLens "latest small" (1,589 distinct tags), with the popularity model standing
    in for the default one (the tags, not the model, are under test)."""
    ds = load_dataset(ML_LATEST_SMALL, "movielens-csv")
    train = TrainSet.from_interactions(ds.interactions, ds.n_users, ds.n_items)
    box = Toolbox.build(ds, model=registry.create("pop").fit(train), train=train)
    reader = ConversationReader(ds, TitleLinker(ds, popularity=box.catalog.popularity))
    dark = reader.read([ChatTurn("user", "I'm in the mood for a dark comedy")])
    assert dark.intent.wanted == {"genres": ["Comedy"]}
    assert "dark comedy" in dark.conversation.preferred["tags"]
    register_toolbox("mls-tags", box)
    try:
        for text, tag in [
            ("I'm in the mood for a dark comedy", "dark comedy"),
            ("something with a twist ending", "twist ending"),
            ("a film about time travel", "time travel"),
        ]:
            out = chat(text, catalog="mls-tags", count=10)
            found = [
                {fold(t) for t in ds.items[ds.item_index[i]].attributes.get("tags", ())}
                for i in ids(out)
            ]
            assert len(found) == 10 and all(tag in tags for tags in found), (text, found)
            assert 'people tagged it "' in out["reply"]
    finally:
        unregister_toolbox("mls-tags")
