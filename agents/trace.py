"""Typed trace events emitted from inside agent nodes with LangGraph's stream writer.

Each event is a dict with `type` (one of DESIGN.md's event names) and `agent`; the service
layer adds `run_id`, `seq` and `ts` when it turns them into SSE events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.config import get_config

Writer = Callable[[Any], None]

TRACE_SINK = "agentrec_trace_sink"
"""A run's config may put a callable under `configurable[TRACE_SINK]`: it then receives every
trace event instead of LangGraph's custom stream. A caller that does not follow the run
live (a one-shot JSON run) streams only "values": LangGraph then runs each single step in
the calling thread instead of handing it to a thread pool (about a third of an offline
run's CPU on the demo catalog)."""


def configured_sink() -> Writer | None:
    """The run's trace sink, if its config names one (see `TRACE_SINK`)."""
    try:
        config = get_config()
    except RuntimeError:  # outside a run
        return None
    sink = config.get("configurable", {}).get(TRACE_SINK)
    return sink if callable(sink) else None


EVENT_TYPES = frozenset(
    {
        "agent_started",
        "thought",
        "action",
        "observation",
        "candidates",
        "token",
        "agent_finished",
        "reflection",
        "recommendations",
        "error",
    }
)


class Tracer:
    """Emits the events of one agent step."""

    def __init__(self, writer: Writer | None, agent: str) -> None:
        self._writer = configured_sink() or writer
        self.agent = agent

    def emit(self, type_: str, **data: Any) -> None:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown trace event type {type_!r}")
        if self._writer is not None:
            self._writer({"type": type_, "agent": self.agent, **data})

    def thought(self, text: str) -> None:
        self.emit("thought", text=text)

    def action(self, tool: str, **args: Any) -> None:
        self.emit("action", tool=tool, args=args)

    def observation(self, text: str, **data: Any) -> None:
        self.emit("observation", text=text, **data)
