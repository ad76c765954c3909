"""The streamed API end to end, on real `agentrec serve` processes: the SSE framing and event
contract of `POST /v1/recommendations/stream`, input errors before the stream, resuming with
`Last-Event-ID` (from the live run and from Redis), cancelling (by a dropped connection and
by `POST /v1/runs/{id}/cancel`), heartbeats on an idle stream, and chat sessions that
survive a restart of the API process on the same Redis.

Two servers run for the module, started together, on one external Redis started here (so
one process can follow the runs of the other, or take over its sessions after a restart),
each with its Chroma embedded in its own temp data directory:
- `server`: the default offline service;
- `slow_server`: the same service whose Ranker and Reflector ask an LLM (the fake
  OpenAI-compatible server of tests/fakes, answering 503 after `latency_s`): their calls
  make a run slow enough to cancel it, to leave a stream idle, and to count what the run
  still does after it was cancelled.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from agents.trace import EVENT_TYPES as TRACE_EVENT_TYPES
from memory.redis_server import EmbeddedRedis
from memory.short_term import ShortTermMemory
from tests.app.live_server import LiveServer, SseFrame, events_of, read_sse, start_all
from tests.fakes.openai_server import FakeOpenAIServer, Reply

AGENTS = {"Manager", "UserAnalyst", "Searcher", "ItemAnalyst", "Ranker", "Reflector"}
EVENT_TYPES = {"run_started", *TRACE_EVENT_TYPES, "run_finished"}
RUN_PATH = re.compile(r"^/v1/runs/([A-Za-z0-9._:-]+)/stream$")


def western_until_the_ranker(client: httpx.Client, session_id: str) -> str:
    """Ask `session_id` for "a western" (the run goes on if the client leaves) and read its
    stream until the Ranker starts; the run's id."""
    path = f"/v1/sessions/{session_id}/messages?on_disconnect=continue"
    with client.stream("POST", path, json={"message": "a western"}) as response:
        location = RUN_PATH.match(response.headers["content-location"])
        assert location is not None
        for frame in read_sse(response):
            if frame.is_event and frame.json().get("agent") == "Ranker":
                break
        return location.group(1)


LLM_LATENCY_S = 1.0
"""How long the fake LLM takes to answer (with a 503) each call of the slow server."""
IDLE_LLM_LATENCY_S = 8.0
"""The fake LLM's latency while a stream must stay idle past a heartbeat (every 5 s)."""
DEAD_RUN_WAIT_S = 9.0
"""How long a follower waits for the end of a run whose process died (then it gives up)."""


@dataclass
class Servers:
    server: LiveServer
    slow_server: LiveServer
    redis: EmbeddedRedis
    llm: FakeOpenAIServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("streaming")
    with contextlib.ExitStack() as stack:
        redis_server = EmbeddedRedis(root / "redis").start()
        stack.callback(redis_server.stop)
        llm = FakeOpenAIServer(default=Reply.error(503, "overloaded"), latency_s=LLM_LATENCY_S)
        llm.start()
        preset = root / "slow.toml"
        preset.write_text(
            "[context]\n"
            'ranker_model = "openai:fake-model"\n'
            'reflector_model = "openai:fake-model"\n'
            f'base_url = "{llm.base_url}"\n'
            "llm_max_retries = 0\n"
            "llm_timeout_s = 30.0\n",
            encoding="utf-8",
        )
        server = LiveServer(root / "data", {"REDIS_URL": redis_server.url})
        slow_server = LiveServer(
            root / "slow-data", {"AGENTREC_PRESET": str(preset), "REDIS_URL": redis_server.url}
        )
        stack.callback(slow_server.stop)
        stack.callback(server.stop)
        # runs first: wakes the slow server's pending LLM calls, so it stops at once
        stack.callback(llm.stop)
        start_all([server, slow_server])
        yield Servers(server, slow_server, redis_server, llm)


@pytest.fixture()
def server(servers: Servers) -> LiveServer:
    return servers.server


@pytest.fixture()
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture()
def slow_client(servers: Servers) -> Iterator[httpx.Client]:
    if servers.slow_server.process is None:  # a test killed it
        servers.slow_server.start()
    with servers.slow_server.client() as c:
        yield c


# -- helpers -------------------------------------------------------------------------------
@dataclass
class Streamed:
    status: int
    headers: httpx.Headers
    frames: list[SseFrame]

    @property
    def events(self) -> list[dict[str, Any]]:
        return events_of(self.frames)

    @property
    def run_id(self) -> str:
        match = RUN_PATH.match(self.headers.get("content-location", ""))
        assert match, f"no run Content-Location: {self.headers.get('content-location')!r}"
        return match.group(1)


