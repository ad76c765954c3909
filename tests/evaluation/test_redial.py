"""The redial protocol: mention mapping, case construction, metrics, models and the CLI."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

from app.cli import main
from evaluation.cli import DEFAULT_CHAT_MODELS
from evaluation.graph_model import conversation_messages
from evaluation.redial import REDIAL, evaluate_redial, redial_cases
from evaluation.redial_models import (
    CHAT_MODELS,
    ChatModel,
    ChatTraining,
    GraphChat,
    LinkedCF,
)
from recdata.dataset import Dataset
from recdata.demo import load_demo
from recdata.loaders import load_dataset
from recdata.redial import Dialogue, MentionMapper, Turn, load_dialogues, render_text
from tools import registry
from tools.base import History, top_k

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

MOVIES = [
    (1, "Matrix, The (1999)", "Action|Sci-Fi"),
    (2, "Seven (a.k.a. Se7en) (1995)", "Thriller"),
    (3, "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)", "Action"),
    (4, "Spider-Man (2002)", "Action"),
    (5, "Thing, The (1982)", "Horror"),
    (6, "Thing, The (2011)", "Horror"),
    (7, "Cosmos", "Documentary"),
    (8, "Toy Story (1995)", "Animation"),
    (9, "Inception (2010)", "Sci-Fi"),
    (10, "WALL·E (2008)", "Animation"),
]
RATERS = {1: 6, 9: 5, 8: 4, 5: 3, 2: 2}  # distinct users per movie; the others have one
LEON = "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)"


def write_catalog(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["movieId,title,genres"]
    rows += [f'{m},"{t}",{g}' for m, t, g in MOVIES]
    (folder / "movies.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ratings = ["userId,movieId,rating,timestamp"]
    for movie, _, _ in MOVIES:
        for user in range(RATERS.get(movie, 1)):
            ratings.append(f"{user},{movie},4.0,{1000 + movie}")
    (folder / "ratings.csv").write_text("\n".join(ratings) + "\n", encoding="utf-8")
    return folder


def dialogue(
    conversation: str, mentions: dict[str, str], messages: list[tuple[str, str]]
) -> dict[str, Any]:
    """A ReDial record; messages are (sender: "seeker" or "recommender", text)."""
    workers = {"seeker": 10, "recommender": 20}
    return {
        "conversationId": conversation,
        "initiatorWorkerId": 10,
        "respondentWorkerId": 20,
        "movieMentions": mentions,
        "messages": [
            {"messageId": n, "text": text, "senderWorkerId": workers[who], "timeOffset": n}
            for n, (who, text) in enumerate(messages)
        ],
        "initiatorQuestions": {m: {"suggested": 0, "seen": 1, "liked": 1} for m in mentions},
        "respondentQuestions": [],
    }


VALID = [
    dialogue(
        "c1",
        {
            "111": "The Matrix (1999)",
            "222": "Inception  (2010)",
            "333": "Super Troopers (2001)",
            "444": "Toy Story (1995)",
        },
        [
            ("seeker", "Hi! I loved @111 &amp; want something like it"),
            ("recommender", "Have you seen @111 ?"),  # a repeat: no case
            ("recommender", "How about @222 or @333?"),  # @333 maps to nothing
            ("seeker", "Seen @222, loved it. Something from 1995?"),
            ("recommender", "@222 again, or @444"),
        ],
    )
]
TRAIN = [
    dialogue("t1", {"1": "Toy Story (1995)", "2": "Inception (2010)"}, [("seeker", "@1 @2")]),
    dialogue("t2", {"1": "Toy Story (1995)"}, [("recommender", "try @1")]),
]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("redial")
    return {
        "catalog": write_catalog(root / "catalog"),
        "valid": write_jsonl(root / "valid.jsonl", VALID),
        "train": write_jsonl(root / "train.jsonl", TRAIN),
    }


@pytest.fixture(scope="module")
def catalog(files: dict[str, Path]) -> Dataset:
    return load_dataset(files["catalog"], "movielens-csv")


def title_of(catalog: Dataset, index: int | None) -> str | None:
    return None if index is None else catalog.items[index].title


# ---- mention mapping ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mention", "expected"),
    [
        ("the matrix (1999)", "Matrix, The (1999)"),  # case
        ("Leon: The Professional (1994)", LEON),  # accents
        ("Spider Man (2002)", "Spider-Man (2002)"),  # punctuation
        ("WALL-E (2008)", "WALL·E (2008)"),
        ("The   Matrix  (1999)", "Matrix, The (1999)"),  # spacing
        ("The Matrix (1999)", "Matrix, The (1999)"),  # the catalog's trailing article
        ("Matrix (1999)", "Matrix, The (1999)"),  # no article at all
        ("Se7en (1995)", "Seven (a.k.a. Se7en) (1995)"),  # an alternate title in parentheses
        ("The Professional (1994)", LEON),
        ("The Matrix", "Matrix, The (1999)"),  # no year: the title decides
        ("Cosmos  (2015)", "Cosmos"),  # no year in the catalog: the title decides
        ("The Matrix (2003)", None),  # the years disagree
        ("The Thing (2011)", "Thing, The (2011)"),  # duplicates: the year decides ...
        ("The Thing", "Thing, The (1982)"),  # ... else the most rated
        ("Super Troopers (2001)", None),
        ("", None),
    ],
)
def test_mentions_map_by_normalised_title_and_year(
    catalog: Dataset, mention: str, expected: str | None
) -> None:
    assert title_of(catalog, MentionMapper(catalog).map(mention)) == expected


def test_mapping_coverage(catalog: Dataset, files: dict[str, Path]) -> None:
    mapper = MentionMapper(catalog)
    assert mapper.coverage(load_dialogues(files["valid"])) == pytest.approx(3 / 4)


# ---- cases -------------------------------------------------------------------------------


def test_render_text_unescapes_and_writes_titles_without_years() -> None:
    mentions = {"1": "The Matrix (1999)", "2": "Cosmos  (2015)", "3": ""}
    text = "I &quot;loved&quot; @1, @2 &amp; @3 and @9."
    assert render_text(text, mentions) == 'I "loved" The Matrix, Cosmos & and .'


def test_cases_are_new_movies_named_by_the_recommender(
    catalog: Dataset, files: dict[str, Path]
) -> None:
    cases = redial_cases(load_dialogues(files["valid"]), MentionMapper(catalog))
    targets = [[catalog.items[t].title for t in r.targets] for r in cases.requests]
    # the seeker's @111 and its repeat are no cases; @333 maps to nothing; @222 again is none
    assert targets == [["Inception (2010)"], ["Toy Story (1995)"]]
    assert (cases.targets, cases.unmapped, cases.test_cases) == (3, 1, 2)
    assert cases.coverage == pytest.approx(2 / 3)


def test_a_case_reads_the_conversation_so_far_with_roles_and_titles(
    catalog: Dataset, files: dict[str, Path]
) -> None:
    first, second = redial_cases(load_dialogues(files["valid"]), MentionMapper(catalog)).requests
    assert first.turns == (
        Turn("user", "Hi! I loved The Matrix & want something like it"),
        Turn("assistant", "Have you seen The Matrix ?"),
    )
    assert len(second.turns) == 4
    assert second.turns[-1] == Turn("user", "Seen Inception, loved it. Something from 1995?")
    for turn in (*first.turns, *second.turns):
        assert "@" not in turn.text and not re.search(r"\(\d{4}\)|1999|2010", turn.text)


# ---- metrics -----------------------------------------------------------------------------


def test_metrics_of_the_popularity_baselines(catalog: Dataset, files: dict[str, Path]) -> None:
    report = evaluate_redial(
        load_dialogues(files["valid"]),
        catalog,
        load_dialogues(files["train"]),
        ["pop", "dialogue-pop"],
    )
    results = {r.name: r.metrics for r in report.results}
    # pop ranks Matrix, Inception, Toy Story...: the targets sit at ranks 1 and 2
    assert results["pop"] == pytest.approx(
        {"Recall@1": 0.0, "Recall@10": 1.0, "Recall@50": 1.0,
         "NDCG@10": (1 / math.log2(3) + 1 / math.log2(4)) / 2}
    )  # fmt: skip
    # dialogue-pop: Toy Story (2 training dialogues), Inception (1), then catalog popularity
    assert results["dialogue-pop"] == pytest.approx(
        {"Recall@1": 0.5, "Recall@10": 1.0, "Recall@50": 1.0, "NDCG@10": (1 / math.log2(3) + 1) / 2}
    )
    body = report.to_json()
    assert body["protocol"] == REDIAL
    assert body["dataset"]["test_cases"] == 2 and body["dataset"]["coverage"] == 0.6667
    assert set(body["seconds"]) == {"pop", "dialogue-pop"}


class Probe(ChatModel):
    """Records what it is given; answers a fixed list (Inception past the top 10)."""

    name = "probe"
    seen: ClassVar[list[list[Turn]]] = []

    def fit(self, training: ChatTraining) -> Self:
        return self

    def recommend(self, turns: Sequence[Turn], count: int) -> list[str]:
        Probe.seen.append(list(turns))
        assert count == 50
        return [str(m) for m in (1, 2, 3, 4, 5, 6, 7, 10, 2, 3, 9)]


def test_a_model_gets_turns_and_is_scored_on_its_list(
    catalog: Dataset, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CHAT_MODELS, "probe", Probe)
    Probe.seen = []
    report = evaluate_redial(load_dialogues(files["valid"]), catalog, [], ["probe"])
    assert [len(turns) for turns in Probe.seen] == [2, 4]
    assert all(isinstance(t, Turn) and t.role in ("user", "assistant") for t in Probe.seen[0])
    # Inception at 0-based rank 10 (repeats take their places); Toy Story not listed
    assert report.results[0].metrics == pytest.approx(
        {"Recall@1": 0.0, "Recall@10": 0.0, "Recall@50": 0.5, "NDCG@10": 0.0}
    )


def test_a_model_that_answers_unknown_items_is_an_error(
    catalog: Dataset, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Ungrounded(Probe):
        def recommend(self, turns: Sequence[Turn], count: int) -> list[str]:
            return ["no-such-movie"]

    monkeypatch.setitem(CHAT_MODELS, "ungrounded", Ungrounded)
    with pytest.raises(ValueError, match="not in the catalog"):
        evaluate_redial(load_dialogues(files["valid"]), catalog, [], ["ungrounded"])


# ---- models on the demo catalog ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_training() -> ChatTraining:
    demo = load_demo()
    training = ChatTraining(demo)
    training.default = registry.create("itemknn").fit(training.ratings)  # fast stand-in
    return training


def test_linked_cf_scores_the_linked_titles_as_a_history(demo_training: ChatTraining) -> None:
    demo = demo_training.catalog
    model = LinkedCF().fit(demo_training)
    answer = model.recommend([Turn("user", "I loved Alien"), Turn("assistant", "Hi")], 50)
    alien = demo.item_index["alien-1979"]
    history = History.of([alien])
    assert demo_training.default is not None
    scores = demo_training.default.score([history])[0]
    assert answer == [demo.item_ids[i] for i in top_k(scores, 50, history.items)]
    assert "alien-1979" not in answer


def test_graph_chat_reads_the_conversation_and_does_not_repeat_it(
    demo_training: ChatTraining,
) -> None:
    model = GraphChat().fit(demo_training)
    try:
        answer = model.recommend(
            [Turn("user", "I loved Alien and The Matrix"), Turn("assistant", "Nice!")], 50
        )
    finally:
        model.close()
    assert 0 < len(answer) <= 50
    assert all(i in demo_training.catalog.item_index for i in answer)
    assert "alien-1979" not in answer


def test_the_conversation_as_messages() -> None:
    turns = [("user", "I liked  Alien"), ("assistant", "Have you seen Aliens?"), ("user", "")]
    messages = conversation_messages(turns)
    assert [(m.type, m.text) for m in messages] == [
        ("human", "I liked  Alien"),
        ("ai", "Have you seen Aliens?"),
    ]


# ---- the command line --------------------------------------------------------------------


def test_eval_redial_writes_table_json_and_plot(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_png = tmp_path / "redial.json", tmp_path / "redial.png"
    argv = ["eval", "--protocol", "redial", "--data", str(files["valid"])]
    argv += ["--train", str(files["train"]), "--catalog", str(files["catalog"])]
    argv += ["--catalog-format", "movielens-csv", "--models", "pop,dialogue-pop"]
    argv += ["--json", str(out_json), "--plot", str(out_png)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    for text in ("redial", "pop", "dialogue-pop", "Recall@10", "coverage 0.667"):
        assert text in out
    body = json.loads(out_json.read_text())
    assert body["protocol"] == "redial"
    assert body["dataset"]["test_cases"] == 2 and body["dataset"]["coverage"] == 0.6667
    assert list(body["results"]) == ["pop", "dialogue-pop"]
    assert list(body["results"]["pop"]) == ["Recall@1", "Recall@10", "Recall@50", "NDCG@10"]
    assert set(body["seconds"]) == {"pop", "dialogue-pop"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models", "pop,ease"], "unknown model 'ease' for the redial protocol"),
        (["--format", "csv"], "--format does not apply to --protocol redial"),
        (["--split", "dev"], "--split does not apply"),
    ],
)
def test_redial_user_errors_are_one_line_with_status_2(
    files: dict[str, Path], extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "--protocol", "redial", "--data", str(files["valid"])]
    argv += ["--train", str(files["train"]), "--catalog", str(files["catalog"])]
    argv += ["--catalog-format", "movielens-csv", *extra]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_redial_needs_its_training_dialogues_and_catalog(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["eval", "--protocol", "redial", "--data", str(files["valid"])])
    assert code == 2 and "needs --train" in capsys.readouterr().err
    code = main(["eval", "--data", str(files["catalog"]), "--train", str(files["train"])])
    assert code == 2 and "--train applies only to --protocol redial" in capsys.readouterr().err


def test_bad_dialogue_lines_name_the_file_and_line(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(VALID[0]) + "\n{not json\n", encoding="utf-8")
    argv = ["eval", "--protocol", "redial", "--data", str(bad), "--train", str(files["train"])]
    code = main([*argv, "--catalog", str(files["catalog"]), "--catalog-format", "movielens-csv"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl, line 2: not JSON" in err


def test_the_cli_default_models_are_the_redial_models() -> None:
    assert DEFAULT_CHAT_MODELS.split(",") == list(CHAT_MODELS)


# ---- the real data -----------------------------------------------------------------------


def test_redial_on_ten_real_validation_dialogues() -> None:
    valid = SHARED / "redial" / "valid_data.jsonl"
    train = SHARED / "redial" / "train_data.jsonl"
    movies = SHARED / "ml-latest-small"
    if not (valid.exists() and train.exists() and (movies / "movies.csv").exists()):
        pytest.skip(f"ReDial or ml-latest-small is not in {SHARED}")
    catalog = load_dataset(movies, "movielens-csv")
    dialogues: list[Dialogue] = load_dialogues(valid)[:10]
    report = evaluate_redial(dialogues, catalog, load_dialogues(train), ["pop", "dialogue-pop"])
    body = report.to_json()
    assert set(body) >= {"protocol", "dataset", "results", "seconds"}
    assert body["dataset"]["dialogues"] == 10 and body["dataset"]["test_cases"] > 0
    assert body["dataset"]["coverage"] > 0.5
    for metrics in body["results"].values():
        assert list(metrics) == ["Recall@1", "Recall@10", "Recall@50", "NDCG@10"]
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
