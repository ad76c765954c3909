"""Helpers for data tests: writing files, checking DataError messages, a fake ml-100k."""

from __future__ import annotations

from pathlib import Path

from core.errors import DataError


def assert_names(error: DataError, path: Path, line: int | None, *words: str) -> None:
    """The error names the file, the line (when given) and the problem's key words."""
    message = str(error)
    assert error.path == str(path)
    assert error.line == line
    assert message.startswith(f"{path}, line {line}:" if line is not None else f"{path}:")
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


GENRES = ("unknown", "Action", "Adventure", "Comedy", "Drama")


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


# (id, title, release date, genres); item 3's title is latin-1 only ("é").
FAKE_ITEMS = (
    ("1", "Alpha Story (1995)", "01-Jan-1995", ("Action", "Comedy")),
    ("2", "Beta Days", "14-Feb-1987", ("Drama",)),
    ("3", "Misérables, Les (1995)", "01-Jan-1995", ("Drama",)),
    ("4", "unknown", "", ("unknown",)),
)
FAKE_RATINGS = (
    ("10", "1", 5, 881250949),
    ("10", "2", 3, 881250950),
    ("11", "1", 4, 878887116),
    ("11", "3", 2, 891717742),
    ("12", "4", 1, 880606923),
)
FAKE_USERS = (("10", "24", "M", "technician", "85711"), ("11", "53", "F", "other", "94043"))


def ml100k_files() -> dict[str, bytes]:
    """File name -> bytes of a tiny but well-formed ml-100k folder."""
    genre = "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n"
    item = "".join(
        f"{iid}|{title}|{date}||http://example.org/{iid}|{_flags(*genres)}\n"
        for iid, title, date, genres in FAKE_ITEMS
    )
    data = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in FAKE_RATINGS)
    user = "".join("|".join(row) + "\n" for row in FAKE_USERS)
    return {
        "u.genre": genre.encode("latin-1"),
        "u.item": item.encode("latin-1"),
        "u.data": data.encode("latin-1"),
        "u.user": user.encode("latin-1"),
    }


def write_ml100k(folder: Path, overrides: dict[str, bytes | None] | None = None) -> Path:
    """Write the fake ml-100k files into `folder`; `overrides` replaces (None: drops) files."""
    files: dict[str, bytes | None] = {**ml100k_files(), **(overrides or {})}
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if content is not None:
            (folder / name).write_bytes(content)
    return folder
