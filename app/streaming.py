"""The one place that knows LangGraph's stream format: it turns the parts of
`graph.astream(..., stream_mode=["custom", "values"])` into the service's run events.

Run events are dicts with `type` (DESIGN.md's event names), `run_id`, `seq` (1, 2, ... per
run) and `ts`; agent events keep their `agent` and payload. `run_started` is always first
and `run_finished` always last; `error` events in between are typed failures.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from pydantic import BaseModel

from agents.trace import EVENT_TYPES

RUN_EVENT_TYPES = ("run_started", *sorted(EVENT_TYPES), "run_finished")
"""Every event type a run stream carries (the agents' own are `agents.trace.EVENT_TYPES`)."""


class RunEvents:
    """Numbers the events of one run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seq = 0

    def make(self, type_: str, **data: Any) -> dict[str, Any]:
        self.seq += 1
        return {**data, "type": type_, "run_id": self.run_id, "seq": self.seq, "ts": time.time()}

    def from_agent(self, part: Mapping[str, Any]) -> dict[str, Any]:
        """A trace event an agent node wrote to the custom stream."""
        data = {k: v for k, v in part.items() if k not in ("type", "run_id", "seq", "ts")}
        return self.make(str(part["type"]), **data)


async def graph_parts(
    stream: AsyncIterator[Any],
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """("event", trace event) for each custom part, ("values", state) for each state (as
    the graph gives it: `to_plain` turns the one that matters into JSON-able data)."""
    async for mode, part in stream:
        if mode == "custom" and isinstance(part, Mapping) and "type" in part:
            yield "event", dict(part)
        elif mode == "values":
            yield "values", part


def to_plain(value: Any) -> Any:
    """State values as JSON-able data (pydantic models and dataclasses dumped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def sse_message(event: Mapping[str, Any]) -> bytes:
    """The SSE frame of a run event: `event:` its type, `data:` the event as JSON, then
    `id:` its seq. The id comes last: a client that records the id as soon as it reads
    that line (fetch-event-source does, before the frame is complete) would otherwise
    resume after an event it never got whole when the connection drops mid-frame."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\r\ndata: {data}\r\nid: {event['seq']}\r\n\r\n".encode()
