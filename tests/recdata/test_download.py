"""`agentrec data download` against a real local HTTP server serving a fake ml-100k zip."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.cli import main
from recdata import download as download_module
from recdata.download import KNOWN_DATASETS, download_dataset
from recdata.loaders import load_dataset
from tests.recdata.data_files import FAKE_RATINGS, ml100k_files

SPEC = KNOWN_DATASETS["movielens-100k"]


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def ml100k_zip(prefix: str = "ml-100k/") -> bytes:
    return make_zip({prefix + name: content for name, content in ml100k_files().items()})


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class FileServer:
    """Serves `files` (URL path -> bytes) on 127.0.0.1; anything else is a 404."""

    base_url: str
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_url_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPEC.url_env, raising=False)


def download(data_dir: Path, *extra: str) -> int:
    return main(["data", "download", "movielens-100k", "--data-dir", str(data_dir), *extra])


def test_download_verifies_extracts_and_loads(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = ml100k_zip()
    server.files["/ml-100k.zip"] = archive
    data_dir = tmp_path / "data"

    code = download(
        data_dir, "--url", server.url("/ml-100k.zip"), "--checksum", f"md5:{md5(archive)}"
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "md5 verified" in out and str(data_dir / "ml-100k") in out
    assert sorted(p.name for p in data_dir.iterdir()) == ["ml-100k"]  # no .part, no temp dir
    for name, content in ml100k_files().items():
        assert (data_dir / "ml-100k" / name).read_bytes() == content
    ds = load_dataset(data_dir / "ml-100k", SPEC.format)
    assert len(ds.interactions) == len(FAKE_RATINGS)


def test_env_url_and_default_data_dir(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = ml100k_zip(prefix="")  # a flat archive works too
    server.files["/mirror/ml-100k.zip"] = archive
    monkeypatch.setenv(SPEC.url_env, server.url("/mirror/ml-100k.zip"))
    monkeypatch.setenv("AGENTREC_DATA_DIR", str(tmp_path / "from-env"))

    code = main(
        [
            "data",
            "download",
            "movielens-100k",
            "--checksum",
            f"sha256:{hashlib.sha256(archive).hexdigest()}",
        ]
    )

    assert code == 0
    assert server.requests == ["/mirror/ml-100k.zip"]
    assert (tmp_path / "from-env" / "ml-100k" / "u.data").is_file()


def test_default_checksum_applies_to_custom_url_and_leaves_nothing(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = ml100k_zip()
    server.files["/ml-100k.zip"] = archive
    data_dir = tmp_path / "data"

    code = download(data_dir, "--url", server.url("/ml-100k.zip"))

    err = capsys.readouterr().err
    assert code == 2
    assert "checksum mismatch" in err
    assert f"expected {SPEC.checksum}" in err
    assert f"got md5:{md5(archive)}" in err
    assert not any(data_dir.iterdir())


def test_explicit_wrong_checksum(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files["/ml-100k.zip"] = ml100k_zip()
    wrong = "sha256:" + "0" * 64
    code = download(tmp_path, "--url", server.url("/ml-100k.zip"), "--checksum", wrong)
    assert code == 2
    assert f"expected {wrong}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_http_404(server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = download(tmp_path, "--url", server.url("/missing.zip"), "--checksum", "none")
    err = capsys.readouterr().err
    assert code == 2
    assert "HTTP 404" in err and "/missing.zip" in err
    assert not any(tmp_path.iterdir())


def test_connection_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = download(tmp_path / "d", "--url", f"http://127.0.0.1:{port}/x.zip")
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot connect" in err and f"127.0.0.1:{port}" in err
    assert not any((tmp_path / "d").iterdir())


@pytest.mark.parametrize(
    ("archive", "words"),
    [
        (b"<html>not a zip</html>", "not a valid zip archive"),
        (make_zip({"ml-100k/../../evil.txt": b"x", "ml-100k/u.data": b""}), "unsafe member"),
        (make_zip({"/tmp/evil.txt": b"x"}), "unsafe member"),
        (make_zip({"ml-100k/README": b"no data"}), "does not contain"),
    ],
)
def test_bad_archives_leave_nothing(
    server: FileServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    archive: bytes,
    words: str,
) -> None:
    server.files["/a.zip"] = archive
    data_dir = tmp_path / "deep" / "data"
    code = download(data_dir, "--url", server.url("/a.zip"), "--checksum", "none")
    assert code == 2
    assert words in capsys.readouterr().err
    assert not any(data_dir.iterdir())
    assert not (tmp_path / "evil.txt").exists()


def test_oversized_archive_is_refused(
    server: FileServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = ml100k_zip()
    server.files["/big.zip"] = archive
    unpacked = sum(len(c) for c in ml100k_files().values())
    monkeypatch.setattr(download_module, "MAX_EXTRACTED_BYTES", unpacked - 1)
    assert download(tmp_path, "--url", server.url("/big.zip"), "--checksum", "none") == 2
    assert f"would unpack to {unpacked:,} bytes" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_already_present_then_force(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = ml100k_zip()
    server.files["/ml-100k.zip"] = archive
    args = ("--url", server.url("/ml-100k.zip"), "--checksum", f"md5:{md5(archive)}")
    assert download(tmp_path, *args) == 0
    marker = tmp_path / "ml-100k" / "local-note.txt"
    marker.write_text("kept until --force")
    capsys.readouterr()

    assert download(tmp_path, *args) == 0
    assert "already present" in capsys.readouterr().out
    assert marker.exists() and len(server.requests) == 1

    assert download(tmp_path, *args, "--force") == 0
    assert "downloaded" in capsys.readouterr().out
    assert not marker.exists() and len(server.requests) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k"]
    assert (tmp_path / "ml-100k" / "u.item").is_file()


def test_failed_force_keeps_the_installed_copy(server: FileServer, tmp_path: Path) -> None:
    archive = ml100k_zip()
    server.files["/ml-100k.zip"] = archive
    assert (
        download(tmp_path, "--url", server.url("/ml-100k.zip"), "--checksum", f"md5:{md5(archive)}")
        == 0
    )
    before = (tmp_path / "ml-100k" / "u.data").read_bytes()

    assert download(tmp_path, "--url", server.url("/gone.zip"), "--force") == 2

    assert (tmp_path / "ml-100k" / "u.data").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k"]


def test_incomplete_existing_folder_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ml-100k").mkdir()
    assert download(tmp_path, "--url", "http://127.0.0.1:9/never-used.zip") == 2
    err = capsys.readouterr().err
    assert "does not hold u.data" in err and "--force" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["data", "download", "movielens-1b"], "unknown dataset 'movielens-1b'"),
        (["data", "download", "movielens-100k", "--checksum", "crc32:abcd"], "ALGORITHM:HEX"),
        (["data", "download", "movielens-100k", "--checksum", "md5:abc"], "32 hex digits"),
    ],
)
def test_user_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert main([*argv, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentrec: error:") and words in err
    assert not any(tmp_path.iterdir())


class RecordingProgress:
    def __init__(self) -> None:
        self.total: int | None = -1
        self.received = 0
        self.stopped = False

    def start(self, total: int | None) -> None:
        self.total = total

    def advance(self, n_bytes: int) -> None:
        self.received += n_bytes

    def stop(self) -> None:
        self.stopped = True


def test_progress_is_told_size_and_chunks(server: FileServer, tmp_path: Path) -> None:
    archive = ml100k_zip()
    server.files["/ml-100k.zip"] = archive
    progress = RecordingProgress()
    result = download_dataset(
        "movielens-100k",
        tmp_path,
        url=server.url("/ml-100k.zip"),
        checksum=f"md5:{md5(archive)}",
        progress=progress,
    )
    assert result.status == "downloaded" and result.size == len(archive)
    assert progress.total == len(archive) == progress.received
    assert progress.stopped
