"""Download known public datasets into the data directory, verified and extracted safely.

A download streams to a `.part` file beside the target while hashing it, checks the
checksum, extracts the zip into a temporary folder (rejecting absolute paths and `..`
members) and renames the dataset folder into place in one step. On any failure nothing
partial is left behind: either the complete folder is there or nothing is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Protocol

import httpx

from core.errors import AgentrecError, ConfigError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

CHUNK_BYTES = 1 << 16
MAX_EXTRACTED_BYTES = 4 << 30  # refuse archives that would unpack to more (zip bombs)
CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256", "sha512")


class DownloadError(AgentrecError):
    """A download failed: HTTP error, unreachable server, corrupt or unsafe archive."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected digest."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest, written "algorithm:hex" (e.g. "md5:0e33...")."""

    algorithm: str
    digest: str

    @classmethod
    def parse(cls, text: str) -> Checksum:
        algorithm, sep, digest = text.strip().partition(":")
        algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
        if not sep or algorithm not in CHECKSUM_ALGORITHMS:
            raise ConfigError(
                f"checksum {text!r}: write it as ALGORITHM:HEX with ALGORITHM one of "
                f"{', '.join(CHECKSUM_ALGORITHMS)} (or 'none' to skip the check)"
            )
        expected_length = hashlib.new(algorithm).digest_size * 2
        if len(digest) != expected_length or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(
                f"checksum {text!r}: a {algorithm} digest is {expected_length} hex digits"
            )
        return cls(algorithm, digest)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.digest}"


@dataclass(frozen=True)
class KnownDataset:
    """A dataset the project can download: where from, its digest, how to load it."""

    name: str
    description: str
    url: str
    checksum: Checksum
    folder: str  # folder name under the data directory (and inside the archive)
    format: str  # loader format for `recdata.loaders.load_dataset`
    required_files: tuple[str, ...]  # present when the dataset is installed
    url_env: str  # environment variable that overrides the URL (mirrors, tests)


KNOWN_DATASETS: dict[str, KnownDataset] = {
    "movielens-100k": KnownDataset(
        name="movielens-100k",
        description="MovieLens 100K (GroupLens): 100,000 ratings, 943 users, 1,682 movies",
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        checksum=Checksum("md5", "0e33842e24a9c977be4e0107933c0723"),
        folder="ml-100k",
        format="movielens-100k",
        required_files=("u.data", "u.item", "u.genre"),
        url_env="AGENTREC_MOVIELENS_100K_URL",
    ),
}


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    status: Literal["downloaded", "already present"]
    url: str | None = None
    checksum: Checksum | None = None  # the digest that was verified, None when skipped
    size: int = 0


class DownloadProgress(Protocol):
    """Told when a transfer starts (with its size if known), of each chunk, and the end."""

    def start(self, total: int | None) -> None: ...

    def advance(self, n_bytes: int) -> None: ...

    def stop(self) -> None: ...


def known_dataset(name: str) -> KnownDataset:
    try:
        return KNOWN_DATASETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)}"
        ) from None


def dataset_dir(name: str, data_dir: Path | None = None) -> Path:
    """Where the known dataset `name` is (or would be) installed."""
    if data_dir is None:
        from core.settings import get_settings

        data_dir = get_settings().data_dir
    return Path(data_dir).expanduser() / known_dataset(name).folder


def is_installed(spec: KnownDataset, target: Path) -> bool:
    return target.is_dir() and all((target / f).is_file() for f in spec.required_files)


def resolve_url(spec: KnownDataset, url: str | None) -> str:
    """The `--url` option, else the dataset's environment variable, else the registry URL."""
    return url or os.environ.get(spec.url_env) or spec.url


def resolve_checksum(spec: KnownDataset, checksum: str | None) -> Checksum | None:
    """None or "default": the registry digest; "none": no check; else "ALGORITHM:HEX"."""
    if checksum is None or checksum.strip().lower() == "default":
        return spec.checksum
    if checksum.strip().lower() == "none":
        return None
    return Checksum.parse(checksum)


def download_dataset(
    name: str,
    data_dir: Path | None = None,
    *,
    url: str | None = None,
    checksum: str | None = None,
    force: bool = False,
    progress: DownloadProgress | None = None,
    timeout: float = 30.0,
) -> DownloadResult:
    """Download, verify and install dataset `name` into `data_dir/<folder>`.

    `url` overrides the source (else the dataset's env var, else the registry URL).
    `checksum` is None/"default" (the registry digest, which also applies to other URLs:
    a mirror must serve the same bytes), "none" (skip the check) or "ALGORITHM:HEX".
    An installed dataset is left alone unless `force`, which replaces it atomically.
    """
    spec = known_dataset(name)
    expected = resolve_checksum(spec, checksum)
    target = dataset_dir(name, data_dir)
    if target.exists() and not force:
        if is_installed(spec, target):
            return DownloadResult(target, "already present")
        raise DownloadError(
            f"{target} exists but does not hold {', '.join(spec.required_files)}; "
            "use --force to replace it"
        )
    source = resolve_url(spec, url)
    data_root = target.parent
    try:
        data_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create data directory {data_root}: {exc}") from exc

    fd, part_name = tempfile.mkstemp(prefix=f".{spec.folder}-", suffix=".zip.part", dir=data_root)
    os.close(fd)
    part = Path(part_name)
    staging: Path | None = None
    try:
        size, digest = _fetch(source, part, expected, progress, timeout)
        if expected is not None and digest != expected.digest:
            raise ChecksumError(
                f"checksum mismatch for {source}: expected {expected}, "
                f"got {expected.algorithm}:{digest} (a corrupted download or another file; "
                "for a trusted mirror with other bytes give --checksum ALGORITHM:HEX or none)"
            )
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.folder}-", suffix=".tmp", dir=data_root))
        extract_zip(part, staging, source)
        root = _dataset_root(staging, spec, source)
        _install(root, target)
    finally:
        part.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return DownloadResult(target, "downloaded", source, expected, size)