def stream(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    last_event_id: str | None = None,
    stop_after: int | None = None,
) -> Streamed:
    """Open a stream and read it to its end, or drop the connection after `stop_after`
    events (heartbeat comments do not count)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    frames: list[SseFrame] = []
    with client.stream(method, path, json=body, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            return Streamed(response.status_code, response.headers, [])
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in read_sse(response):
            frames.append(frame)
            if stop_after is not None and sum(f.is_event for f in frames) >= stop_after:
                break
    return Streamed(200, response.headers, frames)


def assert_well_formed(frames: list[SseFrame], run_id: str, first_seq: int = 1) -> None:
    """Every event frame: `id:` the next seq, `event:` the data's type, data with run_id,
    seq and ts (not going back in time)."""
    events = [f for f in frames if f.is_event]
    assert events, "no events"
    last_ts = 0.0
    for expected_seq, frame in enumerate(events, start=first_seq):
        data = frame.json()
        assert frame.id == str(expected_seq), (frame.id, expected_seq, data.get("type"))
        assert frame.event == data["type"]
        assert data["type"] in EVENT_TYPES
        assert data["run_id"] == run_id
        assert data["seq"] == expected_seq
        assert isinstance(data["ts"], float) and data["ts"] >= last_ts
        last_ts = data["ts"]


def error_body(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def events_frames(events: list[dict[str, Any]]) -> list[SseFrame]:
    """Events back as frames (for `assert_well_formed` on collected events)."""
    return [SseFrame(event=e["type"], id=str(e["seq"]), data=json.dumps(e)) for e in events]


def replay(client: httpx.Client, run_id: str, after: int = 0) -> Streamed:
    return stream(client, "GET", f"/v1/runs/{run_id}/stream", last_event_id=str(after))


def item_ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["item_id"] for item in items]


def llm_calls(llm: FakeOpenAIServer) -> int:
    return len(llm.chat_requests())


def assert_cancelled(events: list[dict[str, Any]]) -> None:
    """How a cancelled run ends: an error `cancelled`, then run_finished with status error
    and no recommendations (and no recommendations event before)."""
    assert [e["type"] for e in events[-2:]] == ["error", "run_finished"]
    error, finished = events[-2:]
    assert error["code"] == "cancelled" and error["recoverable"] is False
    assert finished["status"] == "error" and finished["output"]["recommendations"] == []
    assert "recommendations" not in [e["type"] for e in events]


# -- the stream of a recommendation run ----------------------------------------------------
def test_a_recommendation_stream_follows_the_event_contract(client: httpx.Client) -> None:
    before = time.time()
    client.headers["X-Request-ID"] = "stream-contract-1"
    run = stream(
        client,
        "POST",
        "/v1/recommendations/stream",
        body={"user_id": "u001", "count": 5, "fields": ["genres"], "context": {"page": "home"}},
    )
    after = time.time()
    assert run.headers["x-request-id"] == "stream-contract-1"

    assert run.status == 200
    assert run.headers["content-type"].startswith("text/event-stream")
    run_id = run.run_id
    assert_well_formed(run.frames, run_id)
    events = run.events
    first, last = events[0], events[-1]
    assert first["type"] == "run_started" and first["task"] == "recommend"
    assert first["recommendation_id"]
    assert first["user_id"] == "u001" and first["context"] == {"page": "home"}
    assert last["type"] == "run_finished" and last["status"] == "success"
    assert last["recommendation_id"] == first["recommendation_id"]
    assert before - 1 <= first["ts"] <= last["ts"] <= after + 1
    assert [e["type"] for e in events].count("run_started") == 1
    assert [e["type"] for e in events].count("run_finished") == 1

    agent_events = [e for e in events if "agent" in e]
    assert {e["agent"] for e in agent_events} == AGENTS
    started = [e["agent"] for e in events if e["type"] == "agent_started"]
    finished = [e["agent"] for e in events if e["type"] == "agent_finished"]
    assert sorted(started) == sorted(finished)
    assert AGENTS - {"Manager"} <= set(started)

    (recommendations,) = [e for e in events if e["type"] == "recommendations"]
    output = last["output"]
    assert item_ids(recommendations["items"]) == item_ids(output["recommendations"])
    assert recommendations["items"] == output["recommendations"]
    assert len(output["recommendations"]) == 5
    assert [i["rank"] for i in output["recommendations"]] == [1, 2, 3, 4, 5]
    for item in output["recommendations"]:
        assert item["title"] and item["source"] in {"personalized", "fallback", "exploration"}
        assert set(item["properties"]) == {"genres"}
    assert output["fallback_used"] == any(
        i["source"] == "fallback" for i in output["recommendations"]
    )


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "u001", "count": 0},
        {"user_id": "u001", "count": 51},
        {"user_id": "u001", "filters": {"include": {"colour": ["red"]}}},
        {"user_id": "u001", "count": 3, "colour": "red"},
        {"user_id": "u001", "filters": {"include": {"genres": ["Horror"]}, "also": {}}},
        {"user_id": "u001", "fields": ["colour"]},
        {"user_id": "not a valid id!"},
    ],
    ids=[
        "count-0",
        "count-51",
        "unknown-filter",
        "extra-field",
        "extra-filter-field",
        "unknown-field",
        "bad-user-id",
    ],
)
def test_bad_input_gets_an_error_before_any_stream(
    client: httpx.Client, body: dict[str, Any]
) -> None:
    response = client.post("/v1/recommendations/stream", json=body)
    assert response.status_code == 422
    assert "content-location" not in response.headers
    assert error_body(response)["code"] == "invalid_request"


def test_an_unknown_on_disconnect_mode_is_a_422(client: httpx.Client) -> None:
    response = client.post("/v1/recommendations/stream?on_disconnect=never", json={"count": 2})
    assert response.status_code == 422
    assert error_body(response)["code"] == "invalid_request"


def test_resume_errors_are_typed(client: httpx.Client) -> None:
    unknown = client.get(f"/v1/runs/{uuid.uuid4().hex}/stream")
    assert unknown.status_code == 404
    assert error_body(unknown)["code"] == "run_not_found"
    run = stream(client, "POST", "/v1/recommendations/stream", body={"count": 2})
    bad = client.get(f"/v1/runs/{run.run_id}/stream", headers={"Last-Event-ID": "seven"})
    assert bad.status_code == 422
    assert error_body(bad)["code"] == "invalid_request"
    missing_session = client.post(
        f"/v1/sessions/{uuid.uuid4().hex}/messages", json={"message": "hi"}
    )
    assert missing_session.status_code == 404
    assert error_body(missing_session)["code"] == "session_not_found"


# -- resuming --------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["offline", "slow"])
def test_a_dropped_stream_resumes_with_every_event_once(servers: Servers, which: str) -> None:
    """On the offline server the run is over when the client comes back; on the slow one
    it is still waiting for its LLM calls (the resume follows it live)."""
    live_server = servers.server if which == "offline" else servers.slow_server
    with live_server.client() as client:
        _drop_and_resume(client)


def _drop_and_resume(client: httpx.Client) -> None:
    body = {"user_id": "u002", "count": 8}
    head = stream(
        client,
        "POST",
        "/v1/recommendations/stream?on_disconnect=continue",
        body=body,
        stop_after=3,
    )
    assert head.status == 200
    location = head.headers["content-location"]
    seen = [f for f in head.frames if f.is_event]
    assert len(seen) == 3 and seen[0].event == "run_started"

    rest = stream(client, "GET", location, last_event_id=seen[-1].id)
    assert rest.status == 200
    union = seen + [f for f in rest.frames if f.is_event]
    assert_well_formed(union, head.run_id)
    assert union[-1].event == "run_finished"
    assert union[-1].json()["status"] == "success"

    full = stream(client, "GET", location, last_event_id="0")
    assert [f.json() for f in full.frames if f.is_event] == [f.json() for f in union]
    no_header = stream(client, "GET", location)
    assert no_header.events == full.events
    tail = stream(client, "GET", location, last_event_id=str(len(union) - 2))
    assert tail.events == full.events[-2:]


def test_a_json_run_replays_its_summary_from_redis(client: httpx.Client) -> None:
    """A JSON run never enters the live registry of streams: its replay comes from Redis,
    where it keeps only its summary (run_started, then run_finished with the item ids)."""
    answer = client.post("/v1/recommendations", json={"user_id": "u003", "count": 4})
    assert answer.status_code == 200
    result = answer.json()

    full = replay(client, result["run_id"])
    assert full.status == 200
    started, finished = full.frames[0], full.frames[-1]
    assert [f.id for f in full.frames if f.is_event] == [started.id, finished.id]
    events = full.events
    assert [e["type"] for e in events] == ["run_started", "run_finished"]
    assert_well_formed([started], result["run_id"])
    assert int(finished.id or 0) == events[-1]["seq"] > 2  # the agents' events were not kept
    assert events[0]["recommendation_id"] == result["recommendation_id"]
    assert events[-1]["trace"] == "summary"
    assert item_ids(events[-1]["output"]["recommendations"]) == item_ids(result["items"])

    assert replay(client, result["run_id"], after=1).events == events[1:]
    assert replay(client, result["run_id"], after=events[-1]["seq"]).events == []


def test_forgetting_a_user_makes_their_runs_unreplayable(client: httpx.Client) -> None:
    """Forgetting a user also forgets the runs this server still holds in memory for resumes
    (a regression: streamed runs stayed replayable for 60 s after DELETE /v1/users/{id})."""
    user = f"forget-{uuid.uuid4().hex[:10]}"
    answer = client.post("/v1/recommendations", json={"user_id": user, "count": 3})
    assert answer.status_code == 200
    streamed = stream(client, "POST", "/v1/recommendations/stream", body={"user_id": user})
    assert streamed.events[-1]["type"] == "run_finished"
    assert client.delete(f"/v1/users/{user}").status_code == 200

    assert client.get(f"/v1/runs/{answer.json()['run_id']}/stream").status_code == 404
    assert client.get(f"/v1/runs/{streamed.run_id}/stream").status_code == 404


# -- cancelling ------------------------------------------------------------------------------
def test_a_full_slow_run_calls_the_llm_twice(servers: Servers, slow_client: httpx.Client) -> None:
    """The baseline of the cancellation tests: left alone, a run of the slow server asks
    the LLM for the Ranker and then for the Reflector, and still answers."""
    before = llm_calls(servers.llm)
    run = stream(slow_client, "POST", "/v1/recommendations/stream", body={"count": 3})
    assert_well_formed(run.frames, run.run_id)
    finished = run.events[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "success"
    assert len(finished["output"]["recommendations"]) == 3
    assert {"Ranker", "Reflector"} <= set(finished["output"]["degraded"])
    assert llm_calls(servers.llm) - before == 2


def _drop_at_ranker(client: httpx.Client, on_disconnect: str) -> tuple[str, list[SseFrame]]:
    """Start a slow run and drop its stream once the Ranker has started (its LLM call is on
    its way); returns the run id and the frames seen."""
    frames: list[SseFrame] = []
    path = f"/v1/recommendations/stream?on_disconnect={on_disconnect}"
    with client.stream("POST", path, json={"user_id": "u004", "count": 3}) as response:
        assert response.status_code == 200
        location = response.headers["content-location"]
        for frame in read_sse(response):
            frames.append(frame)
            if frame.is_event and frame.json().get("agent") == "Ranker":
                break
    match = RUN_PATH.match(location)
    assert match
    return match.group(1), frames


def test_a_dropped_stream_cancels_its_run(servers: Servers, slow_client: httpx.Client) -> None:
    before = llm_calls(servers.llm)
    run_id, frames = _drop_at_ranker(slow_client, "cancel")
    dropped_at = time.monotonic()

    # A resume follows the run until it ends: a run that went on would end with its
    # recommendations, a cancelled one ends typed.
    resumed = replay(slow_client, run_id)
    assert resumed.status == 200
    assert_well_formed(resumed.frames, run_id)
    assert resumed.events[0]["type"] == "run_started"
    assert_cancelled(resumed.events)  # as the live registry tells it (a regression test)
    seen = [f.json() for f in frames if f.is_event]
    assert resumed.events[: len(seen)] == seen

    answer = slow_client.post(f"/v1/runs/{run_id}/cancel")
    assert answer.status_code == 202
    assert answer.json() == {"run_id": run_id, "status": "finished"}

    # Nothing runs on: the Ranker's call is the last the LLM sees, where a run that went on
    # would call it again for the Reflector as soon as the first call was answered.
    time.sleep(max(0.0, dropped_at + LLM_LATENCY_S + 0.7 - time.monotonic()))
    assert llm_calls(servers.llm) - before <= 1


def test_cancel_a_run_in_flight_after_an_idle_stream_got_heartbeats(
    servers: Servers, slow_client: httpx.Client
) -> None:
    """A run waiting on a slow LLM leaves its (resumed) stream idle: heartbeat comments
    keep it open; `POST /v1/runs/{id}/cancel` then stops the run and ends the stream."""
    servers.llm.latency_s = IDLE_LLM_LATENCY_S
    try:
        run_id, frames = _drop_at_ranker(slow_client, "continue")
        last_id = [f for f in frames if f.is_event][-1].id
        assert last_id is not None
        heard: list[SseFrame] = []
        path = f"/v1/runs/{run_id}/stream"
        with slow_client.stream("GET", path, headers={"Last-Event-ID": last_id}) as response:
            assert response.status_code == 200
            opened = time.monotonic()
            frames_of = read_sse(response)
            for frame in frames_of:
                heard.append(frame)
                if not frame.is_event:
                    break
            waited = time.monotonic() - opened
            assert not heard[-1].is_event and "ping" in heard[-1].comments
            assert all(int(f.id or 0) > int(last_id) for f in heard if f.is_event)

            cancelled_at = time.monotonic()
            answer = slow_client.post(f"/v1/runs/{run_id}/cancel")
            assert answer.status_code == 202
            assert answer.json() == {"run_id": run_id, "status": "cancelling"}
            heard.extend(frames_of)  # the stream ends: the run is over
            ended_after = time.monotonic() - cancelled_at
        assert waited < IDLE_LLM_LATENCY_S  # the heartbeat came while the run was idle
        # a run that went on would answer the Ranker's call first (about 3 s after the
        # cancel) and then wait for the Reflector's
        assert ended_after < IDLE_LLM_LATENCY_S - 1
        assert_cancelled(events_of(heard))
        again = slow_client.post(f"/v1/runs/{run_id}/cancel")
        assert again.status_code == 202 and again.json()["status"] == "finished"
    finally:
        servers.llm.latency_s = LLM_LATENCY_S


def test_another_process_follows_a_run_in_flight_from_redis(
    client: httpx.Client, slow_client: httpx.Client
) -> None:
    """A client that lost the replica running its run resumes on another one: the events
    come from the run's Redis trace, live until run_finished."""
    run_id, frames = _drop_at_ranker(slow_client, "continue")
    seen = [f for f in frames if f.is_event]
    followed = stream(client, "GET", f"/v1/runs/{run_id}/stream", last_event_id=seen[-1].id)
    assert followed.status == 200
    union = seen + [f for f in followed.frames if f.is_event]
    assert_well_formed(union, run_id)
    finished = union[-1].json()
    assert finished["type"] == "run_finished" and finished["status"] == "success"
    assert "recommendations" in [f.event for f in followed.frames]
    assert [f.json() for f in union] == replay(slow_client, run_id).events


