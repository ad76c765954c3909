"""`agentrec demo`: a streamed agent run on the embedded defaults, in the terminal.

Loads the bundled demo catalog (or any dataset), fits the default model, then runs the agent
graph and prints its trace as it streams (which agent works, its thoughts and actions, the
candidates, the review) and the final recommendations with their explanations.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.context import Context
from agents.state import InputState
from agents.toolbox import Toolbox, get_toolbox, register_toolbox
from core.errors import ConfigError
from recdata.dataset import Dataset

AGENT_STYLES = {
    "Manager": "bold magenta",
    "UserAnalyst": "cyan",
    "Searcher": "green",
    "ItemAnalyst": "yellow",
    "Ranker": "blue",
    "Reflector": "red",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="Stream an agent run for a demo user on the bundled catalog (no LLM, no key).",
    )
    p.add_argument("--user", help="User id (default: the demo's showcase user).")
    p.add_argument("--message", default="", help="A chat message, e.g. 'something funny'.")
    p.add_argument("--count", type=int, default=10, help="How many items (default 10).")
    p.add_argument(
        "--genre", action="append", default=[], help="Only items with this genre (repeatable)."
    )
    p.add_argument("--exclude-genre", action="append", default=[], help="No items with this genre.")
    p.add_argument("--data", help="A dataset folder instead of the bundled demo catalog.")
    p.add_argument("--format", default="movielens-100k", help="Format of --data.")
    p.add_argument("--columns", help="Column names for --format csv.")
    p.set_defaults(handler=run)


def _toolbox(args: argparse.Namespace) -> tuple[str, Toolbox, str]:
    if args.data:
        from recdata.loaders import load_dataset

        box = Toolbox.build(load_dataset(args.data, args.format, args.columns))
        register_toolbox("cli", box)
        return "cli", box, args.user or box.dataset.user_ids[0]
    from recdata.demo import DEMO_USER_ID

    return "demo", get_toolbox("demo"), args.user or DEMO_USER_ID


def _check_genres(ds: Dataset, genres: Sequence[str]) -> None:
    known = {g.lower() for g in ds.attribute_values("genres")}
    unknown = sorted({g.lower() for g in genres} - known)
    if unknown:
        raise ConfigError(
            f"unknown genre(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _print_event(console: Console, box: Toolbox, event: dict[str, Any]) -> None:
    agent = str(event.get("agent", ""))
    tag = f"[{AGENT_STYLES.get(agent, 'white')}]{agent:>11}[/]"
    kind = event["type"]
    if kind == "agent_started":
        console.print(f"{tag} ▶ working")
    elif kind == "thought":
        console.print(f"{tag}   [italic]{event['text']}[/]")
    elif kind == "action":
        args = ", ".join(f"{k}={v}" for k, v in dict(event.get("args", {})).items())
        console.print(f"{tag}   → {event['tool']}({args})")
    elif kind == "observation":
        console.print(f"{tag}   ← {event['text']}")
    elif kind == "candidates":
        titles = [
            box.dataset.items[box.dataset.item_index[c["item_id"]]].title
            for c in event["items"][:5]
        ]
        console.print(f"{tag}   {event['total']} candidates, top: {'; '.join(titles)}")
    elif kind == "reflection":
        verdict = "accepted" if event["accept"] else f"rejected: {event['problems']}"
        console.print(f"{tag}   review {verdict}")


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= 50:
        raise ConfigError("--count must be between 1 and 50")
    console = Console()
    started = time.perf_counter()
    with console.status("Loading the catalog and training the default model..."):
        catalog, box, user_id = _toolbox(args)
    ds = box.dataset
    _check_genres(ds, [*args.genre, *args.exclude_genre])
    known = user_id in ds.user_index
    persona = ds.users[ds.user_index[user_id]].attributes.get("persona") if known else None
    console.rule(f"[bold]agentrec demo[/] · {ds.name} · {ds.n_items:,} items")
    console.print(
        f"User [bold]{user_id}[/]"
        + (f" ({persona})" if persona else "")
        + ("" if known else " (new user)")
        + f"; ready in {time.perf_counter() - started:.1f}s"
        + (f'; says: "{args.message}"' if args.message else "")
    )
    filters: dict[str, Any] = {}
    if args.genre:
        filters["include"] = {"genres": list(args.genre)}
    if args.exclude_genre:
        filters["exclude"] = {"genres": list(args.exclude_genre)}
    payload = InputState(
        task="chat" if args.message else "recommend",
        user_id=user_id,
        message=args.message,
        count=args.count,
        filters=filters,
    )
    from graphs.recommend import graph

    final: dict[str, Any] = {}
    run_started = time.perf_counter()
    for mode, part in graph.stream(
        payload, context=Context(catalog=catalog), stream_mode=["custom", "values"]
    ):
        assert isinstance(part, dict)
        if mode == "custom":
            _print_event(console, box, part)
        else:
            final = part
    elapsed_ms = (time.perf_counter() - run_started) * 1000
    if final.get("reply"):
        console.print(f"\n[bold]agentrec:[/] {final['reply']}")
    items = final.get("recommendations", [])
    if not items:
        return 0
    table = Table(title=f"Top {len(items)} for {user_id} (agent run {elapsed_ms:.0f} ms)")
    table.add_column("#", justify="right")
    table.add_column("title", style="bold")
    table.add_column("genres")
    table.add_column("why")
    for rank, item in enumerate(items, 1):
        it = ds.items[ds.item_index[item.item_id]]
        genres = ", ".join(it.attributes.get("genres", ()))
        table.add_row(str(rank), it.title, genres, item.explanation)
    console.print(table)
    return 0
