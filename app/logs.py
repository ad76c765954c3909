"""The service's logs: JSON lines with time, level, logger, message, and the request and run
they belong to; a repeated warning is written at most a few times a minute.

    {"time": "2026-12-06T06:10:00.123Z", "level": "WARNING", "logger": "agentrec.service",
     "message": "...", "request_id": "...", "run_id": "...", "pid": 123}

`request_id` and `run_id` come from context variables: the request-id middleware sets the
first for everything a request does (tasks it starts inherit it); `bind_run` sets the second
while a run runs. A warning or error whose message template was already written
`RepeatLimit.per_window` times in the last `window_s` seconds (by the same logger) is dropped
and counted; the next one written says how many were dropped. During a Redis outage each
degraded request used to write a line (958 lines in 10 s).
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentrec_request_id", default=None
)
run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "agentrec_run_id", default=None
)


@contextmanager
def bind_run(run_id: str) -> Iterator[None]:
    """Log lines written inside name this run."""
    token = run_id_var.set(run_id)
    try:
        yield
    finally:
        run_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id, run_id = request_id_var.get(), run_id_var.get()
        if request_id:
            line["request_id"] = request_id
        if run_id:
            line["run_id"] = run_id
        suppressed = getattr(record, "suppressed", 0)
        if suppressed:
            line["suppressed_before"] = suppressed
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str).replace("+00:00Z", "Z")


class TextFormatter(logging.Formatter):
    """`time level logger [request run] message` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(ids)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [i for i in (request_id_var.get(), run_id_var.get()) if i]
        record.ids = f"[{' '.join(ids)}] " if ids else ""
        suppressed = getattr(record, "suppressed", 0)
        text = super().format(record)
        return f"{text} ({suppressed} similar lines dropped before)" if suppressed else text


class RepeatLimit(logging.Filter):
    """Lets a warning (or worse) through at most `per_window` times per `window_s` for each
    (logger, message template); counts the rest and reports them on the next line let through."""

    def __init__(self, per_window: int = 5, window_s: float = 60.0) -> None:
        super().__init__()
        self.per_window = per_window
        self.window_s = window_s
        self._seen: dict[tuple[str, str], tuple[float, int, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            start, written, dropped = self._seen.get(key, (now, 0, 0))
            if now - start >= self.window_s:
                start, written = now, 0
            if written >= self.per_window:
                self._seen[key] = (start, written, dropped + 1)
                return False
            self._seen[key] = (start, written + 1, 0)
            if len(self._seen) > 10_000:  # many distinct templates: forget the oldest windows
                for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:5_000]:
                    del self._seen[old]
        record.suppressed = dropped
        return True


def uvicorn_log_config(log_format: str = "json") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn and the service: one handler on stderr with
    the chosen format and the repeat limit; uvicorn's access log stays off the hot path."""
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "app.logs.JsonFormatter"},
            "text": {"()": "app.logs.TextFormatter"},
        },
        "filters": {"repeats": {"()": "app.logs.RepeatLimit"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["repeats"],
            }
        },
        "loggers": {
            "agentrec": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
