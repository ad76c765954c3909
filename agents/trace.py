"""Typed trace events emitted from inside agent nodes with LangGraph's stream writer.

Each event is a dict with `type` (one of DESIGN.md's event names) and `agent`; the service
layer adds `run_id`, `seq` and `ts` when it turns them into SSE events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Writer = Callable[[Any], None]

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
        self._writer = writer
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
