"""The JavaScript clients frontends use, run by Node against real `agentrec serve` processes:

- `@microsoft/fetch-event-source` with its default retry, through a loopback proxy that cuts
  the first connection mid-stream: one run, every event exactly once;
- the Vercel AI SDK (`ai`: `AbstractChat` + `DefaultChatTransport`, what `useChat` runs): a
  two-turn chat (text, reasoning, the `data-recommendations` part), then a reply held in
  flight by the server's LLM, stopped by the client and resumed;
- openapi-typescript (default options) + openapi-fetch: a client generated from the
  server's OpenAPI document compiles under `tsc --strict` and calls recommendations, events,
  a stream and its resume.

The packages are pinned by tests/js/package.json and package-lock.json; `npm ci` installs
them into tests/js/node_modules (gitignored) once per lock file (a stamp records which).
Skips only when `node` or `npm` is missing.

Two servers run for the module, started together: `api` (the default offline service) and
`gated`, whose Ranker asks a fake OpenAI-compatible LLM (tests/fakes) that holds its answer
while the test closes a gate, then fails (the Ranker falls back to its offline brain).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.app.live_server import REPO_ROOT, LiveServer, start_all
from tests.fakes.openai_server import FakeOpenAIServer, RecordedRequest, Reply

JS_DIR = REPO_ROOT / "tests" / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")
NODE_TIMEOUT_S = 120.0
GATE_TIMEOUT_S = 60.0
CUT_AFTER_BYTES = 3000
"""The proxy closes the first connection after this many bytes from the server (headers
included): a few events into a stream of ~25."""

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm are needed for the JavaScript clients"
)


# -- the pinned packages ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def node_modules() -> Path:
    """`npm ci` from the committed lock file, into tests/js/node_modules, unless that folder
    already holds this lock's install."""
    assert NPM is not None
    lock = JS_DIR / "package-lock.json"
    stamp = JS_DIR / "node_modules" / ".agentrec-lock-sha256"
    digest = hashlib.sha256(lock.read_bytes() + (JS_DIR / "package.json").read_bytes()).hexdigest()
    if not (stamp.is_file() and stamp.read_text().strip() == digest):
        done = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
        stamp.write_text(digest)
    return JS_DIR / "node_modules"