def test_a_run_cancelled_on_one_process_ends_typed_for_a_follower_on_another(
    client: httpx.Client, slow_client: httpx.Client
) -> None:
    run_id, frames = _drop_at_ranker(slow_client, "continue")
    last_id = [f for f in frames if f.is_event][-1].id
    assert last_id is not None
    path = f"/v1/runs/{run_id}/stream"
    with client.stream("GET", path, headers={"Last-Event-ID": last_id}) as response:
        assert response.status_code == 200
        cancel = slow_client.post(f"/v1/runs/{run_id}/cancel")
        assert cancel.status_code == 202 and cancel.json()["status"] == "cancelling"
        events = events_of(read_sse(response))
    assert_cancelled(events)


def test_a_cancel_sent_to_another_process_stops_the_run(
    client: httpx.Client, slow_client: httpx.Client
) -> None:
    """Behind a load balancer the cancel may reach a replica that does not run the run: it
    flags the cancel in Redis, and the running process sees the flag and stops the run."""
    run_id, frames = _drop_at_ranker(slow_client, "continue")
    cancel = client.post(f"/v1/runs/{run_id}/cancel")
    assert cancel.status_code == 202 and cancel.json()["status"] == "cancelling"
    last_id = [f for f in frames if f.is_event][-1].id
    followed = stream(client, "GET", f"/v1/runs/{run_id}/stream", last_event_id=last_id)
    assert_cancelled(followed.events)
    again = client.post(f"/v1/runs/{run_id}/cancel")
    assert again.status_code == 202 and again.json()["status"] == "finished"


