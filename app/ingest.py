"""`agentrec ingest`: load a dataset into the service's data directory as a catalog, and
index its items into long-term memory (Chroma) with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from core.settings import get_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from recdata.loaders import FORMATS

    p = sub.add_parser(
        "ingest",
        help="Load a dataset folder as a catalog the service can serve.",
        description="Load a dataset (validated line by line), save it as catalog NAME in the "
        "data directory and index its items into long-term memory. Serve it with "
        "AGENTREC_CATALOG=NAME agentrec serve.",
    )
    p.add_argument("path", type=Path, metavar="PATH", help="the dataset folder")
    p.add_argument("--format", required=True, metavar="F", help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--columns", default=None, metavar="C", help="csv format only (see data info)")
    p.add_argument("--name", required=True, help="catalog name (letters, digits, - and _)")
    p.add_argument(
        "--no-index", action="store_true", help="skip indexing into long-term memory (Chroma)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from memory.agent_memory import catalog_collection
    from memory.long_term import LongTermMemory
    from recdata.loaders import load_dataset
    from recdata.store import check_name, save_catalog

    settings = get_settings()
    console = Console()
    name = check_name(args.name)
    with console.status(f"Loading {args.path}..."):
        dataset = load_dataset(args.path, args.format, args.columns)
    folder = save_catalog(dataset, settings.data_dir, name)
    console.print(
        f"Catalog [bold]{name}[/]: {dataset.n_items:,} items, {dataset.n_users:,} users, "
        f"{len(dataset.interactions):,} interactions -> {folder}"
    )
    if not args.no_index:
        with LongTermMemory.from_settings(settings) as memory, Progress(console=console) as bar:
            task = bar.add_task("Indexing items into long-term memory", total=dataset.n_items)
            memory.index_catalog(
                dataset,
                collection=catalog_collection(name),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    console.print(f"Serve it with: AGENTREC_CATALOG={name} agentrec serve")
    return 0
