"""Runs in flight in this process: each run is a task that appends its events to a list any
number of readers follow (the stream that started it, a client resuming with Last-Event-ID),
so a run outlives a dropped connection when asked to and can be cancelled by id.

Runs of other replicas, or finished ones, are read from the Redis trace stream instead
(`follow_stored`); nothing here is needed for that beyond the run id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from memory.short_term import AsyncTraceReader, lost_run_events

KEEP_FINISHED_S = 60.0
"""How long a finished run stays in the registry for local resumes (then Redis serves it)."""


class LiveRun:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.finished_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def _add(self, event: dict[str, Any]) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def _close(self) -> None:
        async with self._changed:
            self.done = True
            self.finished_at = time.monotonic()
            self._changed.notify_all()

    async def started(self) -> None:
        """Wait for the run's first event (or its end)."""
        async with self._changed:
            while not self.events and not self.done:
                await self._changed.wait()

    async def follow(self, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Every event with seq > `after_seq`, then the live ones, until the run ends."""
        position = 0
        while True:
            async with self._changed:
                while position >= len(self.events) and not self.done:
                    await self._changed.wait()
                batch = self.events[position:]
                position = len(self.events)
                ended = self.done
            for event in batch:
                if event["seq"] > after_seq:
                    yield event
            if ended and position >= len(self.events):
                return


class RunRegistry:
    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}

    def get(self, run_id: str) -> LiveRun | None:
        return self._runs.get(run_id)

    def start(self, run_id: str, events: AsyncGenerator[dict[str, Any], None]) -> LiveRun:
        """Run `events` (a service event stream) in its own task. Cancelling the task
        cancels the run, which still ends with its `error` and `run_finished` events."""
        self._prune()
        run = LiveRun(run_id)

        async def pump() -> None:
            try:
                try:
                    async for event in events:
                        await run._add(event)
                except asyncio.CancelledError:
                    # cancelled between two events: hand the cancellation to the run itself
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    with contextlib.suppress(StopAsyncIteration, asyncio.CancelledError):
                        await run._add(await events.athrow(asyncio.CancelledError()))
                        async for event in events:
                            await run._add(event)
            finally:
                await events.aclose()
                await run._close()

        run.task = asyncio.create_task(pump(), name=f"run-{run_id}")
        self._runs[run_id] = run
        return run

    def forget_subject(self, user_id: str) -> int:
        """Drop (and cancel) the runs of a user being forgotten; returns how many."""
        mine = [
            rid
            for rid, run in self._runs.items()
            if run.events
            and user_id
            in (run.events[0].get("user_id"), f"session:{run.events[0].get('session_id')}")
        ]
        for rid in mine:
            self.cancel(rid)
            del self._runs[rid]
        return len(mine)

    def cancel(self, run_id: str) -> bool:
        """Cancel a live run; False if it is not running here."""
        run = self._runs.get(run_id)
        if run is None or run.done or run.task is None:
            return False
        run.task.cancel()
        return True

    async def shutdown(self) -> None:
        tasks = [r.task for r in self._runs.values() if r.task is not None and not r.done]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _prune(self) -> None:
        now = time.monotonic()
        stale = [
            rid
            for rid, run in self._runs.items()
            if run.done and now - run.finished_at > KEEP_FINISHED_S
        ]
        for rid in stale:
            del self._runs[rid]


LOST_AFTER_S = 5.0
"""A run whose process has not said it is alive for this long is declared lost."""


async def follow_stored(
    reader: AsyncTraceReader,
    run_id: str,
    after_seq: int = 0,
    poll_ms: int = 1000,
    lost_after_s: float = LOST_AFTER_S,
    ttl_s: int = 600,
    max_events: int = 10_000,
) -> AsyncIterator[dict[str, Any]]:
    """A run's events from its Redis trace stream: the stored ones after `after_seq`, then
    new ones as they are written, until `run_finished`. A run whose process died (no sign
    of life for `lost_after_s`) is ended here for every reader: an `error` (run_lost) and a
    `run_finished` are written to its trace and delivered, which then lives `ttl_s`."""
    last = after_seq
    last_ts = 0.0
    for event in await reader.replay(run_id, after_seq):
        last, last_ts = event["seq"], float(event.get("ts", 0.0))
        yield event
        if event["type"] == "run_finished":
            return
    if not last_ts:  # resumed after the last stored event: its time says when it lived
        stored = await reader.replay(run_id, max(after_seq - 1, 0))
        last_ts = max((float(e.get("ts", 0.0)) for e in stored), default=0.0)
    while True:
        batch = await reader.read_new(run_id, last, block_ms=poll_ms)
        for event in batch:
            last, last_ts = event["seq"], float(event.get("ts", 0.0))
            yield event
            if event["type"] == "run_finished":
                return
        if batch:
            continue
        if await reader.run_finished(run_id):
            # finished between reads: drain what is left
            for event in await reader.replay(run_id, last):
                yield event
            return
        alive = max(await reader.alive_at(run_id) or 0.0, last_ts)
        if time.time() - alive > lost_after_s:
            closing = lost_run_events(run_id, last)
            if await reader.end_lost_run(run_id, closing, ttl_s, max_events):
                for event in closing:
                    yield event
                return
            # another reader ended it, or it finished: read what was written