def test_cancel_an_unknown_run_is_a_404(client: httpx.Client) -> None:
    answer = client.post(f"/v1/runs/{uuid.uuid4().hex}/cancel")
    assert answer.status_code == 404
    assert error_body(answer)["code"] == "run_not_found"


# -- chat ------------------------------------------------------------------------------------
def chat(client: httpx.Client, session_id: str, message: str) -> Streamed:
    run = stream(client, "POST", f"/v1/sessions/{session_id}/messages", body={"message": message})
    assert run.status == 200
    assert_well_formed(run.frames, run.run_id)
    return run


def assert_reply_streamed(run: Streamed) -> str:
    """The tokens of a chat run spell its reply; returns the reply."""
    events = run.events
    assert events[0]["type"] == "run_started" and events[0]["task"] == "chat"
    finished = events[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "success"
    reply = finished["output"]["reply"]
    tokens = [e for e in events if e["type"] == "token"]
    assert len(tokens) > 1 and reply
    assert "".join(e["text"] for e in tokens) == reply
    (recommendations,) = [e for e in events if e["type"] == "recommendations"]
    assert recommendations["items"] == finished["output"]["recommendations"]
    return str(reply)


def assert_turns(
    client: httpx.Client,
    session_id: str,
    user_id: str | None,
    exchanges: list[tuple[str, Streamed]],
) -> None:
    answer = client.get(f"/v1/sessions/{session_id}")
    assert answer.status_code == 200
    session = answer.json()
    assert session["session_id"] == session_id and session["user_id"] == user_id
    expected: list[tuple[str, str]] = []
    for message, run in exchanges:
        expected += [("user", message), ("assistant", run.events[-1]["output"]["reply"])]
    assert [(t["role"], t["text"]) for t in session["turns"]] == expected
    assistant_turns = [t for t in session["turns"] if t["role"] == "assistant"]
    for turn, (_, run) in zip(assistant_turns, exchanges, strict=True):
        assert turn["meta"]["run_id"] == run.run_id
        output = run.events[-1]["output"]
        assert turn["meta"]["item_ids"] == item_ids(output["recommendations"])
    timestamps = [t["ts"] for t in session["turns"]]
    assert timestamps == sorted(timestamps)


def test_chat_streams_the_reply_and_keeps_the_history(client: httpx.Client) -> None:
    created = client.post("/v1/sessions", json={"user_id": "u005"})
    assert created.status_code == 201
    session_id = created.json()["session_id"]
    assert created.json()["user_id"] == "u005"

    first = chat(client, session_id, "I would like a funny comedy from the 90s")
    assert_reply_streamed(first)
    assert_turns(client, session_id, "u005", [("I would like a funny comedy from the 90s", first)])
    second = chat(client, session_id, "something scarier, please")
    assert_reply_streamed(second)
    assert second.run_id != first.run_id
    assert_turns(
        client,
        session_id,
        "u005",
        [
            ("I would like a funny comedy from the 90s", first),
            ("something scarier, please", second),
        ],
    )


def test_an_anonymous_chat_session_asks_back_then_recommends(client: httpx.Client) -> None:
    created = client.post("/v1/sessions", json={})
    assert created.status_code == 201 and created.json()["user_id"] is None
    session_id = created.json()["session_id"]

    vague = chat(client, session_id, "hello there 👋")
    finished = vague.events[-1]
    assert finished["status"] == "success" and finished["output"]["recommendations"] == []
    question = "".join(e["text"] for e in vague.events if e["type"] == "token")
    assert question and question == finished["output"]["reply"]
    assert "recommendations" not in [e["type"] for e in vague.events]

    asked = chat(client, session_id, "une comédie drôle des années 90, a funny comedy")
    assert_reply_streamed(asked)
    assert_turns(
        client,
        session_id,
        None,
        [("hello there 👋", vague), ("une comédie drôle des années 90, a funny comedy", asked)],
    )


def _dislike_first_and_ask_again(
    client: httpx.Client, session_id: str, who: dict[str, str]
) -> tuple[str, list[str]]:
    """Chat, dislike the first recommended item (as `who`), ask the same again; returns the
    disliked item and the second answer's items."""
    message = "a scary horror film please"
    first = chat(client, session_id, message).events[-1]["output"]["recommendations"]
    disliked = first[0]["item_id"]
    dislike = {"event_id": uuid.uuid4().hex, "type": "dislike", "item_id": disliked, **who}
    stored = client.post("/v1/events", json={"events": [dislike]})
    assert stored.status_code == 202 and stored.json()["stored"] == 1
    second = chat(client, session_id, message).events[-1]["output"]["recommendations"]
    return disliked, item_ids(second)


def test_a_dislike_reaches_the_chat_of_a_user(client: httpx.Client) -> None:
    session_id = client.post("/v1/sessions", json={"user_id": "u040"}).json()["session_id"]
    disliked, again = _dislike_first_and_ask_again(client, session_id, {"user_id": "u040"})
    assert again and disliked not in again


def test_a_dislike_reaches_an_anonymous_chat(client: httpx.Client) -> None:
    """A regression: an anonymous chat remembered under a second random id, so feedback sent
    with the chat's session_id never reached it."""
    session_id = client.post("/v1/sessions", json={}).json()["session_id"]
    disliked, again = _dislike_first_and_ask_again(client, session_id, {"session_id": session_id})
    assert again and disliked not in again


def musical_share(client: httpx.Client, run: Streamed) -> float:
    """The share of a run's recommended items that are musicals (by GET /v1/items)."""
    items = item_ids(run.events[-1]["output"]["recommendations"])
    assert items
    genres = [client.get(f"/v1/items/{i}").json()["attributes"]["genres"] for i in items]
    return sum("Musical" in g for g in genres) / len(genres)


def test_a_session_answers_one_message_at_a_time(slow_client: httpx.Client) -> None:
    session_id = slow_client.post("/v1/sessions", json={"user_id": "u043"}).json()["session_id"]
    path = f"/v1/sessions/{session_id}/messages"
    with slow_client.stream("POST", path, json={"message": "a western"}) as response:
        assert response.status_code == 200
        busy = slow_client.post(path, json={"message": "a musical"})
        assert busy.status_code == 409
        assert error_body(busy)["code"] == "session_busy"
        first = events_of(read_sse(response))
    assert first[-1]["type"] == "run_finished"
    second = chat(slow_client, session_id, "a musical")
    assert second.events[-1]["type"] == "run_finished"
    turns = slow_client.get(f"/v1/sessions/{session_id}").json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]


