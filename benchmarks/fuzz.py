"""Property-based fuzzing of the service's OpenAPI with schemathesis, on a real server.

    .venv/bin/python -m benchmarks.fuzz                        # 300 cases per operation and mode
    .venv/bin/python -m benchmarks.fuzz --examples 50 --seed 7
    .venv/bin/python -m benchmarks.fuzz --url http://127.0.0.1:8000   # a running service

Without `--url` it starts `agentrec serve` (offline preset, no API keys, no rate limit) in a
temporary data folder with its embedded Redis and Chroma, and stops it at the end.

Every operation in /openapi.json gets schemathesis' coverage cases (boundary values, missing
and wrongly typed fields; valid and invalid) and `examples` Hypothesis-generated cases per
mode (valid and invalid input), seeded so that a run is reproducible. Valid cases borrow
known ids part of the time (demo users, catalog items, an open chat session, a finished run)
so the 200 paths are reached, not only the 404s. Every response is checked:

- `server_error`: a 5xx (schemathesis `not_a_server_error`; 503 included, the service is
  healthy during the run), or the connection failing; `known_bug` instead when the case
  reproduces one of `KNOWN_BUGS` (reported, not fixed yet; see `known_bug`);
- `hang`: a body (an SSE stream) not complete within `stream_timeout_s`;
- `response_schema`, `content_type`: the body and its media type against the OpenAPI;
- `undocumented_status`: a status the operation does not document (`status_code_conformance`);
- `negative_accepted`: invalid input answered with a 2xx (`negative_data_rejection`);
- `error_model`: a 4xx/5xx whose body is not `{"error": {code, message, details,
  request_id}}` with the `X-Request-ID` header equal to its request_id;
- `sse`: a 200 stream that is not `text/event-stream` or whose events break the API's
  framing (JSON data with type, run_id, seq, ts; `id` equal to seq; seq increasing;
  run_started first and run_finished last unless resumed; `Content-Location` on new runs).

Findings keep the shortest reproducer seen (a curl command) and the response. Prints a
summary and writes benchmarks/results/fuzz.json.

Compatibility note: hypothesis-jsonschema 0.23.1 (the newest, required by schemathesis 4)
drives Hypothesis' internal `many` helper through `more()`, which the pinned Hypothesis
6.170.15 no longer has (it became an iterator). `install_hypothesis_compat` adds an
equivalent `more()` on top of the iterator; without it no object schema (no JSON body) can
be generated at all.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks.service import agentrec_serve, clean_env

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "fuzz.json"
DEFAULT_SEED = 20261122
SSE_MEDIA_TYPE = "text/event-stream"
ERROR_KINDS = (
    "server_error",
    "known_bug",
    "hang",
    "response_schema",
    "content_type",
    "undocumented_status",
    "negative_accepted",
    "error_model",
    "sse",
)
"""Finding kinds, in the order the report lists them. `known_bug`: a 5xx that the caller's
`known_bug` predicate explains (a bug already reported), kept apart from new ones."""

SECURITY_HEADERS = frozenset({"Authorization", "X-API-Key"})
KnownBugPredicate = Callable[[Any], "str | None"]
"""Given a case that got a 5xx: the name of the reported bug it reproduces, or None."""

KNOWN_USERS = ("u001", "u002", "u017", "u150", "u300")
"""Demo catalog users the valid cases borrow."""


# -- third-party compatibility ---------------------------------------------------------------
def install_hypothesis_compat() -> None:
    """Give Hypothesis' `many` the `more()` method hypothesis-jsonschema calls (see the
    module docstring). Idempotent; leaves a Hypothesis that still has `more()` alone."""
    from hypothesis.internal.conjecture import utils as conjecture_utils

    many: Any = conjecture_utils.many
    if hasattr(many, "more"):
        return

    def more(self: Any) -> bool:
        # The old protocol: `while elements.more(): ...` without a with-block; the new one is
        # `with many(...) as elements: for _ in elements: ...`. Enter on the first call,
        # advance the iterator on each call, exit once it is exhausted.
        if getattr(self, "_compat_iterator", None) is None:
            self.__enter__()
            self._compat_iterator = iter(self)
        try:
            next(self._compat_iterator)
        except StopIteration:
            self.__exit__(None)
            return False
        return True

    many.more = more


# -- results -------------------------------------------------------------------------------
@dataclass
class Finding:
    """One kind of failure on one operation; `reproducer` is the shortest request seen."""

    kind: str
    operation: str
    title: str
    status: int | None
    reproducer: str
    response: str
    occurrences: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "operation": self.operation,
            "title": self.title,
            "status": self.status,
            "occurrences": self.occurrences,
            "reproducer": _excerpt(self.reproducer, 5000),
            "response": self.response,
        }


@dataclass
class OperationStats:
    cases: int = 0
    positive: int = 0
    negative: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    request_seconds: float = 0.0
    unsendable: int = 0
    """Cases the HTTP client refused to send (e.g. a header it cannot encode)."""

    def count(self, case: Any) -> None:
        self.cases += 1
        positive = case.meta is None or case.meta.generation.mode.is_positive
        self.positive += positive
        self.negative += not positive

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "positive": self.positive,
            "negative": self.negative,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "seconds": round(self.seconds, 2),
            "request_seconds": round(self.request_seconds, 2),
            "unsendable": self.unsendable,
        }


@dataclass
class FuzzReport:
    seed: int
    examples_per_mode: int
    operations: dict[str, OperationStats] = field(default_factory=dict)
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def cases(self) -> int:
        return sum(s.cases for s in self.operations.values())

    def of_kind(self, *kinds: str) -> list[Finding]:
        return [f for f in self.findings.values() if f.kind in kinds]

    @property
    def server_errors(self) -> int:
        """Responses that were 5xx (or no response at all)."""
        return sum(f.occurrences for f in self.of_kind("server_error"))

    @property
    def known_bug_errors(self) -> int:
        """5xx responses explained by an already reported bug."""
        return sum(f.occurrences for f in self.of_kind("known_bug"))

    @property
    def hangs(self) -> int:
        return sum(f.occurrences for f in self.of_kind("hang"))

    def summary(self) -> str:
        line = (
            f"fuzz: {self.cases} cases over {len(self.operations)} operations, "
            f"{self.server_errors} server errors, {self.hangs} hangs"
        )
        if self.known_bug_errors:
            line += f" (and {self.known_bug_errors} 5xx from known bugs)"
        return line

    def record(self, finding: Finding) -> None:
        key = (finding.kind, finding.operation, finding.title)
        known = self.findings.get(key)
        if known is None:
            self.findings[key] = finding
            return
        known.occurrences += 1
        if len(finding.reproducer) < len(known.reproducer):
            known.reproducer, known.response = finding.reproducer, finding.response
            known.status = finding.status

    def describe(self) -> str:
        """The summary line, then every finding with its reproducer."""
        lines = [self.summary()]
        order = {kind: i for i, kind in enumerate(ERROR_KINDS)}
        for f in sorted(self.findings.values(), key=lambda f: (order[f.kind], f.operation)):
            lines.append(
                f"- [{f.kind}] {f.operation}: {f.title} (x{f.occurrences}, status {f.status})"
                f"\n    {_excerpt(f.reproducer, 1200)}\n    -> {f.response}"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "examples_per_mode": self.examples_per_mode,
            "cases": self.cases,
            "operations": len(self.operations),
            "server_errors": self.server_errors,
            "known_bug_errors": self.known_bug_errors,
            "known_bugs": {f.title: f.occurrences for f in self.of_kind("known_bug")},
            "hangs": self.hangs,
            "findings_by_kind": dict(Counter(f.kind for f in self.findings.values())),
            "seconds": round(self.seconds, 1),
            "by_operation": {k: v.as_dict() for k, v in self.operations.items()},
            "findings": [f.as_dict() for f in self.findings.values()],
        }


# -- bugs the fuzzer found, reported, not fixed yet ----------------------------------------
@dataclass(frozen=True)
class KnownBug:
    """A reported bug and its minimal reproducer (`{run_id}`/`{item_id}` in `path` stand
    for existing ids)."""

    name: str
    reason: str
    method: str
    path: str
    body: Any = None
    headers: dict[str, str] | None = None


KNOWN_BUGS: tuple[KnownBug, ...] = ()
"""Bugs reported and not fixed yet (none open)."""

FIXED_BUGS = (
    KnownBug(
        "item-attribute-empty-name",
        "PUT /v1/items: an attribute named '' reaches Chroma's metadata (InvalidArgumentError) "
        "-> 500, after the catalog change was saved",
        "PUT",
        "/v1/items/{item_id}",
        {"title": "t", "attributes": {"": ["x"]}},
    ),
    KnownBug(
        "item-attribute-dollar-name",
        "PUT /v1/items: an attribute named '$...' reaches Chroma's metadata "
        "(InvalidArgumentError) -> 500, after the catalog change was saved",
        "PUT",
        "/v1/items/{item_id}",
        {"title": "t", "attributes": {"$a": ["x"]}},
    ),
    KnownBug(
        "item-attribute-lone-surrogate",
        "PUT /v1/items: a lone surrogate in an attribute name or value passes validation, "
        "then save_catalog cannot encode it (UnicodeEncodeError) -> 500",
        "PUT",
        "/v1/items/{item_id}",
        {"title": "t", "attributes": {"a": ["\ud800"]}},
    ),
    KnownBug(
        "ingest-long-path",
        "POST /v1/admin/ingest: a path component over 255 bytes raises OSError "
        "(File name too long) -> 500",
        "POST",
        "/v1/admin/ingest",
        {"format": "csv", "path": "a" * 256},
    ),
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def known_bug(case: Any) -> str | None:
    """The name of the open bug (in `KNOWN_BUGS`) a case that got a 5xx reproduces, or
    None. Every bug found so far is fixed (`FIXED_BUGS` are regression cases now)."""
    del case
    return None


# -- the fuzzer ------------------------------------------------------------------------------
@dataclass
class KnownIds:
    """Ids that exist on the server, for valid cases to reach the 200 paths."""

    users: tuple[str, ...]
    items: tuple[str, ...]
    sessions: tuple[str, ...]
    runs: tuple[str, ...]

    def by_name(self) -> dict[str, tuple[str, ...]]:
        return {
            "user_id": self.users,
            "item_id": self.items,
            "session_id": self.sessions,
            "run_id": self.runs,
        }


def discover_known_ids(base_url: str, timeout_s: float = 60.0) -> KnownIds:
    """Ask the service (through its API) for catalog items, a chat session and a finished
    run. The chat session is anonymous so that forgetting a demo user cannot close it."""
    with requests.Session() as http:
        answer = http.post(
            f"{base_url}/v1/recommendations",
            json={"user_id": KNOWN_USERS[0], "count": 20},
            timeout=timeout_s,
        )
        answer.raise_for_status()
        items = tuple(item["item_id"] for item in answer.json()["items"])
        session = http.post(f"{base_url}/v1/sessions", json={}, timeout=timeout_s)
        session.raise_for_status()
        stream = http.post(
            f"{base_url}/v1/recommendations/stream",
            json={"user_id": KNOWN_USERS[1], "count": 3},
            timeout=timeout_s,
        )
        stream.raise_for_status()
        location = stream.headers["Content-Location"]
        run_id = location.removeprefix("/v1/runs/").removesuffix("/stream")
    return KnownIds(KNOWN_USERS, items, (session.json()["session_id"],), (run_id,))


@dataclass
class Exchange:
    """A response read with a deadline; `complete` is False when the body did not end."""

    response: Any  # schemathesis.Response
    complete: bool
    body_bytes: int


def send(
    case: Any,
    http: requests.Session,
    base_url: str,
    stream_timeout_s: float,
    max_body_bytes: int,
) -> Exchange:
    """Send `case` and read its body until it ends, `stream_timeout_s` passes or
    `max_body_bytes` arrive (an SSE stream may be long; a hang must not stall the run)."""
    from schemathesis import Response

    kwargs = case.as_transport_kwargs(base_url=base_url)
    kwargs["timeout"] = (5.0, stream_timeout_s)
    kwargs["allow_redirects"] = False
    started = time.perf_counter()
    with http.request(**kwargs, stream=True) as raw:
        chunks: list[bytes] = []
        size = 0
        complete = True
        try:
            for chunk in raw.iter_content(chunk_size=None):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_body_bytes or time.perf_counter() - started > stream_timeout_s:
                    complete = False
                    break
        except requests.exceptions.ReadTimeout:
            complete = False
        headers = {name: raw.raw.headers.getlist(name) for name in raw.raw.headers}
        response = Response(
            status_code=raw.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=raw.request,
            elapsed=time.perf_counter() - started,
            verify=True,
            message=raw.reason or "",
            encoding=raw.encoding,
        )
    return Exchange(response, complete, size)


def _excerpt(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_response(response: Any) -> str:
    media = (response.headers.get("content-type") or [""])[0]
    body = response.content.decode("utf-8", "replace")
    return _excerpt(f"{response.status_code} {media} {body}")


def error_model_problem(response: Any) -> str | None:
    """Why a 4xx/5xx response breaks the service's error model, or None."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return "the error body is not JSON"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(body) != {"error"}:
        return "the body is not {'error': {...}}"
    missing = {"code", "message", "details", "request_id"} - set(error)
    if missing:
        return f"the error lacks {', '.join(sorted(missing))}"
    if not isinstance(error["code"], str) or not isinstance(error["message"], str):
        return "code and message are not strings"
    header = (response.headers.get("x-request-id") or [None])[0]
    if header != error["request_id"]:
        return "X-Request-ID differs from the body's request_id"
    return None


