"""Helpers shared by the loaders: finding files, decoding text, parsing fields.

Every problem is raised as `DataError(path, problem, line)` so the user sees which file and
which line is wrong, never a traceback.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.errors import DataError

# Integer timestamps at or above this are read as milliseconds since the epoch: 1e11 seconds
# is the year 5138, while 1e11 milliseconds is March 1973, before any recommender log.
MILLISECONDS_THRESHOLD = 100_000_000_000

_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_YEAR_ANYWHERE = re.compile(r"(\d{4})\s*$")


def require_folder(path: Path, format_name: str, expected: str) -> Path:
    """`path` as a folder, or a DataError saying which files the format expects in it."""
    if not path.exists():
        raise DataError(path, f"folder not found (format {format_name!r} expects {expected})")
    if not path.is_dir():
        raise DataError(
            path,
            f"is a file, not a folder (format {format_name!r} expects a folder with {expected})",
        )
    return path


def require_file(folder: Path, name: str, format_name: str, expected: str) -> Path:
    """`folder/name` if it is a file, else a DataError listing what the format expects."""
    path = folder / name
    if not path.is_file():
        raise DataError(
            path, f"file not found (format {format_name!r} expects {expected} in {folder})"
        )
    return path


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The whole file decoded; undecodable bytes and empty files are DataErrors.

    `encoding="utf-8"` also drops a leading byte-order mark. `"utf-8/latin-1"` decodes as
    UTF-8 and falls back to latin-1 (which accepts any byte) for old MovieLens `.dat` files.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise DataError(path, "file is empty")
    if encoding == "utf-8/latin-1":
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end].hex(" ")
        raise DataError(
            path, f"undecodable bytes ({bad}) for encoding {encoding}: {exc.reason}", line
        ) from exc


def split_lines(
    path: Path, text: str, separator: str | None, n_fields: int
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank line, which must have exactly `n_fields`.

    `separator=None` splits on runs of whitespace.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(separator) if separator is not None else line.split()
        if len(fields) != n_fields:
            raise DataError(
                path, f"expected {n_fields} fields, found {len(fields)}: {line[:80]!r}", number
            )
        yield number, fields


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a `.csv` file guessed from its header: the most frequent of , ; tab."""
    counts = {d: _count_unquoted(header_line, d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _count_unquoted(line: str, char: str) -> int:
    inside = False
    count = 0
    for c in line:
        if c == '"':
            inside = not inside
        elif c == char and not inside:
            count += 1
    return count


def delimiter_for(path: Path, text: str) -> str:
    """Tab for `.tsv`/`.tab`/`.txt` files, otherwise the delimiter sniffed from the header."""
    if path.suffix.lower() in {".tsv", ".tab"}:
        return "\t"
    first = next((line for line in text.splitlines() if line.strip()), "")
    return sniff_delimiter(first)


class CsvTable:
    """A delimited file with a header row, read with proper quoting.

    Iterate `rows()` for (line number, fields); each row is checked to have as many fields
    as the header.
    """

    def __init__(self, path: Path, delimiter: str | None = None, encoding: str = "utf-8") -> None:
        self.path = path
        text = read_text(path, encoding)
        self.delimiter = delimiter if delimiter is not None else delimiter_for(path, text)
        self._reader = csv.reader(
            io.StringIO(text, newline=""), delimiter=self.delimiter, strict=True
        )
        try:
            header = next(r for r in self._reader if r)
        except StopIteration:
            raise DataError(path, "file is empty") from None
        except csv.Error as exc:
            raise DataError(path, f"malformed header: {exc}", self._reader.line_num) from exc
        self.header_line = self._reader.line_num
        self.header = [h.strip() for h in header]

    def column(self, name: str) -> int:
        """The position of column `name`; a DataError listing the header when it is absent."""
        try:
            return self.header.index(name)
        except ValueError:
            raise self.missing([name]) from None

    def missing(self, names: Sequence[str]) -> DataError:
        quoted = ", ".join(repr(n) for n in names)
        found = ", ".join(repr(h) for h in self.header)
        plural = "s" if len(names) > 1 else ""
        return DataError(
            self.path,
            f"missing column{plural} {quoted} in the header (found: {found})",
            self.header_line,
        )

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number where the row starts, fields) of each non-blank row."""
        width = len(self.header)
        reader = self._reader
        start = reader.line_num + 1
        try:
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    start = reader.line_num + 1
                    continue
                if len(fields) != width:
                    problem = f"expected {width} fields like the header, found {len(fields)}"
                    if reader.line_num > start:
                        problem += (
                            f" (a quoted field runs from here to line {reader.line_num}:"
                            " is a closing quote missing?)"
                        )
                    raise DataError(self.path, problem, start)
                yield start, fields
                start = reader.line_num + 1
        except csv.Error as exc:
            raise DataError(self.path, f"malformed CSV: {exc}", start) from exc


def parse_rating(path: Path, value: str, line: int) -> float:
    try:
        rating = float(value)
    except ValueError:
        raise DataError(path, f"rating {value!r} is not a number", line) from None
    if not math.isfinite(rating):
        raise DataError(path, f"rating {value!r} is not a finite number", line)
    return rating


def parse_epoch_seconds(path: Path, value: str, line: int) -> int:
    """A Unix timestamp in whole seconds, as MovieLens files hold them."""
    try:
        return int(value)
    except ValueError:
        raise DataError(path, f"timestamp {value!r} is not a whole number", line) from None


def parse_timestamp(path: Path, value: str, line: int) -> int:
    """Seconds since the epoch from an integer, a decimal or an ISO-8601 date/datetime.

    Numbers at or above `MILLISECONDS_THRESHOLD` are milliseconds. Dates without a time are
    midnight UTC; datetimes without an offset are UTC.
    """
    text = value.strip()
    if ":" not in text and "-" not in text[1:]:  # dates and times go straight to the ISO path
        try:
            number = int(text)
        except ValueError:
            pass
        else:
            return number // 1000 if abs(number) >= MILLISECONDS_THRESHOLD else number
        try:
            decimal = float(text)
        except ValueError:
            pass
        else:
            if not math.isfinite(decimal):
                raise DataError(path, f"timestamp {value!r} is not a finite number", line)
            seconds = decimal / 1000 if abs(decimal) >= MILLISECONDS_THRESHOLD else decimal
            return math.floor(seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(
            path,
            f"timestamp {value!r} is neither a number (epoch seconds or milliseconds) "
            "nor an ISO-8601 date/datetime",
            line,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def year_from_title(title: str) -> str | None:
    """The year in a MovieLens title such as "Heat (1995)" (or "Show (2005-2007)")."""
    match = _YEAR_IN_TITLE.search(title)
    return match.group(1) if match else None


def year_from_date(date: str) -> str | None:
    """The year at the end of a date such as "01-Jan-1995"."""
    match = _YEAR_ANYWHERE.search(date)
    return match.group(1) if match else None


def item_text(title: str, attributes: dict[str, tuple[str, ...]]) -> str:
    """A short description for content similarity: the title and each attribute's values."""
    parts = [title]
    for name, values in attributes.items():
        if values:
            parts.append(f"{name.replace('_', ' ').capitalize()}: {', '.join(values)}")
    return ". ".join(parts) + "."