def test_a_chat_answers_the_genre_asked(client: httpx.Client) -> None:
    session_id = client.post("/v1/sessions", json={"user_id": "u041"}).json()["session_id"]
    assert musical_share(client, chat(client, session_id, "a musical")) >= 0.5


def test_a_cancelled_chat_turn_does_not_answer_the_next_message(
    slow_client: httpx.Client,
) -> None:
    """A regression: the next message after a cancelled chat turn was not read; the graph
    resumed the cancelled run from the session's checkpoint and answered the old question."""
    session_id = slow_client.post("/v1/sessions", json={"user_id": "u042"}).json()["session_id"]
    run_id = western_until_the_ranker(slow_client, session_id)
    cancel = slow_client.post(f"/v1/runs/{run_id}/cancel")
    assert cancel.status_code == 202 and cancel.json()["status"] == "cancelling"
    assert_cancelled(replay(slow_client, run_id).events)

    answer = chat(slow_client, session_id, "a musical")
    assert musical_share(slow_client, answer) >= 0.5
    # the history stays in user/assistant pairs: the cancelled turn's answer is empty
    turns = slow_client.get(f"/v1/sessions/{session_id}").json()["turns"]
    reply = answer.events[-1]["output"]["reply"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "a western"),
        ("assistant", ""),
        ("user", "a musical"),
        ("assistant", reply),
    ]
    assert [t["meta"]["run_id"] for t in turns[1::2]] == [run_id, answer.run_id]
    assert [t["meta"]["status"] for t in turns[1::2]] == ["error", "success"]


