"""`agentrec data download` and `agentrec data info`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

_DOWNLOAD_EPILOG = """\
Source: --url, else the environment variable %(env)s,
else the published GroupLens URL.
Checksum: by default the published digest is checked whatever the source, so a mirror
must serve identical bytes; --checksum ALGORITHM:HEX (md5, sha1, sha256, sha512) checks
another digest (for a mirror with other bytes); --checksum none skips the check (trusted
sources only).
The download streams to a .part file, is verified, extracted safely and moved into
DATA_DIR/<folder> in one step; a failed download leaves nothing behind. A second call
reports "already present" unless --force is given.
Exit status: 0 on success or when already present, 2 on errors."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's sub-commands to the `agentrec` parser."""
    from recdata.download import KNOWN_DATASETS
    from recdata.loaders import FORMATS

    data = sub.add_parser("data", help="Download and inspect datasets.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    names = "\n".join(f"  {n}: {d.description}" for n, d in KNOWN_DATASETS.items())
    envs = ", ".join(d.url_env for d in KNOWN_DATASETS.values())
    download = data_sub.add_parser(
        "download",
        help="Download a public dataset into the data directory.",
        description=f"Download, verify and extract a dataset. Known datasets:\n{names}",
        epilog=_DOWNLOAD_EPILOG % {"env": envs},
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download.add_argument("name", metavar="NAME", help=f"one of: {', '.join(KNOWN_DATASETS)}")
    download.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where datasets live (default: AGENTREC_DATA_DIR or ~/.local/share/agentrec)",
    )
    download.add_argument("--url", default=None, help="download from this URL instead")
    download.add_argument(
        "--checksum",
        default="default",
        metavar="SPEC",
        help="'default' (the published digest), 'none', or ALGORITHM:HEX",
    )
    download.add_argument(
        "--force", action="store_true", help="download again and replace an existing copy"
    )
    download.set_defaults(handler=run_download)

    info = data_sub.add_parser(
        "info",
        help="Load a dataset folder and print its size and ranges.",
        description="Load a dataset folder and print users, items, interactions, "
        "and the rating and time ranges.",
    )
    info.add_argument("path", type=Path, metavar="PATH", help="the dataset folder")
    info.add_argument("--format", required=True, metavar="F", help=f"one of: {', '.join(FORMATS)}")
    info.add_argument(
        "--columns",
        default=None,
        metavar="C",
        help="csv format only: user,item[,rating[,timestamp]] column names, "
        "or role=name pairs (default: user,item,rating,timestamp)",
    )
    info.set_defaults(handler=run_info)


def run_download(args: argparse.Namespace) -> int:
    from recdata.download import download_dataset, known_dataset, terminal_progress

    spec = known_dataset(args.name)
    result = download_dataset(
        args.name,
        args.data_dir,
        url=args.url,
        checksum=args.checksum,
        force=args.force,
        progress=terminal_progress(spec.folder),
    )
    if result.status == "already present":
        print(f"{args.name} is already present at {result.path} (use --force to replace it)")
        return 0
    verified = (
        f"{result.checksum.algorithm} verified" if result.checksum else "checksum not checked"
    )
    print(f"downloaded {args.name} from {result.url} ({result.size:,} bytes, {verified})")
    print(f"installed at {result.path}; load it with --format {spec.format}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from recdata.loaders import load_dataset

    dataset = load_dataset(args.path, args.format, args.columns)
    inter = dataset.interactions
    n = len(inter)
    density = n / (dataset.n_users * dataset.n_items) if dataset.n_users and dataset.n_items else 0
    print(f"dataset:      {dataset.name} ({args.format}) at {args.path}")
    print(f"users:        {dataset.n_users:,}")
    print(f"items:        {dataset.n_items:,}")
    print(f"interactions: {n:,} (density {density:.4%})")
    if inter.has_ratings and n:
        low, high = float(inter.rating.min()), float(inter.rating.max())
        print(f"ratings:      {low:g} to {high:g} (mean {float(inter.rating.mean()):.3f})")
    else:
        print("ratings:      none (implicit feedback)")
    if inter.has_timestamps and n:
        first, last = int(inter.timestamp.min()), int(inter.timestamp.max())
        print(f"time:         {_iso(first)} to {_iso(last)}")
    else:
        print("time:         none (file order)")
    attributes = sorted({name for item in dataset.items for name in item.attributes})
    print(f"item attributes: {', '.join(attributes) if attributes else 'none'}")
    return 0


def _iso(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (epoch seconds)"
