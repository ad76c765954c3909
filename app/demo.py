"""`agentrec demo`: recommendations for a demo user on the embedded defaults.

Loads the bundled demo catalog (or any dataset), fits the default model, and prints the
user's recent history and the top recommendations with the history items that drove each.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from core.errors import ConfigError
from recdata.dataset import Dataset
from tools.base import History, Recommender, TrainSet
from tools.candidates import CandidateFilters, generate_candidates


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="Recommend for a demo user on the bundled demo catalog (no LLM, no key needed).",
    )
    p.add_argument("--user", help="User id (default: the demo's showcase user).")
    p.add_argument("--count", type=int, default=10, help="How many items (default 10).")
    p.add_argument("--model", default="default", help="Model name (default: default).")
    p.add_argument(
        "--genre", action="append", default=[], help="Only items with this genre (repeatable)."
    )
    p.add_argument("--exclude-genre", action="append", default=[], help="No items with this genre.")
    p.add_argument("--data", help="A dataset folder instead of the bundled demo catalog.")
    p.add_argument("--format", default="movielens-100k", help="Format of --data.")
    p.add_argument("--columns", help="Column names for --format csv.")
    p.set_defaults(handler=run)


def _load(args: argparse.Namespace) -> tuple[Dataset, str]:
    if args.data:
        from recdata.loaders import load_dataset

        ds = load_dataset(args.data, args.format, args.columns)
        default_user = ds.user_ids[0]
    else:
        from recdata.demo import DEMO_USER_ID, load_demo

        ds = load_demo()
        default_user = DEMO_USER_ID
    return ds, args.user or default_user


def _check_genres(ds: Dataset, genres: Sequence[str]) -> None:
    known = {g.lower() for g in ds.attribute_values("genres")}
    unknown = sorted({g.lower() for g in genres} - known)
    if unknown:
        raise ConfigError(
            f"unknown genre(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _because(model: Recommender, ds: Dataset, history: History, item: int) -> str:
    explain = getattr(model, "explain", None)
    if explain is None:
        return ""
    drivers = explain(history, item)
    titles: list[str] = []
    for source, *_ in drivers:
        title = ds.items[int(source)].title
        if title not in titles:
            titles.append(title)
        if len(titles) == 2:
            break
    return "because you watched " + " and ".join(titles) if titles else "popular right now"


@dataclass(frozen=True)
class DemoPick:
    item: int
    score: float
    why: str


def recommend_for(
    ds: Dataset,
    model: Recommender,
    history: History,
    count: int,
    include_genres: Sequence[str] = (),
    exclude_genres: Sequence[str] = (),
) -> list[DemoPick]:
    """The top `count` unseen items for `history` that pass the genre filters."""
    filters = CandidateFilters(
        include={"genres": list(include_genres)} if include_genres else {},
        exclude={"genres": list(exclude_genres)} if exclude_genres else {},
    )
    scores = model.score([history])[0]
    return [
        DemoPick(c.item_index, c.score, _because(model, ds, history, c.item_index))
        for c in generate_candidates(scores, ds, history, filters, count)
    ]


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= 100:
        raise ConfigError("--count must be between 1 and 100")
    console = Console()
    with console.status("Loading the catalog..."):
        ds, user_id = _load(args)
    if user_id not in ds.user_index:
        raise ConfigError(f"unknown user {user_id!r} in dataset {ds.name!r}")
    _check_genres(ds, [*args.genre, *args.exclude_genre])
    from tools import registry

    train = TrainSet.from_interactions(ds.interactions, ds.n_users, ds.n_items)
    model = registry.create(args.model)
    started = time.perf_counter()
    with console.status(f"Training the {args.model} model on {len(ds.interactions):,} events..."):
        model.fit(train)
    fit_seconds = time.perf_counter() - started

    user = ds.user_index[user_id]
    history = train.history(user)
    persona = ds.users[user].attributes.get("persona")
    console.rule(f"[bold]agentrec demo[/] · {ds.name} · {ds.n_items:,} items")
    console.print(
        f"User [bold]{user_id}[/]" + (f" ({persona})" if persona else "") + f": "
        f"{len(history)} items in the history; model [bold]{args.model}[/] "
        f"trained in {fit_seconds:.2f}s"
    )
    recent = Table(title="Most recent", show_edge=False)
    recent.add_column("title")
    recent.add_column("genres")
    recent.add_column("rating", justify="right")
    for pos in range(len(history) - 1, max(len(history) - 6, -1), -1):
        item = ds.items[int(history.items[pos])]
        rating = "" if history.ratings is None else f"{history.ratings[pos]:g}"
        recent.add_row(item.title, ", ".join(item.attributes.get("genres", ())), rating)
    console.print(recent)

    started = time.perf_counter()
    picks = recommend_for(ds, model, history, args.count, args.genre, args.exclude_genre)
    query_ms = (time.perf_counter() - started) * 1000
    table = Table(title=f"Top {len(picks)} for {user_id} ({query_ms:.1f} ms)")
    table.add_column("#", justify="right")
    table.add_column("title", style="bold")
    table.add_column("genres")
    table.add_column("score", justify="right")
    table.add_column("why")
    for rank, pick in enumerate(picks, 1):
        it = ds.items[pick.item]
        genres = ", ".join(it.attributes.get("genres", ()))
        table.add_row(str(rank), it.title, genres, f"{pick.score:.3f}", pick.why)
    console.print(table)
    return 0