def test_sessions_and_traces_survive_a_restart_of_the_api(servers: Servers) -> None:
    """Server A and server B are two processes on the same Redis and data directory: B
    continues A's chat session and replays A's runs. (Runs last: it restarts `server`.)"""
    server = servers.server
    with server.client() as a:
        session_id = a.post("/v1/sessions", json={"user_id": "u006"}).json()["session_id"]
        first = chat(a, session_id, "an animated film for the kids")
        assert_reply_streamed(first)
        streamed = stream(a, "POST", "/v1/recommendations/stream", body={"user_id": "u006"})
        assert streamed.events[-1]["type"] == "run_finished"
    server.restart()
    with server.client() as b:
        assert_turns(b, session_id, "u006", [("an animated film for the kids", first)])
        second = chat(b, session_id, "now something for the grown-ups")
        assert_reply_streamed(second)
        assert_turns(
            b,
            session_id,
            "u006",
            [("an animated film for the kids", first), ("now something for the grown-ups", second)],
        )
        # A's streamed run, finished on the other process, resumes from Redis on this one
        replayed = replay(b, streamed.run_id)
        assert replayed.events == streamed.events
        resumed = replay(b, streamed.run_id, after=5)
        assert_well_formed(resumed.frames, streamed.run_id, first_seq=6)
        assert resumed.events == streamed.events[5:]
        chat_replay = replay(b, first.run_id)
        assert chat_replay.events == first.events


