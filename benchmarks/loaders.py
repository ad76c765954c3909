"""Loader speed: seconds to load MovieLens-1M-sized synthetic files in every layout.

    .venv/bin/python -m benchmarks.loaders                    # 1,000,209 rows (ML-1M size)
    .venv/bin/python -m benchmarks.loaders --rows 100000

Random ids, ratings and timestamps are written in each layout (ml-100k `u.data`, MovieLens
`ratings.csv`, the 1M `ratings.dat`, generic CSV with integer and with ISO-8601 timestamps)
into a temporary folder, then each is loaded once with `load_dataset`. The real MovieLens
100K is timed too when it is present beside the repository. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.report import write_json
from recdata.loaders import load_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
ML100K = REPO_ROOT.parent / "shared" / "data" / "ml-100k"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "loaders.json"
GENRES = ("unknown", "Action", "Comedy", "Drama")


def write_layouts(root: Path, rows: int, users: int, items: int, seed: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    u = rng.integers(1, users + 1, rows)
    i = rng.integers(1, items + 1, rows)
    r = rng.integers(1, 6, rows)
    t = rng.integers(950_000_000, 1_050_000_000, rows)
    lines = list(zip(u.tolist(), i.tolist(), r.tolist(), t.tolist(), strict=True))
    folders = {
        name: root / name for name in ("movielens-100k", "movielens-csv", "dat", "csv", "csv-iso")
    }
    for folder in folders.values():
        folder.mkdir()

    ml = folders["movielens-100k"]
    (ml / "u.genre").write_text("".join(f"{g}|{n}\n" for n, g in enumerate(GENRES)))
    (ml / "u.item").write_text(
        "".join(
            f"{n}|Movie {n} (1999)|01-Jan-1999||http://x/{n}|0|1|0|1\n" for n in range(1, items + 1)
        )
    )
    (ml / "u.data").write_text("".join(f"{a}\t{b}\t{c}\t{d}\n" for a, b, c, d in lines))

    csv_ = folders["movielens-csv"]
    (csv_ / "movies.csv").write_text(
        "movieId,title,genres\n"
        + "".join(f'{n},"Movie, {n} (1999)",Action|Drama\n' for n in range(1, items + 1))
    )
    (csv_ / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(f"{a},{b},{c}.0,{d}\n" for a, b, c, d in lines)
    )

    dat = folders["dat"]
    (dat / "movies.dat").write_text(
        "".join(f"{n}::Movie {n} (1999)::Action|Drama\n" for n in range(1, items + 1))
    )
    (dat / "ratings.dat").write_text("".join(f"{a}::{b}::{c}::{d}\n" for a, b, c, d in lines))

    (folders["csv"] / "interactions.csv").write_text(
        "user,item,rating,timestamp\n" + "".join(f"u{a},i{b},{c},{d}\n" for a, b, c, d in lines)
    )
    iso = [datetime.fromtimestamp(d, UTC).strftime("%Y-%m-%dT%H:%M:%S") for d in t.tolist()]
    (folders["csv-iso"] / "interactions.csv").write_text(
        "user,item,rating,timestamp\n"
        + "".join(f"u{a},i{b},{c},{s}\n" for (a, b, c, _), s in zip(lines, iso, strict=True))
    )
    return folders


def timed(load: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = load()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_209)
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--items", type=int, default=3706)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    formats = {
        "movielens-100k": "movielens-100k",
        "movielens-csv": "movielens-csv",
        "dat": "movielens-csv",
        "csv": "csv",
        "csv-iso": "csv",
    }
    results: dict[str, object] = {
        "rows": args.rows,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seconds": {},
    }
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_layouts(Path(tmp), args.rows, args.users, args.items, args.seed)
        for layout, folder in folders.items():
            elapsed, dataset = timed(partial(load_dataset, folder, formats[layout]))
            seconds[layout] = round(elapsed, 3)
            print(f"{layout:16s} {elapsed:7.2f} s   {dataset}")
    if (ML100K / "u.data").is_file():
        elapsed, dataset = timed(lambda: load_dataset(ML100K, "movielens-100k"))
        seconds["real ml-100k"] = round(elapsed, 3)
        print(f"{'real ml-100k':16s} {elapsed:7.2f} s   {dataset}")
    results["seconds"] = seconds
    write_json(args.out, results)


if __name__ == "__main__":
    main()