def run_node(args: list[str], cwd: Path = JS_DIR, timeout: float = NODE_TIMEOUT_S) -> Any:
    """Run a script with node; its last stdout line, parsed as JSON."""
    assert NODE is not None
    done = subprocess.run([NODE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"node {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- servers ---------------------------------------------------------------------------------
class Gate:
    """Holds the fake LLM's answers while closed."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.held = 0
        self._holding = threading.Event()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def wait_held(self, timeout_s: float) -> bool:
        """Wait until an answer is held (a request arrived while closed)."""
        return self._holding.wait(timeout_s)

    def respond(self, _request: RecordedRequest) -> Reply:
        if not self._open.is_set():
            self.held += 1
            self._holding.set()
        self._open.wait(GATE_TIMEOUT_S)
        return Reply.error(503, "the test's LLM is unavailable")


@dataclass
class Servers:
    api: LiveServer
    gated: LiveServer
    gate: Gate


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("js-clients")
    gate = Gate()
    with contextlib.ExitStack() as stack:
        llm = FakeOpenAIServer(responder=gate.respond)
        llm.start()
        stack.callback(llm.stop)
        stack.callback(gate.open)  # runs first: frees a held answer so the servers stop
        preset = root / "gated.toml"
        preset.write_text(
            "[context]\n"
            'ranker_model = "openai:fake-model"\n'
            f'base_url = "{llm.base_url}"\n'
            "llm_max_retries = 0\n"
            f"llm_timeout_s = {GATE_TIMEOUT_S * 2}\n",
            encoding="utf-8",
        )
        api = LiveServer(root / "api")
        gated = LiveServer(root / "gated", {"AGENTREC_PRESET": str(preset)})
        stack.callback(api.stop)
        stack.callback(gated.stop)
        start_all([api, gated])
        yield Servers(api, gated, gate)


# -- a loopback proxy that cuts the first connection -----------------------------------------
class CuttingProxy:
    """Forwards TCP connections to `target`; the first one is closed (both ways) after
    `cut_after` bytes from the server."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.connections = 0
        self.cut = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.cut_after if self.connections == 0 else None
            self.connections += 1
            pair = (client, upstream)
            for source, sink, budget in ((client, upstream, None), (upstream, client, limit)):
                thread = threading.Thread(
                    target=self._pump, args=(source, sink, budget, pair), daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        budget: int | None,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if budget is not None and len(data) >= budget:
                    sink.sendall(data[:budget])
                    self.cut = True
                    break
                if budget is not None:
                    budget -= len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in pair:  # one side done or cut: the connection ends both ways
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._listener.close()


# -- the tests -------------------------------------------------------------------------------
def test_fetch_event_source_retries_into_the_same_run(node_modules: Path, servers: Servers) -> None:
    proxy = CuttingProxy(servers.api.port, CUT_AFTER_BYTES)
    try:
        result = run_node(["fetch_event_source.mjs", proxy.base_url, str(uuid.uuid4())])
    finally:
        proxy.close()
    assert proxy.cut and proxy.connections >= 2, "the proxy did not cut the first stream"
    events = result["events"]
    seqs = [e["data"]["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1)), seqs  # every event exactly once
    assert [e["id"] for e in events] == [str(s) for s in seqs]
    assert {e["data"]["run_id"] for e in events} == {events[0]["data"]["run_id"]}  # one run
    assert [e["event"] for e in events] == [e["data"]["type"] for e in events]
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"
    assert events[-1]["data"]["status"] == "success"  # the cut did not cancel the run
    requests = result["requests"]
    assert len(requests) >= 2 and requests[0]["lastEventId"] is None
    assert requests[1]["lastEventId"] not in (None, "")  # the retry resumed after the cut
    assert 1 <= int(requests[1]["lastEventId"]) < len(events)
    assert result["closed"]


def test_the_ai_sdk_chats_and_resumes_a_reply(node_modules: Path, servers: Servers) -> None:
    assert NODE is not None
    chat_id = f"chat-{uuid.uuid4().hex[:12]}"
    gate = servers.gate
    with subprocess.Popen(
        [NODE, "ai_chat.mjs", servers.gated.base_url, chat_id],
        cwd=JS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        lines = _lines(process.stdout)
        try:
            assert _next(lines, process)["turns"] == 2
            gate.close()  # the third reply's Ranker waits for its LLM
            process.stdin.write("go\n")
            process.stdin.flush()
            assert _next(lines, process) == {"resuming": True}
            # the reply is in flight only once its Ranker has asked the LLM (a loaded
            # machine may get there after the client has already stopped and resumes)
            assert gate.wait_held(NODE_TIMEOUT_S), "the third reply was not held in flight"
            gate.open()
            result = _next(lines, process)
            assert process.wait(timeout=NODE_TIMEOUT_S) == 0
        finally:
            gate.open()
            if process.poll() is None:
                process.kill()
    assert gate.held >= 1, "the third reply was not held in flight"
    assert result["errors"] == [] and result["status"] == "ready"

    two = result["afterTwoTurns"]
    assert [m["role"] for m in two] == ["user", "assistant"] * 2
    for message in two[1::2]:
        _assert_reply(message)
    assert two[1]["recommendations"] != two[3]["recommendations"]

    cut, resumed = result["cut"], result["resumed"]
    assert cut["role"] == "assistant" and cut["text"] == ""  # stopped before the reply
    assert cut["recommendations"] is None
    assert [m["role"] for m in resumed] == ["user", "assistant"] * 3
    assert resumed[:4] == two
    third = resumed[5]
    assert third["id"] == cut["id"] == third["metadata"]["run_id"]  # the same message, rebuilt
    _assert_reply(third)
    assert third["metadata"]["degraded"] == ["Ranker"]  # its LLM failed once released
    assert result["resumes"] == [200, 204] and result["unchangedByNoop"]
    assert {"agent_started", "thought", "action", "candidates", "error"} <= set(
        result["traceTypes"]
    )


def _assert_reply(message: dict[str, Any]) -> None:
    """An assistant message with the reply, the reasoning and one typed recommendations
    part whose items the reply names."""
    assert message["role"] == "assistant"
    assert message["text"].strip()
    assert "Searcher" in message["reasoning"]
    assert message["recommendationParts"] == 1
    items = message["recommendations"]["items"]
    assert items and any(item["title"] in message["text"] for item in items)
    assert message["recommendations"]["run_id"] == message["id"]
    assert message["metadata"]["status"] == "success"
    assert (
        message["metadata"]["recommendation_id"] == message["recommendations"]["recommendation_id"]
    )
    assert set(message["partTypes"]) <= {"reasoning", "data-recommendations", "text"}


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _next(lines: queue.Queue[str | None], process: subprocess.Popen[str]) -> Any:
    try:
        line = lines.get(timeout=NODE_TIMEOUT_S)
    except queue.Empty:
        raise AssertionError("node printed nothing in time") from None
    if line is None:
        stderr = process.stderr.read() if process.stderr is not None else ""
        raise AssertionError(f"node ended early ({process.wait()}):\n{stderr}")
    return json.loads(line)


def test_a_generated_typescript_client_compiles_strictly_and_calls_the_api(
    node_modules: Path, servers: Servers, tmp_path: Path
) -> None:
    """openapi-typescript (default options) types the server's OpenAPI document; the client
    (tests/js/openapi_client.ts) narrows every run event by `type`, and `tsc --strict`
    accepts it; compiled, it calls the real server."""
    import httpx

    work = tmp_path / "client"
    work.mkdir()
    for name in ("openapi_client.ts", "tsconfig.json", "package.json"):
        shutil.copy(JS_DIR / name, work / name)
    os.symlink(node_modules, work / "node_modules")
    (work / "openapi.json").write_text(
        httpx.get(f"{servers.api.base_url}/openapi.json", timeout=30).text, encoding="utf-8"
    )
    openapi_typescript = node_modules / "openapi-typescript" / "bin" / "cli.js"
    tsc = node_modules / "typescript" / "bin" / "tsc"
    for args in (
        [str(openapi_typescript), "openapi.json", "--output", "schema.ts"],
        [str(tsc), "--project", ".", "--outDir", "out"],
    ):
        done = subprocess.run(
            [str(NODE), *args], cwd=work, capture_output=True, text=True, timeout=NODE_TIMEOUT_S
        )
        assert done.returncode == 0, f"{Path(args[0]).name}:\n{done.stdout}\n{done.stderr}"
    result = run_node([str(work / "out" / "openapi_client.js"), servers.api.base_url], cwd=work)

    assert len(result["titles"]) == 3
    assert all("Comedy" in genres for genres in result["genres"])
    assert result["feedback"] == ["stored"]
    assert result["types"][0] == "run_started" and result["types"][-1] == "run_finished"
    assert result["seqs"] == list(range(1, len(result["seqs"]) + 1))
    assert result["location"].startswith("/v1/runs/")
    assert result["resumedSeqs"] == result["seqs"][3:]
    assert result["overStatus"] == 204
    assert result["described"][-1].startswith("success: 3 items")
