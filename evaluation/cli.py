"""`agentrec eval`: run recommenders through an evaluation protocol on a dataset."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError, DataError
from evaluation.protocols import DEFAULT_SEED, PROTOCOLS, SPLITS, check_protocol, check_split
from recdata.dataset import Dataset

if TYPE_CHECKING:
    from evaluation.harness import Advance, Tracker

DEFAULT_MODELS = "random,pop,itemknn,ease,default"

_EPILOG = """\
Protocols (interactions ordered by time with a stable sort; dev = second-last interaction):
  macrec  iterative 5-core, leave-one-out, held-out rating >= 4, target + 7 sampled unseen
          items; HR@1,3,5 and NDCG@1,3,5
  full    leave-one-out, rank every item not in the training history; HR@10, NDCG@10,
          Recall@10, MRR
  rate    leave-one-out, predict the held-out rating; RMSE, MAE (models: the rating
          predictors of tools/rating.py: random, mean, pop, itemknn, ease, default)
--split test fits on everything but each user's last interaction and evaluates on it;
--split dev fits on everything but the last two and evaluates on the second-last.
Exit status: 0 on success, 2 on errors (unknown model, format or protocol, bad data path)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `agentrec eval` to the `agentrec` parser."""
    from recdata.loaders import FORMATS

    p = sub.add_parser(
        "eval",
        help="Evaluate recommenders on a dataset with an evaluation protocol.",
        description="Fit and evaluate models on a dataset; print a table of metrics.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, metavar="PATH", help="dataset folder, or 'demo'")
    p.add_argument("--format", metavar="FORMAT", help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--columns", metavar="SPEC", help="interaction columns (csv format only)")
    p.add_argument(
        "--protocol", default="macrec", metavar="NAME", help=f"one of: {', '.join(PROTOCOLS)}"
    )
    p.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        metavar="LIST",
        help=f"comma-separated model names (default: {DEFAULT_MODELS})",
    )
    seed_help = "seed of negative sampling and of random (default: %(default)s)"
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=seed_help)
    p.add_argument("--split", default="test", metavar="SPLIT", help=f"one of: {', '.join(SPLITS)}")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write the results as JSON")
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="write a PNG bar chart")
    p.set_defaults(handler=run)


def load_data(path: str, format: str | None, columns: str | None) -> Dataset:
    """The dataset at `path` in `format`, or the bundled demo dataset for `path == "demo"`."""
    if path == "demo":
        try:
            load_demo = getattr(importlib.import_module("recdata.demo"), "load_demo", None)
        except ImportError:
            load_demo = None
        if load_demo is None:
            raise ConfigError("the demo dataset is not available in this build")
        demo: Dataset = load_demo()
        return demo
    from recdata.loaders import FORMATS, load_dataset

    if format is None:
        raise ConfigError(f"--format is required with --data PATH; one of: {', '.join(FORMATS)}")
    if format not in FORMATS:
        raise ConfigError(f"unknown dataset format {format!r}; formats: {', '.join(FORMATS)}")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DataError(folder, "no such file or folder")
    return load_dataset(folder, format, columns)


@contextmanager
def _progress() -> Iterator[Tracker]:
    """A rich progress bar on stderr (only when it is a terminal) and its tracker."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:

        def track(name: str, total: int) -> Advance:
            task = progress.add_task(f"{name} (fitting)", total=total)
            return lambda n: progress.update(task, advance=n, description=name)

        yield track


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from evaluation.harness import check_models, evaluate
    from evaluation.report import check_output_path, results_table, write_json, write_plot

    protocol = check_protocol(args.protocol)
    split = check_split(args.split)
    models = check_models(protocol, [m.strip() for m in args.models.split(",") if m.strip()])
    for output in (args.json, args.plot):
        if output is not None:
            check_output_path(output)
    dataset = load_data(args.data, args.format, args.columns)
    with _progress() as track:
        report = evaluate(dataset, protocol, models, split, args.seed, tracker=track)
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    console.print(results_table(report))
    if args.json is not None:
        write_json(report, args.json)
    if args.plot is not None:
        write_plot(report, args.plot)
    return 0
