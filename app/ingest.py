"""`agentrec ingest`: load a dataset into the service's data directory as a catalog, and
index its items into long-term memory (Chroma) with a progress bar.

With `--dialogues FILE`, logged conversations about the catalog's items are ingested with
it: a ReDial-format JSONL file (one dialogue per line: `conversationId`,
`initiatorWorkerId`, `respondentWorkerId`, `messages` with `messageId`, `text` and
`senderWorkerId`, and `movieMentions` {movie id: "Title (Year)"}, movies written `@id` in
the text; see `recdata.redial`). Each mention is mapped to a catalog item by title and year,
the command prints how many mapped, and the counts of mentions and co-mentions
(`tools.dialogue_stats.DialogueStats`) are saved beside the catalog: the service's chats
then suggest what people suggested alongside the titles a conversation names.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress

from core.settings import get_settings

if TYPE_CHECKING:
    from tools.dialogue_stats import MentionCoverage

DIALOGUES_HELP = (
    "ReDial-format dialogues (JSONL, one dialogue per line with movieMentions) to learn "
    "mentions and co-mentions from; their titles are mapped to the catalog"
)


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
    p.add_argument("--dialogues", type=Path, default=None, metavar="FILE", help=DIALOGUES_HELP)
    p.add_argument(
        "--no-index", action="store_true", help="skip indexing into long-term memory (Chroma)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from app.agent_memory import catalog_collection
    from memory.long_term import LongTermMemory
    from recdata.loaders import load_dataset
    from recdata.store import check_name, save_catalog
    from tools.dialogue_stats import fit_dialogue_file

    settings = get_settings()
    console = Console()
    name = check_name(args.name)
    with console.status(f"Loading {args.path}..."):
        dataset = load_dataset(args.path, args.format, args.columns)
    dialogue_arrays = None
    if args.dialogues is not None:
        with console.status(f"Mapping the dialogues of {args.dialogues} to the catalog..."):
            stats, coverage = fit_dialogue_file(args.dialogues, dataset)
        dialogue_arrays = stats.to_catalog_arrays(dataset.item_ids)
    folder = save_catalog(dataset, settings.data_dir, name, dialogues=dialogue_arrays)
    console.print(
        f"Catalog [bold]{name}[/]: {dataset.n_items:,} items, {dataset.n_users:,} users, "
        f"{len(dataset.interactions):,} interactions -> {folder}"
    )
    if args.dialogues is not None:
        console.print(coverage_line(coverage), soft_wrap=True)
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


def coverage_line(coverage: MentionCoverage) -> str:
    """What `--dialogues` gave, in one line."""
    return (
        f"Dialogues: {coverage.dialogues:,}; {coverage.mapped:,} of {coverage.mentions:,} "
        f"movie mentions mapped to the catalog ({coverage.coverage:.1%} coverage), "
        f"{coverage.items:,} items mentioned"
    )