def _fetch(
    url: str,
    destination: Path,
    expected: Checksum | None,
    progress: DownloadProgress | None,
    timeout: float,
) -> tuple[int, str]:
    """Stream `url` into `destination`; returns (byte count, hex digest)."""
    hasher = hashlib.new(expected.algorithm if expected else "sha256")
    size = 0
    try:
        with (
            httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response,
            destination.open("wb") as out,
        ):
            if response.status_code != httpx.codes.OK:
                raise DownloadError(
                    f"download of {url} failed: HTTP {response.status_code} "
                    f"{response.reason_phrase}".rstrip()
                )
            length = response.headers.get("content-length")
            if progress is not None:
                progress.start(int(length) if length and length.isdigit() else None)
            for chunk in response.iter_bytes(CHUNK_BYTES):
                out.write(chunk)
                hasher.update(chunk)
                size += len(chunk)
                if progress is not None:
                    progress.advance(len(chunk))
    except httpx.UnsupportedProtocol as exc:
        raise DownloadError(f"cannot download {url!r}: {exc}") from exc
    except httpx.ConnectError as exc:
        raise DownloadError(f"cannot connect to {url}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise DownloadError(f"download of {url} timed out after {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise DownloadError(f"download of {url} failed: {exc}") from exc
    except OSError as exc:
        raise DownloadError(f"cannot write {destination}: {exc}") from exc
    finally:
        if progress is not None:
            progress.stop()
    return size, hasher.hexdigest()


def _unsafe_member(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return (
        path.is_absolute()
        or ".." in path.parts
        or (len(name) > 1 and name[1] == ":")  # a Windows drive letter
    )


def extract_zip(archive: Path, destination: Path, source: str) -> None:
    """Extract `archive` into `destination`, refusing unsafe member names and symlinks."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                mode = member.external_attr >> 16
                if _unsafe_member(member.filename):
                    raise DownloadError(
                        f"archive from {source} has an unsafe member {member.filename!r} "
                        "(absolute path or '..'); refusing to extract it"
                    )
                if stat.S_ISLNK(mode):
                    raise DownloadError(
                        f"archive from {source} has a symbolic link {member.filename!r}; "
                        "refusing to extract it"
                    )
            unpacked = sum(m.file_size for m in members)
            if unpacked > MAX_EXTRACTED_BYTES:
                raise DownloadError(
                    f"archive from {source} would unpack to {unpacked:,} bytes, more than "
                    f"the {MAX_EXTRACTED_BYTES:,} allowed; refusing to extract it"
                )
            bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"archive from {source} is corrupt (member {bad!r})")
            zf.extractall(destination)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"download from {source} is not a valid zip archive: {exc}") from exc
    except OSError as exc:
        raise DownloadError(f"cannot extract the archive from {source}: {exc}") from exc


def _dataset_root(staging: Path, spec: KnownDataset, source: str) -> Path:
    """The extracted folder holding the dataset's files: `<folder>/`, the top, or a lone dir."""
    candidates = [staging / spec.folder, staging]
    candidates += sorted(p for p in staging.iterdir() if p.is_dir())
    for candidate in candidates:
        if is_installed(spec, candidate):
            return candidate
    raise DownloadError(
        f"archive from {source} does not contain the {spec.name} files "
        f"({', '.join(spec.required_files)})"
    )


def _install(root: Path, target: Path) -> None:
    """Rename `root` to `target` in one step, replacing an existing `target` if any."""
    backup: Path | None = None
    if target.exists():
        backup = target.with_name(f".{target.name}-old-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        target.rename(backup)
    try:
        root.rename(target)
    except OSError as exc:
        if backup is not None:
            backup.rename(target)
        raise DownloadError(f"cannot move the dataset into {target}: {exc}") from exc
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


class RichProgress:
    """A rich progress bar on stderr: bytes received, speed and time remaining."""

    def __init__(self, description: str) -> None:
        self.description = description
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task(self.description, total=total)
        self._bar.start()

    def advance(self, n_bytes: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=n_bytes)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def terminal_progress(description: str) -> DownloadProgress | None:
    """A progress bar when stderr is a terminal, else None (logs and pipes stay clean)."""
    return RichProgress(description) if sys.stderr.isatty() else None
