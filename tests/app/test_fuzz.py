"""Property-based fuzzing of every OpenAPI operation on a real server (schemathesis 4).

One `agentrec serve` (offline preset, no API keys, no rate limit, its own data folder with
embedded Redis and Chroma) gets schemathesis' coverage cases and `EXAMPLES` generated cases
per operation and mode, seeded (see `benchmarks.fuzz` for the checks; the benchmark runs
the same fuzz longer). The summary line is printed in the test output.

Bugs the fuzzer found go to `benchmarks.fuzz.KNOWN_BUGS` with a minimal reproducer (their
5xx counted apart, so a new server error still fails the test) until they are fixed; fixed
ones move to `FIXED_BUGS`, which `test_found_bug_stays_fixed` replays as regression cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from benchmarks.fuzz import (
    DEFAULT_SEED,
    FIXED_BUGS,
    Finding,
    Fuzzer,
    FuzzReport,
    KnownBug,
    KnownIds,
    discover_known_ids,
    error_model_problem,
    known_bug,
    local_service,
    parse_sse,
    sse_problem,
)

EXAMPLES = 10
"""Generated cases per operation and generation mode (valid, invalid) in CI."""

SSE_OPERATIONS = (
    "POST /v1/recommendations/stream",
    "GET /v1/runs/{run_id}/stream",
    "POST /v1/sessions/{session_id}/messages",
)
UNDOCUMENTED_BUT_EXPECTED = {400, 404}
"""Statuses the error model defines (400 invalid_json, 404 *_not_found) that the OpenAPI
does not list per operation yet; any other undocumented status fails the test."""


# -- the fuzz run --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_service(Path(tmp_path_factory.mktemp("fuzz"))) as url:
        yield url


@pytest.fixture(scope="module")
def known_ids(service_url: str) -> KnownIds:
    return discover_known_ids(service_url)


@pytest.fixture(scope="module")
def report(service_url: str, known_ids: KnownIds) -> FuzzReport:
    fuzzer = Fuzzer(
        service_url, examples=EXAMPLES, seed=DEFAULT_SEED, known=known_ids, known_bug=known_bug
    )
    return fuzzer.run()


def _listed(findings: list[Finding]) -> str:
    return "\n".join(
        f"[{f.kind}] {f.operation}: {f.title} (x{f.occurrences})\n  {f.reproducer[:1500]}\n"
        f"  -> {f.response}"
        for f in findings
    )


def test_fuzz_finds_no_server_errors(
    report: FuzzReport, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():  # the figure belongs in every test run's output
        print("\n  " + report.describe())
    assert report.cases >= 19 * EXAMPLES
    assert report.server_errors == 0, _listed(report.of_kind("server_error"))
    assert report.hangs == 0, _listed(report.of_kind("hang"))


def test_every_operation_is_fuzzed(report: FuzzReport, service_url: str) -> None:
    spec = requests.get(f"{service_url}/openapi.json", timeout=10).json()
    operations = {
        f"{method.upper()} {path}": op
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
    }
    assert set(report.operations) == set(operations)
    for label, stats in report.operations.items():
        assert sum(stats.statuses.values()) == stats.cases > 0, label
        if operations[label].get("parameters") or operations[label].get("requestBody"):
            assert stats.positive >= EXAMPLES, (label, stats)
        if operations[label].get("requestBody"):
            assert stats.negative >= EXAMPLES, (label, stats)


def test_responses_match_the_openapi(report: FuzzReport) -> None:
    mismatches = report.of_kind("response_schema", "content_type")
    assert not mismatches, _listed(mismatches)


def test_every_error_follows_the_error_model(report: FuzzReport) -> None:
    broken = report.of_kind("error_model")
    assert not broken, _listed(broken)


def test_statuses_are_documented_or_defined_by_the_error_model(report: FuzzReport) -> None:
    undocumented = [
        f
        for f in report.of_kind("undocumented_status")
        if f.status is not None and f.status < 500 and f.status not in UNDOCUMENTED_BUT_EXPECTED
    ]
    assert not undocumented, _listed(undocumented)


@pytest.mark.parametrize("label", SSE_OPERATIONS)
def test_streams_answer_good_input_with_events_and_bad_input_with_4xx(
    report: FuzzReport, label: str
) -> None:
    statuses = report.operations[label].statuses
    assert statuses[200] > 0, statuses  # good input reached a full stream
    assert sum(n for status, n in statuses.items() if 400 <= status < 500) > 0, statuses
    assert all(status == 200 or 400 <= status < 600 for status in statuses), statuses
    broken = [f for f in report.of_kind("sse", "hang") if f.operation == label]
    assert not broken, _listed(broken)


# -- the checks themselves can fail ----------------------------------------------------------
class _FakeResponse:
    def __init__(self, content: bytes, headers: dict[str, list[str]]) -> None:
        self.content = content
        self.headers = headers
        self.status_code = 200


def _event(type_: str, seq: int, run_id: str = "r1") -> str:
    data = f'{{"type": "{type_}", "run_id": "{run_id}", "seq": {seq}, "ts": 1.0}}'
    return f"event: {type_}\nid: {seq}\ndata: {data}\n\n"


SSE_HEADERS = {"content-type": ["text/event-stream; charset=utf-8"]}


def test_sse_check_accepts_a_whole_stream_and_flags_broken_ones() -> None:
    whole = _event("run_started", 1) + ": ping\n\n" + _event("token", 2) + _event("run_finished", 3)
    assert [e["event"] for e in parse_sse(whole)] == ["run_started", "token", "run_finished"]
    ok = _FakeResponse(whole.encode(), SSE_HEADERS)
    assert sse_problem(ok, resumed_after=None, new_run=False) is None
    assert sse_problem(ok, resumed_after=None, new_run=True) is not None  # no Content-Location
    unfinished = _FakeResponse(
        (_event("run_started", 1) + _event("token", 2)).encode(), SSE_HEADERS
    )
    assert "run_finished" in str(sse_problem(unfinished, resumed_after=None, new_run=False))
    repeated = _FakeResponse((_event("token", 2) + _event("token", 2)).encode(), SSE_HEADERS)
    assert "seq" in str(sse_problem(repeated, resumed_after=1, new_run=False))
    early = _FakeResponse(_event("token", 2).encode(), SSE_HEADERS)
    assert sse_problem(early, resumed_after=2, new_run=False) is not None
    as_json = _FakeResponse(whole.encode(), {"content-type": ["application/json"]})
    assert sse_problem(as_json, resumed_after=None, new_run=False) is not None


def test_error_model_check_flags_other_bodies() -> None:
    body = b'{"error": {"code": "c", "message": "m", "details": null, "request_id": "r1"}}'
    headers = {"content-type": ["application/json"], "x-request-id": ["r1"]}
    assert error_model_problem(_FakeResponse(body, headers)) is None
    assert error_model_problem(_FakeResponse(body, {"x-request-id": ["r2"]})) is not None
    assert error_model_problem(_FakeResponse(b'{"detail": "x"}', headers)) is not None
    assert error_model_problem(_FakeResponse(b"Internal Server Error", headers)) is not None


# -- bugs the fuzzer found (fixed) -----------------------------------------------------------
@pytest.mark.parametrize("bug", FIXED_BUGS, ids=[bug.name for bug in FIXED_BUGS])
def test_found_bug_stays_fixed(bug: KnownBug, service_url: str, known_ids: KnownIds) -> None:
    """Each input the fuzzer once answered with a 500 is now refused with a 422."""
    path = bug.path.replace("{run_id}", known_ids.runs[0]).replace("{item_id}", known_ids.items[-1])
    with requests.Session() as http:
        response = http.request(
            bug.method, service_url + path, json=bug.body, headers=bug.headers, timeout=60
        )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


def test_resume_with_a_non_ascii_digit_is_refused(service_url: str, known_ids: KnownIds) -> None:
    """Found by the fuzzer (fixed): '²' passes str.isdigit() but not int()."""
    response = requests.get(
        f"{service_url}/v1/runs/{known_ids.runs[0]}/stream",
        headers={"Last-Event-ID": "²"},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
