"""The service's log lines: JSON with time, level, logger, message and the ids of the request
and run; repeated warnings limited per message template."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.logs import JsonFormatter, RepeatLimit, bind_run, request_id_var


@pytest.fixture()
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RepeatLimit(per_window=3, window_s=60))
    logger = logging.getLogger("agentrec.test-logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_names_its_request_and_run(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines
    token = request_id_var.set("req-1")
    try:
        with bind_run("run-9"):
            logger.warning("trace of %s not persisted", "run-9")
        logger.error("outside the run")
    finally:
        request_id_var.reset(token)
    first, second = records(stream)
    assert first["level"] == "WARNING" and first["logger"] == "agentrec.test-logs"
    assert first["message"] == "trace of run-9 not persisted"
    assert first["request_id"] == "req-1" and first["run_id"] == "run-9"
    assert str(first["time"]).endswith("Z") and "T" in str(first["time"])
    assert "run_id" not in second and second["request_id"] == "req-1"


def test_repeated_warnings_are_limited_and_counted(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = lines
    for n in range(100):  # one template, many values: one degraded request each
        logger.warning("run %s: trace not persisted", n)
    logger.warning("another problem")
    logger.info("info is never limited")
    logger.info("info is never limited")
    written = records(stream)
    assert [r["message"] for r in written[:3]] == [
        f"run {n}: trace not persisted" for n in range(3)
    ]
    assert [r["message"] for r in written[3:]] == [
        "another problem",
        "info is never limited",
        "info is never limited",
    ]


def test_the_count_of_dropped_lines_is_reported_when_the_window_reopens() -> None:
    limit = RepeatLimit(per_window=1, window_s=0.0)  # every call opens a new window
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "down", None, None)
    assert limit.filter(record)
    limit = RepeatLimit(per_window=1, window_s=3600)
    assert limit.filter(record)
    assert not limit.filter(record) and not limit.filter(record)
    limit.window_s = 0.0
    assert limit.filter(record) and record.suppressed == 2  # type: ignore[attr-defined]