def test_a_run_whose_process_died_ends_typed_for_a_follower(
    servers: Servers, client: httpx.Client
) -> None:
    """A regression: a follower on another process waited forever for a run whose process
    was killed. Now the run is declared lost (error run_lost, run_finished) once no sign of
    life came for a few seconds. (Runs last: it kills the slow server, which `slow_client`
    would start again.)"""
    slow = servers.slow_server
    with slow.client() as c:
        run_id, frames = _drop_at_ranker(c, "continue")
    assert slow.process is not None
    slow.process.kill()
    slow.stop()
    last_id = [f for f in frames if f.is_event][-1].id
    assert last_id is not None

    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEAD_RUN_WAIT_S
    path = f"/v1/runs/{run_id}/stream"
    with client.stream("GET", path, headers={"Last-Event-ID": last_id}) as response:
        assert response.status_code == 200
        for frame in read_sse(response):  # heartbeats come every 5 s
            if frame.is_event:
                events.append(frame.json())
            if time.monotonic() > deadline:
                break
    assert events, f"no event within {DEAD_RUN_WAIT_S} s of following a run whose process died"
    assert_well_formed(events_frames(events), run_id, first_seq=int(last_id) + 1)
    assert [e["type"] for e in events[-2:]] == ["error", "run_finished"]
    assert events[-2]["code"] == "run_lost" and events[-2]["recoverable"] is False
    assert events[-1]["status"] == "error"
    assert "recommendations" not in [e["type"] for e in events]
    # every later reader sees the same end
    assert replay(client, run_id).events[-2:] == events[-2:]


