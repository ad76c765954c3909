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
    from evaluation.report import Report

DEFAULT_MODELS = "random,pop,itemknn,ease,default"
REDIAL = "redial"
DEFAULT_CHAT_MODELS = "pop,dialogue-pop,linked-cf,graph"
"""The models of evaluation.redial_models (kept here so that the parser imports nothing heavy)."""

_EPILOG = """\
Protocols (interactions ordered by time with a stable sort; dev = second-last interaction):
  macrec  iterative 5-core, leave-one-out, held-out rating >= 4, target + 7 sampled unseen
          items; HR@1,3,5 and NDCG@1,3,5
  full    leave-one-out, rank every item not in the training history; HR@10, NDCG@10,
          Recall@10, MRR
  rate    leave-one-out, predict the held-out rating; RMSE, MAE (models: the rating
          predictors of tools/rating.py: random, mean, pop, itemknn, ease, default)
  redial  conversational recommendation on ReDial dialogues: --data DIALOGUES.jsonl,
          --train TRAIN.jsonl, --catalog DIR --catalog-format FORMAT; a case per movie a
          recommender message names first, the conversation so far as text (titles without
          years); Recall@1,10,50, NDCG@10 and the coverage of the mention mapping (models:
          pop, dialogue-pop, linked-cf, graph; see evaluation/redial.py)
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
    p.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="dataset folder, or 'demo'; the dialogues (JSONL) for --protocol redial",
    )
    p.add_argument("--format", metavar="FORMAT", help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--columns", metavar="SPEC", help="interaction columns (csv format only)")
    p.add_argument(
        "--protocol",
        default="macrec",
        metavar="NAME",
        help=f"one of: {', '.join((*PROTOCOLS, REDIAL))}",
    )
    p.add_argument(
        "--models",
        metavar="LIST",
        help=f"comma-separated model names (default: {DEFAULT_MODELS}; for redial: "
        f"{DEFAULT_CHAT_MODELS})",
    )
    seed_help = "seed of negative sampling and of random (default: %(default)s)"
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=seed_help)
    p.add_argument("--split", metavar="SPLIT", help=f"one of: {', '.join(SPLITS)} (default: test)")
    p.add_argument("--train", type=Path, metavar="TRAIN.jsonl", help="redial: training dialogues")
    p.add_argument("--catalog", metavar="DIR", help="redial: the catalog folder, or 'demo'")
    p.add_argument("--catalog-format", metavar="FORMAT", help="redial: the catalog's format")
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


def _model_names(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


def _check_outputs(args: argparse.Namespace) -> None:
    from evaluation.report import check_output_path

    for output in (args.json, args.plot):
        if output is not None:
            check_output_path(output)


def run(args: argparse.Namespace) -> int:
    from evaluation.harness import check_models, evaluate

    if args.protocol == REDIAL:
        return run_redial(args)
    protocol = check_protocol(args.protocol, extra=(REDIAL,))
    for option, value in (("--train", args.train), ("--catalog", args.catalog)):
        if value is not None:
            raise ConfigError(f"{option} applies only to --protocol {REDIAL}")
    split = check_split(args.split or "test")
    models = check_models(protocol, _model_names(args.models or DEFAULT_MODELS))
    _check_outputs(args)
    dataset = load_data(args.data, args.format, args.columns)
    with _progress() as track:
        report = evaluate(dataset, protocol, models, split, args.seed, tracker=track)
    return _present(report, args)


def run_redial(args: argparse.Namespace) -> int:
    """`--protocol redial`: dialogues in --data, training dialogues in --train, a catalog."""
    from evaluation.redial import dataset_name, evaluate_redial
    from evaluation.redial_models import check_chat_models
    from recdata.redial import load_dialogues

    for option, value in (("--format", args.format), ("--columns", args.columns)):
        if value is not None:
            raise ConfigError(
                f"{option} does not apply to --protocol {REDIAL} (use --catalog-format)"
            )
    if args.split is not None:
        raise ConfigError(f"--split does not apply to --protocol {REDIAL} (--data is the split)")
    if args.train is None or args.catalog is None:
        raise ConfigError(f"--protocol {REDIAL} needs --train TRAIN.jsonl and --catalog DIR")
    models = check_chat_models(_model_names(args.models or DEFAULT_CHAT_MODELS))
    _check_outputs(args)
    data = Path(args.data).expanduser()
    dialogues = load_dialogues(data)
    train = load_dialogues(args.train)
    catalog = load_data(args.catalog, args.catalog_format, None)
    with _progress() as track:
        report = evaluate_redial(
            dialogues, catalog, train, models, tracker=track, name=dataset_name(data)
        )
    return _present(report, args)


def _present(report: Report, args: argparse.Namespace) -> int:
    from rich.console import Console

    from evaluation.report import results_table, write_json, write_plot

    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    console.print(results_table(report))
    if args.json is not None:
        write_json(report, args.json, command=getattr(args, "command_line", None))
    if args.plot is not None:
        write_plot(report, args.plot)
    return 0