def parse_sse(text: str) -> list[dict[str, str]]:
    """Events of an SSE body as {field: value} (data lines joined by newlines); comments
    (heartbeats) are left out."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data" and "data" in current:
            current["data"] += "\n" + value
        else:
            current[name] = value
    if current:
        events.append(current)
    return events


def sse_problem(response: Any, resumed_after: int | None, new_run: bool) -> str | None:
    """Why a 200 stream breaks the API's SSE contract, or None. `resumed_after` is the
    Last-Event-ID of a resume (its events must come after it), None for a whole stream."""
    media = (response.headers.get("content-type") or [""])[0]
    if media.split(";")[0].strip() != SSE_MEDIA_TYPE:
        return f"a 200 stream answered with content type {media!r}"
    if new_run and not (response.headers.get("content-location") or [""])[0].startswith(
        "/v1/runs/"
    ):
        return "a new run's stream lacks Content-Location: /v1/runs/{run_id}/stream"
    events = parse_sse(response.content.decode("utf-8"))
    seqs: list[int] = []
    types: list[str] = []
    run_ids: set[str] = set()
    for event in events:
        try:
            data = json.loads(event.get("data", ""))
        except ValueError:
            return "an event's data is not JSON"
        if not isinstance(data, dict) or not {"type", "run_id", "seq", "ts"} <= set(data):
            return "an event's data lacks type, run_id, seq or ts"
        if event.get("event") != data["type"] or event.get("id") != str(data["seq"]):
            return "an event's `event:`/`id:` lines differ from its type/seq"
        seqs.append(int(data["seq"]))
        types.append(str(data["type"]))
        run_ids.add(str(data["run_id"]))
    if len(run_ids) > 1:
        return "one stream carries several run_ids"
    if any(b <= a for a, b in itertools.pairwise(seqs)):
        return "seq does not increase"
    if resumed_after is not None:
        if seqs and seqs[0] <= resumed_after:
            return "a resumed stream repeats events up to Last-Event-ID"
        return None
    if not types or types[0] != "run_started" or seqs[0] != 1:
        return "the stream does not open with run_started (seq 1)"
    if types[-1] != "run_finished":
        return "the stream does not end with run_finished"
    return None


class Fuzzer:
    """Drives every operation of a loaded schema against `base_url` and collects a
    `FuzzReport`. `examples` Hypothesis cases per generation mode, plus the coverage
    phase's deterministic cases when `coverage` is set."""

    def __init__(
        self,
        base_url: str,
        *,
        examples: int = 30,
        seed: int = DEFAULT_SEED,
        coverage: bool = True,
        known: KnownIds | None = None,
        stream_timeout_s: float = 30.0,
        max_body_bytes: int = 4_000_000,
        open_service: bool = True,
        known_bug: KnownBugPredicate | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        import schemathesis

        install_hypothesis_compat()
        self.base_url = base_url.rstrip("/")
        self.examples = examples
        self.seed = seed
        self.coverage = coverage
        self.known = known
        self.stream_timeout_s = stream_timeout_s
        self.max_body_bytes = max_body_bytes
        self.open_service = open_service
        self.known_bug = known_bug
        self.log = log or (lambda _: None)
        self.schema = schemathesis.openapi.from_url(f"{self.base_url}/openapi.json")
        self.report = FuzzReport(seed=seed, examples_per_mode=examples)
        self.http = requests.Session()

    # -- running ---------------------------------------------------------------------------
    def operations(self) -> list[Any]:
        from schemathesis.core.result import Ok

        found = []
        for result in self.schema.get_all_operations():
            if not isinstance(result, Ok):
                raise RuntimeError(f"an operation of the schema cannot be loaded: {result}")
            found.append(result.ok())
        return found

    def run(self, only: Callable[[str], bool] | None = None) -> FuzzReport:
        started = time.perf_counter()
        try:
            for operation in self.operations():
                if only is not None and not only(operation.label):
                    continue
                op_started = time.perf_counter()
                stats = self.report.operations.setdefault(operation.label, OperationStats())
                if self.coverage:
                    for case in self._coverage_cases(operation):
                        self.exercise(case)
                self._fuzz(operation)
                stats.seconds = time.perf_counter() - op_started
                self.log(
                    f"{operation.label}: {stats.cases} cases, statuses "
                    f"{dict(sorted(stats.statuses.items()))} in {stats.seconds:.1f} s "
                    f"({stats.request_seconds:.1f} s in requests)"
                )
        finally:
            self.http.close()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _coverage_cases(self, operation: Any) -> Iterator[Any]:
        from schemathesis import GenerationMode
        from schemathesis.generation.hypothesis.builder import generate_coverage_cases

        return generate_coverage_cases(
            operation=operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            auth_storage=None,
            as_strategy_kwargs={},
            generate_duplicate_query_parameters=False,
            unexpected_methods=set(),
            generation_config=self.schema.config.generation_for(operation=operation),
        )

    def _fuzz(self, operation: Any) -> None:
        import hypothesis
        from hypothesis import strategies as st
        from schemathesis import GenerationMode

        settings = hypothesis.settings(
            max_examples=self.examples,
            database=None,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            verbosity=hypothesis.Verbosity.quiet,
            report_multiple_bugs=False,
        )
        modes = [GenerationMode.POSITIVE]
        if self._mutable_beyond_path(operation):
            modes.append(GenerationMode.NEGATIVE)
        for index, mode in enumerate(modes):

            @hypothesis.seed(self.seed + index)
            @settings
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode), pick=st.randoms())
            def one(case: Any, pick: random.Random) -> None:
                self.exercise(self._borrow_known_ids(case, pick))

            # Unsatisfiable: nothing to make invalid (an operation without parameters or body)
            with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                one()

    @staticmethod
    def _mutable_beyond_path(operation: Any) -> bool:
        """Whether invalid input can be generated beyond path parameters. Invalid path
        parameters are mostly filtered out (few strings cannot be a path segment), which costs
        Hypothesis ~100 tries per case; the coverage phase already sends the invalid ones."""
        headers = [h for h in operation.headers if h.name not in SECURITY_HEADERS]
        return bool(len(operation.body) or len(operation.query) or headers)

    def _borrow_known_ids(self, case: Any, pick: random.Random) -> Any:
        """A valid case takes known ids in about half of its id fields (path parameters and
        top-level body fields), so that it can reach the 200 paths."""
        if self.known is None or case.meta is None or not case.meta.generation.mode.is_positive:
            return case
        pools = self.known.by_name()
        if case.path_parameters:
            for name in list(case.path_parameters):
                if pools.get(name) and pick.random() < 0.6:
                    case.path_parameters[name] = pick.choice(pools[name])
        if isinstance(case.body, dict):
            for name in list(case.body):
                if pools.get(name) and pick.random() < 0.5:
                    case.body[name] = pick.choice(pools[name])
                elif name == "item_ids" and isinstance(case.body[name], list):
                    case.body[name] = [
                        pick.choice(self.known.items) if pick.random() < 0.7 else value
                        for value in case.body[name]
                    ]
                elif name == "events" and isinstance(case.body[name], list):
                    for event in case.body[name]:
                        if isinstance(event, dict) and pick.random() < 0.7:
                            self._plausible_event(event, pick)
        return case

    def _plausible_event(self, event: dict[str, Any], pick: random.Random) -> None:
        """A feedback event that passes the model's cross-field rules (someone to attribute
        it to; a rating's value in 1..5) about a known user and item, most of the time."""
        assert self.known is not None
        event["item_id"] = pick.choice(self.known.items)
        if not event.get("session_id") or pick.random() < 0.5:
            event["user_id"] = pick.choice(self.known.users)
        if event.get("type") == "rating":
            event["value"] = pick.choice([1, 2, 3, 4, 5, 2.5])

    # -- one case --------------------------------------------------------------------------
    def exercise(self, case: Any) -> None:
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi.checks import (
            content_type_conformance,
            negative_data_rejection,
            response_schema_conformance,
            status_code_conformance,
        )

        label = case.operation.label
        stats = self.report.operations.setdefault(label, OperationStats())
        try:
            reproducer = case.as_curl_command()
        except Exception as error:  # a case schemathesis cannot print
            reproducer = f"<no curl: {error}> {case!r}"
        if _invalid_header_value(case.headers):
            # a control character no HTTP header may hold: uvicorn's parser answers 400
            # text/plain before the app sees the request
            stats.unsendable += 1
            return
        sent = time.perf_counter()
        try:
            exchange = self._send(case)
        except (requests.exceptions.InvalidHeader, UnicodeError):
            stats.unsendable += 1  # a header requests refuses to send: never reached the server
            return
        except requests.exceptions.RequestException as error:
            stats.count(case)
            stats.statuses[-1] += 1
            self.report.record(
                Finding("server_error", label, type(error).__name__, None, reproducer, str(error))
            )
            return
        stats.count(case)
        response = exchange.response
        stats.request_seconds += time.perf_counter() - sent
        stats.statuses[response.status_code] += 1
        described = _describe_response(response)
        if response.status_code >= 500:
            # uvicorn drops the connection after an unhandled exception without saying
            # `Connection: close`; the next request must not inherit the reset.
            self._renew_session()

        def found(kind: str, title: str) -> None:
            self.report.record(
                Finding(kind, label, title, response.status_code, reproducer, described)
            )

        if not exchange.complete:
            found("hang", f"body incomplete after {self.stream_timeout_s:.0f} s")
        checks = (
            ("server_error", not_a_server_error),
            ("undocumented_status", status_code_conformance),
            ("content_type", content_type_conformance),
            ("response_schema", response_schema_conformance),
            ("negative_accepted", negative_data_rejection),
        )
        is_stream = response.status_code == 200 and self._streams(case.operation)
        for kind, check in checks:
            if kind == "response_schema" and (is_stream or not exchange.complete):
                continue  # an SSE body is checked by sse_problem below
            if kind == "negative_accepted" and self._only_auth_is_invalid(case):
                continue  # an open service (no API keys) rightly ignores the auth headers
            problem = self._run_check(case, response, check)
            if problem is None:
                continue
            if kind == "server_error":
                reason = self.known_bug(case) if self.known_bug is not None else None
                if reason is not None:
                    found("known_bug", reason)
                    continue
            if kind in ("server_error", "undocumented_status"):
                problem = f"status {response.status_code}"
            found(kind, problem)
        if response.status_code >= 400:
            problem = error_model_problem(response)
            if problem is not None:
                found("error_model", problem)
        if is_stream and exchange.complete:
            resumed_after = None
            if case.operation.method.upper() == "GET":
                last = str((case.headers or {}).get("Last-Event-ID") or "0").strip()
                resumed_after = int(last) if last.isascii() and last.isdigit() else 0
            problem = sse_problem(response, resumed_after, new_run=case.method.upper() == "POST")
            if problem is not None:
                found("sse", problem)

    def _send(self, case: Any) -> Exchange:
        """Send on the kept-alive session; a connection that breaks is retried once on a
        new one (a kept-alive connection may have been closed by the server meanwhile)."""
        try:
            return send(case, self.http, self.base_url, self.stream_timeout_s, self.max_body_bytes)
        except requests.exceptions.ConnectionError:
            self._renew_session()
            return send(case, self.http, self.base_url, self.stream_timeout_s, self.max_body_bytes)

    def _renew_session(self) -> None:
        self.http.close()
        self.http = requests.Session()

    def _only_auth_is_invalid(self, case: Any) -> bool:
        if not self.open_service or case.meta is None:
            return False
        return getattr(case.meta.phase.data, "parameter", None) in SECURITY_HEADERS

    @staticmethod
    def _streams(operation: Any) -> bool:
        content = operation.definition.raw.get("responses", {}).get("200", {}).get("content", {})
        return SSE_MEDIA_TYPE in content

    @staticmethod
    def _run_check(case: Any, response: Any, check: Any) -> str | None:
        from schemathesis import CheckContext
        from schemathesis.core.failures import Failure, FailureGroup

        config = case.operation.schema.config.checks_config_for(
            operation=case.operation, phase=None
        )
        ctx = CheckContext(
            override=None, auth=None, headers=None, config=config, transport_kwargs=None
        )
        try:
            check(ctx, response, case)
        except FailureGroup as group:
            return "; ".join(_failure_title(f) for f in group.exceptions)
        except Failure as failure:
            return _failure_title(failure)
        except AssertionError as error:
            return str(error) or type(error).__name__
        return None