def test_a_session_whose_replica_died_mid_reply_answers_on_another(
    servers: Servers, client: httpx.Client
) -> None:
    """A regression: a chat session stayed claimed (409 session_busy) for 5 minutes after
    the replica answering it died mid-reply, and kept a user turn with no reply. Now another
    replica takes the claim over once the run is lost (no sign of life for a few seconds),
    ends the lost run typed and answers. (Kills the slow server, which `slow_client` would
    start again.)"""
    slow = servers.slow_server
    if slow.process is None:
        slow.start()
    with slow.client() as c:
        session_id = c.post("/v1/sessions", json={"user_id": "u044"}).json()["session_id"]
        lost_run = western_until_the_ranker(c, session_id)
        assert slow.process is not None
        slow.process.kill()
    slow.stop()

    deadline = time.monotonic() + DEAD_RUN_WAIT_S + 10
    while True:  # 409 while the dead run's last sign of life is recent
        answer = stream(
            client, "POST", f"/v1/sessions/{session_id}/messages", body={"message": "a musical"}
        )
        if answer.status != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status == 200, "the session stayed busy after its replica died"
    assert answer.events[-1]["type"] == "run_finished"
    assert answer.events[-1]["status"] == "success"
    turns = client.get(f"/v1/sessions/{session_id}").json()["turns"]
    reply = answer.events[-1]["output"]["reply"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "a western"),
        ("assistant", ""),
        ("user", "a musical"),
        ("assistant", reply),
    ]
    assert turns[1]["meta"]["run_id"] == lost_run and turns[1]["meta"]["status"] == "error"
    lost = replay(client, lost_run).events  # every reader sees the lost run end typed
    assert [e["type"] for e in lost[-2:]] == ["error", "run_finished"]
    assert lost[-2]["code"] == "run_lost"
    cancel = client.post(f"/v1/runs/{lost_run}/cancel")
    assert cancel.status_code == 202 and cancel.json()["status"] == "finished"


def test_a_streamed_run_is_stored_before_its_answer_starts(
    servers: Servers, client: httpx.Client
) -> None:
    """A replica that dies right after its 200 must leave a run that other replicas know
    (and declare lost), not an unknown run id: `run_started` is in Redis by the time the
    response's headers arrive, before any event is read."""
    reader = redis.Redis.from_url(servers.redis.url)
    try:
        for n in range(5):
            path = "/v1/recommendations/stream"
            with client.stream("POST", path, json={"user_id": f"u00{n + 1}"}) as response:
                assert response.status_code == 200
                location = RUN_PATH.match(response.headers["content-location"])
                assert location is not None
                stored = ShortTermMemory(reader).replay(location.group(1))
                assert stored and stored[0]["type"] == "run_started"
                events_of(read_sse(response))
    finally:
        reader.close()
