"""The graph in LangGraph Studio's dev server: `langgraph dev` loads `langgraph.json` from the
repository root, and runs of the "agentrec" graph stream results and trace events over HTTP,
driven by the official client (`langgraph-sdk`).

The server runs in its own process group on a free local port, with analytics, version checks
and LangSmith tracing off (no network beyond 127.0.0.1), in strict msgpack mode
(LANGGRAPH_STRICT_MSGPACK=true: checkpoints load only allowlisted types); its log is read.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.context import Context
from agents.state import InputState
from agents.trace import EVENT_TYPES
from graphs.recommend import graph
from recdata.demo import DEMO_USER_ID, load_demo

REPO_ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"
GRAPH_ID = "agentrec"
AGENTS = {"Manager", "UserAnalyst", "Searcher", "ItemAnalyst", "Ranker", "Reflector"}
STARTUP_TIMEOUT_S = 45.0
BANNER_URL = re.compile(r"API: \S*?(http://127\.0\.0\.1:\d+)")
CHECKPOINT_TYPE_WARNINGS = re.compile(r"Deserializing unregistered type|Blocked deserialization")
ANIMATION = {"include": {"genres": ["Animation"]}}

pytestmark = pytest.mark.timeout(180)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",  # the CLI's usage ping
        LANGGRAPH_NO_VERSION_CHECK="true",  # the server's PyPI version check
        LANGSMITH_TRACING="false",
        OTEL_ENABLED="false",
        PYTHONUNBUFFERED="1",
        LANGGRAPH_STRICT_MSGPACK="true",
    )
    for key in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_CLOUD_LICENSE_KEY"):
        env.pop(key, None)
    return env


def _wait_until_ready(process: subprocess.Popen[bytes], log: Path, port: int) -> str:
    """The server's base URL once `/ok` answers (it moves to another port if `port` is taken,
    so the URL is read from its banner)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode}:\n{_tail(log)}")
        banner = BANNER_URL.search(log.read_text(errors="replace"))
        url = banner.group(1) if banner else url
        try:
            if httpx.get(f"{url}/ok", timeout=1.0).is_success:
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"langgraph dev not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclasses.dataclass(frozen=True)
class Studio:
    url: str
    log: Path

    def checkpoint_type_warnings(self) -> list[str]:
        """The log's lines about checkpoint types loaded unregistered or blocked."""
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if CHECKPOINT_TYPE_WARNINGS.search(line)]


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    if not LANGGRAPH.is_file() or importlib.util.find_spec("langgraph_api") is None:
        pytest.skip('langgraph-cli[inmem] is not installed (pip install "langgraph-cli[inmem]")')
    # The in-memory runtime keeps its state in .langgraph_api/ under the working directory.
    state_dir = REPO_ROOT / ".langgraph_api"
    created_state_dir = not state_dir.exists()
    log = tmp_path_factory.mktemp("studio") / "langgraph-dev.log"
    port = _free_port()
    command = [
        str(LANGGRAPH),
        "dev",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
        "--config",
        "langgraph.json",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=_server_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield Studio(_wait_until_ready(process, log, port), log)
    finally:
        _stop(process)
        if created_state_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def studio_url(studio: Studio) -> str:
    return studio.url


@pytest.fixture(scope="module")
def client(studio_url: str) -> Any:
    from langgraph_sdk import get_sync_client

    return get_sync_client(url=studio_url, api_key=None)


def _stream_run(
    client: Any, payload: dict[str, Any], context: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Runs the graph on a new thread; returns the thread id, the last values, the trace events."""
    thread = client.threads.create()
    values: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    for part in client.runs.stream(
        thread["thread_id"],
        GRAPH_ID,
        input=payload,
        context=context,
        stream_mode=["values", "custom"],
    ):
        assert part.event != "error", part.data
        if part.event == "values":
            values = part.data
        elif part.event == "custom":
            events.append(part.data)
    return thread["thread_id"], values, events


def _edges(drawn: Any) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in drawn.edges}


def test_the_drawn_graph_has_every_route_of_the_manager_and_every_edge_back() -> None:
    """A regression: get_graph(), which Studio draws, had only __start__ -> Manager ->
    __end__; the five agents floated unconnected."""
    edges = _edges(graph.get_graph())
    agents = AGENTS - {"Manager"}
    assert {("Manager", a) for a in agents} | {(a, "Manager") for a in agents} <= edges
    assert {("__start__", "Manager"), ("Manager", "__end__")} <= edges


def test_studio_draws_the_same_graph(client: Any, studio_url: str) -> None:
    assistant = client.assistants.search(graph_id=GRAPH_ID)[0]
    drawn = httpx.get(f"{studio_url}/assistants/{assistant['assistant_id']}/graph", timeout=30)
    assert drawn.status_code == 200
    body = drawn.json()
    served = {(e["source"], e["target"]) for e in body["edges"]}
    assert served == _edges(graph.get_graph())
    assert {n["id"] for n in body["nodes"]} >= AGENTS


def test_studio_serves_the_graph_with_its_input_and_context_fields(client: Any) -> None:
    assistants = client.assistants.search(graph_id=GRAPH_ID)
    assert [a["graph_id"] for a in assistants] == [GRAPH_ID]
    schemas = client.assistants.get_schemas(assistants[0]["assistant_id"])
    input_fields = {f.name for f in dataclasses.fields(InputState)}
    assert set(schemas["input_schema"]["properties"]) == input_fields
    context_fields = {f.name for f in dataclasses.fields(Context)}
    assert set(schemas["context_schema"]["properties"]) == context_fields
    assert schemas["context_schema"]["properties"]["top_k"]["default"] == Context().top_k


def test_streamed_recommend_run_returns_catalog_items_and_every_agents_trace(
    client: Any,
) -> None:
    payload: dict[str, Any] = {"task": "recommend", "user_id": DEMO_USER_ID, "count": 5}
    thread_id, values, events = _stream_run(client, payload)

    ids = [item["item_id"] for item in values["recommendations"]]
    assert len(ids) == 5 and len(set(ids)) == 5
    catalog = {item.item_id for item in load_demo().items}
    assert set(ids) <= catalog
    # the server runs the same graph as the package: same items, same order
    local = graph.invoke(InputState(**payload), context=Context())
    assert ids == [item.item_id for item in local["recommendations"]]

    assert {e["agent"] for e in events} == AGENTS
    assert {e["type"] for e in events} <= EVENT_TYPES
    assert any(e["type"] == "reflection" for e in events)

    # Studio's own persistence keeps the thread's final state
    state = client.threads.get_state(thread_id)
    assert [item["item_id"] for item in state["values"]["recommendations"]] == ids


def test_run_context_is_honoured(client: Any) -> None:
    payload = {"task": "recommend", "user_id": DEMO_USER_ID}
    _, default_values, _ = _stream_run(client, payload)
    assert len(default_values["recommendations"]) == Context().top_k
    top_k = 3
    assert top_k < Context().top_k
    _, values, _ = _stream_run(client, payload, context={"top_k": top_k})
    ids = [item["item_id"] for item in values["recommendations"]]
    assert len(ids) == top_k
    assert ids == [item["item_id"] for item in default_values["recommendations"]][:top_k]


def test_studios_chat_view_runs_a_chat_on_its_thread(client: Any, studio_url: str) -> None:
    """Studio's chat view sends only the new user message; the reply joins the thread."""
    thread = client.threads.create()
    for text in ("a western", "now a comedy"):
        *_, last = client.runs.stream(
            thread["thread_id"],
            GRAPH_ID,
            input={"messages": [{"role": "user", "content": text}]},
            stream_mode="values",
        )
    values = last.data
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "human", "ai"]
    assert values["messages"][-1]["content"] == values["reply"]
    catalog = {item.item_id: item for item in load_demo().items}
    for item in values["recommendations"]:
        assert "Comedy" in catalog[item["item_id"]].attributes["genres"]


def _genres(item_id: str) -> tuple[str, ...]:
    item = next(item for item in load_demo().items if item.item_id == item_id)
    return tuple(item.attributes["genres"])


def test_a_second_run_on_a_thread_answers_its_own_input(client: Any) -> None:
    """A regression: a run sent without `count` and filters, after one with `count: 2` and an
    Animation filter on the same thread, still returned 2 Animation films."""
    thread_id = client.threads.create()["thread_id"]
    first = client.runs.wait(
        thread_id,
        GRAPH_ID,
        input={"task": "recommend", "user_id": DEMO_USER_ID, "count": 2, "filters": ANIMATION},
    )
    first_ids = [item["item_id"] for item in first["recommendations"]]
    assert len(first_ids) == 2
    assert all("Animation" in _genres(i) for i in first_ids), first_ids

    plain = {"task": "recommend", "user_id": DEMO_USER_ID}
    second = client.runs.wait(thread_id, GRAPH_ID, input=plain)
    second_ids = [item["item_id"] for item in second["recommendations"]]
    on_a_new_thread = client.runs.wait(client.threads.create()["thread_id"], GRAPH_ID, input=plain)
    assert second_ids == [item["item_id"] for item in on_a_new_thread["recommendations"]]
    assert len(second_ids) == Context().top_k
    assert not all("Animation" in _genres(i) for i in second_ids), second_ids

    state = client.threads.get_state(thread_id)["values"]
    assert state["count"] is None and state["filters"] == {}


def _chat_turn(client: Any, thread_id: str, text: str) -> tuple[list[Any], dict[str, Any]]:
    """One chat turn streamed as `messages-tuple` and `values`: the (message, metadata)
    pairs and the last values."""
    pairs: list[Any] = []
    values: dict[str, Any] = {}
    for part in client.runs.stream(
        thread_id,
        GRAPH_ID,
        input={"messages": [{"role": "user", "content": text}]},
        stream_mode=["messages-tuple", "values"],
    ):
        assert part.event != "error", part.data
        if part.event == "messages":
            pairs.append(part.data)
        elif part.event == "values":
            values = part.data
    return pairs, values


def test_messages_tuple_streams_the_chat_reply(client: Any) -> None:
    """What `useStream` and Studio's chat view read: each turn streams its assistant reply
    (and only that turn's) as (message, metadata) pairs."""
    thread_id = client.threads.create()["thread_id"]
    for turn, text in enumerate(("a scary film", "now something lighter, a comedy")):
        pairs, values = _chat_turn(client, thread_id, text)
        assert values["reply"]
        streamed = [message for message, _ in pairs if message["type"] in ("ai", "AIMessageChunk")]
        assert streamed, f"turn {turn}: no assistant message streamed: {json.dumps(pairs)[:500]}"
        assert {message["id"] for message in streamed} == {values["messages"][-1]["id"]}
        assert "".join(message["content"] for message in streamed) == values["reply"]
        assert all(metadata.get("langgraph_node") in AGENTS for _, metadata in pairs)
        assert [m["type"] for m in values["messages"]] == ["human", "ai"] * (turn + 1)


def test_strict_msgpack_loads_a_threads_checkpoint_without_a_warning(
    client: Any, studio: Studio
) -> None:
    """`langgraph dev` serves a copy of the exported graph: the copy keeps the msgpack
    allowlist compiled from the state schemas, so strict mode loads the agents' schemas."""
    thread_id = client.threads.create()["thread_id"]
    for count in (2, 3):
        values = client.runs.wait(
            thread_id,
            GRAPH_ID,
            input={"task": "recommend", "user_id": DEMO_USER_ID, "count": count},
        )
        assert len(values["recommendations"]) == count  # works in strict mode either way
    assert studio.checkpoint_type_warnings() == []