_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _invalid_header_value(headers: Any) -> bool:
    """Whether a header value holds a control character (RFC 9110 allows visible characters,
    space, tab and obs-text only)."""
    return any(isinstance(v, str) and _HEADER_CONTROL.search(v) for v in (headers or {}).values())


def _failure_title(failure: Any) -> str:
    message = " ".join(str(getattr(failure, "message", "")).split())
    return _excerpt(f"{failure.title}: {message}" if message else failure.title, 300)


# -- the service -----------------------------------------------------------------------------
@contextmanager
def local_service(workdir: Path, ready_timeout_s: float = 120.0) -> Iterator[str]:
    """`agentrec serve` on a free loopback port with embedded Redis and Chroma in
    `workdir`, no API keys and no rate limit; yields its URL, stops it on exit."""
    with agentrec_serve(workdir, clean_env(workdir / "data"), 1, ready_timeout_s) as service:
        yield service.url


# -- command line ----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from benchmarks.report import machine_info, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", help="A running service (default: start one).")
    parser.add_argument("--examples", type=int, default=300, help="Cases per operation and mode.")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-coverage", action="store_true", help="Skip the coverage phase.")
    parser.add_argument("--stream-timeout", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    def fuzz(url: str) -> FuzzReport:
        fuzzer = Fuzzer(
            url,
            examples=args.examples,
            seed=args.seed,
            coverage=not args.no_coverage,
            known=discover_known_ids(url),
            stream_timeout_s=args.stream_timeout,
            known_bug=known_bug,
            log=print,
        )
        return fuzzer.run()

    if args.url:
        report = fuzz(args.url)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="agentrec-fuzz-") as tmp,
            local_service(Path(tmp)) as url,
        ):
            report = fuzz(url)
    print(report.describe())
    write_json(args.out, {"machine": machine_info(), **report.as_dict()})
    return 1 if report.server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
