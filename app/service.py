"""The service core, independent of HTTP: the agent graph wired to Redis and Chroma.

`Service` owns the memory stores and the compiled graphs of one process:
- runs (`stream_run`, `run`) numbered into run events (`app.streaming`), each persisted to
  the run's Redis trace stream so any replica can replay it;
- chat sessions whose turns live in Redis and whose graph thread is checkpointed in Redis
  (`memory.checkpointer.RedisSaver`, one checkpoint per turn: `durability="exit"`);
- feedback events, recorded exactly once by `event_id`, which move the user's profile;
- forgetting a user everywhere.

Faults: with Redis down, one-shot runs still answer (marked degraded: their trace is not
persisted and the user's short-term memory is not read) while session calls raise
`MemoryUnavailable`; with Chroma down, runs answer without long-term memory (degraded).
Both recover when the store is back, with no restart: clients reconnect on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import queue
import threading
import time
import uuid
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph

from agents.context import Context
from agents.conversation import RECOMMENDED_KEY
from agents.feedback import feedback_effect
from agents.memory import SHORT_TERM, register_memory, unregister_memory
from agents.schemas import TaskName
from agents.state import InputState, checkpoint_serde
from agents.toolbox import Toolbox, get_toolbox, register_toolbox
from agents.toolbox_store import ArtifactWatcher, load_or_build_toolbox
from agents.trace import TRACE_SINK
from app.agent_memory import StoreMemory, catalog_collection
from app.logs import run_id_var
from app.runs import LOST_AFTER_S
from app.schemas import MAX_CHAT_MESSAGES, MAX_PART_CHARS
from app.streaming import RunEvents, graph_parts, to_plain
from core.errors import AgentrecError, Unavailable
from core.settings import Settings
from graphs.inline import inline_steps
from graphs.recommend import build_graph
from memory.checkpointer import RedisSaver
from memory.connection import MemoryUnavailable, RedisProvider
from memory.long_term import ChromaUnavailable, LongTermMemory, Memory, MemoryKind, MetaValue
from memory.short_term import FeedbackRecord, ShortTermMemory, Turn
from recdata.dataset import Dataset, Item
from recdata.store import check_name, save_catalog, with_item
from tools.candidates import catalog_index
from tools.dialogue_stats import DialogueStats
from tools.embeddings import ItemContentIndex

log = logging.getLogger("agentrec.service")

SESSION_CLAIM_TTL_S = 300
"""Longest a session stays claimed by one message whose run never releases it."""
ANONYMOUS_PREFIX = "session:"
"""Memory subject of an anonymous visitor: `session:<session_id>`."""


class InvalidInput(AgentrecError):
    """A request names something the service cannot use (unknown item, empty message...)."""


class SessionBusy(AgentrecError):
    """The session is still answering another message (one message at a time)."""

    def __init__(self, session_id: str, run_id: str) -> None:
        self.session_id = session_id
        self.run_id = run_id
        super().__init__(
            f"session {session_id!r} is still answering a message (run {run_id}); "
            "send the next one when it has finished"
        )


@dataclass(frozen=True)
class ChatMessage:
    """A turn of a conversation a client holds: what the user said or what the assistant
    answered, with the ids of the items it recommended when the client kept them."""

    role: Literal["user", "assistant"]
    content: str
    item_ids: tuple[str, ...] = ()


@dataclass
class RunRequest:
    """One run, as the API layer hands it over."""

    task: TaskName = "recommend"
    user_id: str | None = None
    session_id: str | None = None
    """An anonymous visitor's id (memory is kept under `session:<id>`), or a chat session."""
    message: str = ""
    messages: list[ChatMessage] = field(default_factory=list)
    """A chat's conversation before `message`, oldest first (at most `MAX_CHAT_MESSAGES`
    turns of at most `MAX_PART_CHARS` characters): the graph input's `messages`. Without
    `message`, a last user turn here is the message answered. On a session's thread it
    replaces the conversation the thread holds (the client's copy wins: edits,
    regenerated replies)."""
    count: int | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    candidate_item_ids: list[str] = field(default_factory=list)
    item_id: str | None = None
    history_item_ids: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    """Overrides of `agents.context.Context` fields (e.g. diversity, top_k)."""
    context_strings: dict[str, str] = field(default_factory=dict)
    """The caller's request context (device, page...), recorded in `run_started`."""
    run_id: str | None = None
    recommendation_id: str | None = None

    @property
    def subject(self) -> str | None:
        """Whose memory the run reads: the user, else the anonymous session."""
        if self.user_id:
            return self.user_id
        return f"{ANONYMOUS_PREFIX}{self.session_id}" if self.session_id else None


@dataclass
class RunResult:
    run_id: str
    recommendation_id: str
    output: dict[str, Any]
    events: list[dict[str, Any]]
    error: dict[str, Any] | None = None


@dataclass
class EventIn:
    """A feedback event (see `agents.feedback` for what each type does)."""

    event_id: str
    type: str
    item_id: str
    user_id: str | None = None
    session_id: str | None = None
    recommendation_id: str | None = None
    position: int | None = None
    value: float | None = None
    timestamp: float | None = None

    @property
    def subject(self) -> str:
        if self.user_id:
            return self.user_id
        if self.session_id:
            return f"{ANONYMOUS_PREFIX}{self.session_id}"
        raise InvalidInput(f"event {self.event_id!r} needs a user_id or a session_id")


@dataclass
class EventOutcome:
    event_id: str
    status: Literal["stored", "duplicate", "rejected"]
    message: str | None = None


class _TraceWriter:
    """Persists a run's events to its Redis trace stream: `run_started` at once, then what
    is pending every `interval_s` (`autoflush`, also while a step waits on an LLM), and
    everything at the end of the run. A fast offline run is written in two round trips.

    Writes run in worker threads, one at a time and in seq order: a write takes the pending
    events and stores them under one thread lock, so a write whose awaiting coroutine was
    cancelled (the run ended while `autoflush` was writing) still completes before the next
    write takes its events. The store keeps only seqs above its last one, so two writes that
    overlapped would drop the earlier batch.

    The first write also indexes the run under its user (for forgetting). A failed write
    puts its events back and the next one retries them; if Redis stays down the run goes on
    and is marked degraded."""

    def __init__(
        self,
        short_term: ShortTermMemory,
        run_id: str,
        subject: str | None,
        interval_s: float = 0.05,
    ) -> None:
        self.short_term = short_term
        self.run_id = run_id
        self.subject = subject
        self.interval_s = interval_s
        self.failed = False
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        self._write_lock = threading.Lock()

    def add(self, event: dict[str, Any]) -> None:
        with self._pending_lock:
            self._pending.append(event)

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    async def autoflush(
        self, owner: asyncio.Task[Any] | None = None, alive_every_s: float = 0.5
    ) -> None:
        """Write what is pending at once (so a resume on another replica finds the run),
        then every `interval_s`, until cancelled. Every `alive_every_s` say the run is alive
        (followers elsewhere declare a silent run lost) and cancel `owner`, the task
        running the run, if another replica asked to cancel it."""
        touched = time.monotonic()
        while True:
            if self.has_pending:
                await self.flush()
            if time.monotonic() - touched >= alive_every_s:
                touched = time.monotonic()
                with contextlib.suppress(Unavailable):
                    cancel = await asyncio.to_thread(self.short_term.touch_run, self.run_id)
                    if cancel and owner is not None:
                        owner.cancel()
                        return
            await asyncio.sleep(self.interval_s)

    async def flush(self, finish: bool = False) -> None:
        """Write what is pending (and mark the run finished if `finish`) in a worker thread."""
        try:
            await asyncio.to_thread(self.write_pending, finish)
        except Unavailable as error:
            if not self.failed:
                log.warning("run %s: trace not persisted: %s", self.run_id, error)
            self.failed = True

    def write_pending(self, finish: bool = False) -> None:
        """Store the pending events, in the calling thread; raises `Unavailable` (the events
        stay pending for the next write)."""
        with self._write_lock:
            with self._pending_lock:
                events, self._pending = self._pending, []
            if not events and not finish:
                return
            try:
                if self.subject is not None:
                    self.short_term.add_user_run(self.subject, self.run_id)
                    self.subject = None
                if events:
                    self.short_term.append_events(self.run_id, events)
                if finish:
                    self.short_term.finish_run(self.run_id)
            except BaseException:
                with self._pending_lock:
                    self._pending[:0] = events
                raise


MemoryRecord = tuple[str, MemoryKind, str, dict[str, MetaValue] | None]


class _MemoryWriter:
    """Writes long-term memories in a background thread, in batches, so that recording
    feedback never waits on Chroma. While Chroma is down the batch waits and is retried;
    `flush` waits until everything queued is written (forgetting a user calls it first)."""

    def __init__(self, memory: StoreMemory, max_queued: int = 100_000) -> None:
        self.memory = memory
        self.max_queued = max_queued
        self._queue: queue.Queue[MemoryRecord | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="memory-writer", daemon=True)
        self._thread.start()

    def put(self, records: list[MemoryRecord]) -> None:
        if self._queue.qsize() + len(records) > self.max_queued:
            log.warning("long-term memory queue full: %d feedback notes dropped", len(records))
            return
        for record in records:
            self._queue.put(record)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued memory is written; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.task_done()
                return
            batch = [first]
            while len(batch) < 1000:
                try:
                    record = self._queue.get_nowait()
                except queue.Empty:
                    break
                if record is None:
                    self._queue.task_done()
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(record)
            while True:
                try:
                    self.memory.remember(batch)
                    break
                except Unavailable as error:
                    log.warning("long-term memory unavailable, retrying: %s", error)
                    time.sleep(1.0)
                except Exception:  # never lose the thread to a bug
                    log.exception("feedback notes could not be remembered")
                    break
            for _ in batch:
                self._queue.task_done()


class Service:
    """The agent graph on the service's Redis and Chroma, for one process."""

    def __init__(self, settings: Settings, context: Context | None = None) -> None:
        self.settings = settings
        self.catalog = settings.catalog
        self.base_context = context or Context.from_preset(settings.preset)
        self.redis = RedisProvider(settings)
        self.memory_name = f"service-{uuid.uuid4().hex[:8]}"
        self._short_term: ShortTermMemory | None = None
        self._memory: StoreMemory | None = None
        self._stateless: CompiledStateGraph[Any, Any, Any, Any] | None = None
        self._session_graphs: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, CompiledStateGraph[Any, Any, Any, Any]
        ] = weakref.WeakKeyDictionary()
        self._savers: list[RedisSaver] = []
        self._lock = threading.Lock()
        self._catalog_lock = threading.Lock()
        self._memory_writer: _MemoryWriter | None = None
        self._watcher: ArtifactWatcher | None = None
        self.run_observer: Callable[[str, str], None] | None = None
        """Called with (task, status) when a run ends (the API counts runs with it)."""

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Service:
        """Start the embedded Redis (unless REDIS_URL), load or fit the catalog's models and
        build what its runs read (`Toolbox.prepare`), index the catalog into Chroma (skipped, with
        a warning, if Chroma is down) and compile."""
        self.redis.start()
        self._short_term = ShortTermMemory.from_settings(self.redis.client(), self.settings)
        self._memory = StoreMemory(
            self._short_term, lambda: LongTermMemory.from_settings(self.settings), get_toolbox
        )
        register_memory(self.memory_name, self._memory)
        # the newest trained artifact (memory-mapped) or, without one, the models fitted
        # now rather than on the first request; an ingested catalog wins over a bundled one
        box = load_or_build_toolbox(self.settings, self.catalog).prepare()
        register_toolbox(self.catalog, box)
        if self.settings.model_reload_s > 0 and self.settings.model_artifacts != "off":
            # a toolbox it swaps in builds its conversation reader on the first chat turn
            self._watcher = ArtifactWatcher.from_settings(self.settings, self.catalog).start()
        try:
            self._memory.ensure_catalog(self.catalog)
        except Unavailable as error:
            log.warning("long-term memory unavailable at start-up: %s", error)
        self._stateless = build_graph().compile(name="agentrec")
        # Long-lived objects (toolboxes, graphs) leave the GC's young generations: full
        # collections no longer walk them, which removes their pauses from request latency.
        gc.collect()
        gc.freeze()
        return self

    @property
    def memory_writer(self) -> _MemoryWriter:
        with self._lock:
            if self._memory_writer is None:
                self._memory_writer = _MemoryWriter(self.memory)
            return self._memory_writer

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._memory_writer is not None:
            self._memory_writer.close()
        unregister_memory(self.memory_name)
        for saver in self._savers:
            saver.close()
        if self._memory is not None:
            self._memory.close()
        self.redis.close()

    async def aclose(self) -> None:
        for saver in self._savers:
            await saver.aclose()
        await self.redis.aclose_async_clients()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parts ---------------------------------------------------------------------------
    @property
    def short_term(self) -> ShortTermMemory:
        if self._short_term is None:
            raise AgentrecError("the service is not started")
        return self._short_term

    @property
    def memory(self) -> StoreMemory:
        if self._memory is None:
            raise AgentrecError("the service is not started")
        return self._memory

    def toolbox(self) -> Toolbox:
        return get_toolbox(self.catalog)

    def long_term(self) -> LongTermMemory:
        """Chroma long-term memory (raises `ChromaUnavailable` while it is down)."""
        return self.memory.long_term()

    def context(self, overrides: dict[str, Any] | None = None) -> Context:
        fields = {f.name for f in dataclasses.fields(Context)}
        unknown = sorted(set(overrides or {}) - fields)
        if unknown:
            raise InvalidInput(f"unknown context field(s): {', '.join(unknown)}")
        return dataclasses.replace(
            self.base_context, **(overrides or {}), catalog=self.catalog, memory=self.memory_name
        )

    def _session_graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The graph with the Redis checkpointer, for the running loop (async Redis
        connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            graph = self._session_graphs.get(loop)
            if graph is None:
                saver = RedisSaver(
                    aclient=self.redis.async_client(decode_responses=False),
                    ttl_s=self.settings.session_ttl_s,
                    serde=checkpoint_serde(),
                )
                self._savers.append(saver)
                graph = build_graph().compile(checkpointer=saver, name="agentrec")
                self._session_graphs[loop] = graph
            return graph

    def checkpointer(self) -> RedisSaver:
        """A sync checkpointer on the service's Redis (for inspection and forgetting)."""
        return RedisSaver(self.redis.client(decode_responses=False), serde=checkpoint_serde())

    # -- runs ----------------------------------------------------------------------------
    def check_request(self, request: RunRequest) -> InputState:
        """The graph input of `request`, or `InvalidInput` (a 4xx) for what the catalog
        cannot answer (an unknown item, no known candidate, an empty chat message)."""
        box = self.toolbox()
        index = box.dataset.item_index
        if request.task in ("rate", "explain") and request.item_id not in index:
            raise InvalidInput(f"unknown item_id {request.item_id!r}")
        if request.task == "rank":
            known = [i for i in request.candidate_item_ids if i in index]
            if not known:
                raise InvalidInput("candidate_item_ids names no item of the catalog")
        message, messages = self._conversation(request)
        if request.task == "chat" and not message.strip():
            raise InvalidInput("a chat message must not be empty")
        return InputState(
            task=request.task,
            user_id=request.subject,
            message=message,
            messages=messages,
            count=request.count,
            filters=request.filters,
            candidate_item_ids=request.candidate_item_ids,
            item_id=request.item_id,
            history_item_ids=request.history_item_ids,
            run_id=request.run_id,
        )

    @staticmethod
    def _conversation(request: RunRequest) -> tuple[str, list[AnyMessage]]:
        """The message a run answers and the conversation before it, as graph messages
        (raises `InvalidInput` for a conversation out of bounds or outside a chat)."""
        turns = list(request.messages)
        if not turns:
            return request.message, []
        if request.task != "chat":
            raise InvalidInput("messages (a conversation) are for the chat task")
        if len(turns) > MAX_CHAT_MESSAGES:
            raise InvalidInput(f"a conversation holds at most {MAX_CHAT_MESSAGES} messages")
        for turn in turns:
            if turn.role not in ("user", "assistant"):
                raise InvalidInput("the roles of a conversation are user and assistant")
            if len(turn.content) > MAX_PART_CHARS:
                raise InvalidInput(
                    f"a message of the conversation is longer than {MAX_PART_CHARS} characters"
                )
        message = request.message
        if not message.strip() and turns[-1].role == "user":
            message = turns.pop().content
        messages: list[AnyMessage] = [
            HumanMessage(turn.content)
            if turn.role == "user"
            else AIMessage(turn.content, additional_kwargs=_recommended(turn.item_ids))
            for turn in turns
        ]
        return message, messages

    async def stream_run(
        self,
        request: RunRequest,
        *,
        thread_id: str | None = None,
        present: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        on_finish: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The run's events as they happen, `run_started` first and `run_finished` last;
        each is persisted to the run's trace stream (once per graph step).

        `thread_id` runs on the checkpointed graph (chat sessions); without it the run is
        one-shot and keeps no graph state. `present` rewrites each event before it is stored
        and yielded (the API adds titles to items). Raises `InvalidInput` before the first
        event."""
        shown = present or _same
        payload, context, events, started = self._begin(request)
        run_id, recommendation_id = events.run_id, started["recommendation_id"]
        run_id_var.set(run_id)  # this run's task logs under its id (app.logs)
        writer = _TraceWriter(self.short_term, run_id, request.subject or None)
        writer.add(started)
        final: dict[str, Any] = {}
        failure: dict[str, Any] | None = None
        config: RunnableConfig = {"recursion_limit": 4 * context.max_steps + 10}
        durability: Literal["exit"] | None = None
        if thread_id is not None:
            graph = self._session_graph()
            config["configurable"] = {"thread_id": thread_id}
            durability = "exit"
            if payload.messages:  # the client's conversation replaces the thread's
                clear = RemoveMessage(id=REMOVE_ALL_MESSAGES)
                payload.messages = [cast(AnyMessage, clear), *payload.messages]
        else:
            graph = self._stateless or build_graph().compile()
        await writer.flush()  # stored before anyone is told the run exists
        autoflush = asyncio.create_task(writer.autoflush(asyncio.current_task()))
        try:
            yield started
            stream = graph.astream(
                payload,
                config,
                context=context,
                stream_mode=["custom", "values"],
                durability=durability,
            )
            async with contextlib.aclosing(graph_parts(stream)) as parts:
                async for kind, part in parts:
                    if kind == "event":
                        event = shown(events.from_agent(part))
                        writer.add(event)
                        yield event
                    else:
                        final = part
            final = to_plain(final)
        except asyncio.CancelledError:
            # a cancelled run still ends with its error and run_finished events, for its
            # live readers as for the stored trace; the cancellation is consumed here
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            failure = {"code": "cancelled", "message": "the run was cancelled"}
        except Exception as error:
            failure = _failure(run_id, error)
        finally:
            if failure is not None:
                error_event = events.make("error", recoverable=False, **failure)
                writer.add(error_event)
                yield error_event
            finished = self._finished(
                request, events, recommendation_id, final, failure, writer.failed, shown
            )
            writer.add(finished)
            autoflush.cancel()
            await writer.flush(finish=True)
            if on_finish is not None:
                await on_finish(finished)
        yield finished

    def _begin(self, request: RunRequest) -> tuple[InputState, Context, RunEvents, dict[str, Any]]:
        """Check a run's input (raises `InvalidInput`); its context, numbering and
        `run_started` event."""
        run_id = request.run_id = request.run_id or uuid.uuid4().hex
        payload = self.check_request(request)
        context = self.context(request.context)
        events = RunEvents(run_id)
        started = events.make(
            "run_started",
            recommendation_id=request.recommendation_id or uuid.uuid4().hex,
            task=request.task,
            user_id=request.user_id,
            session_id=request.session_id,
            context=request.context_strings,
        )
        return payload, context, events, started

    def _finished(
        self,
        request: RunRequest,
        events: RunEvents,
        recommendation_id: str,
        final: dict[str, Any],
        failure: dict[str, Any] | None,
        trace_failed: bool,
        shown: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[str, Any]:
        output = self._output(final)
        if trace_failed and SHORT_TERM not in output["degraded"]:
            output["degraded"].append(SHORT_TERM)
        finished = shown(
            events.make(
                "run_finished",
                recommendation_id=recommendation_id,
                status="error" if failure else "success",
                output=output,
            )
        )
        if self.run_observer is not None:
            self.run_observer(request.task, finished["status"])
        return finished

    def run_blocking(
        self,
        request: RunRequest,
        present: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> RunResult:
        """A one-shot run in the calling thread (the JSON endpoints run it in a worker
        thread): the graph runs synchronously, with no event loop hops, and its trace is
        written to Redis in one go at the end (nobody follows a JSON run live): by default
        only its summary (`json_trace`, setting `json_trace`)."""
        token = run_id_var.set(request.run_id)  # its log lines name the run (app.logs)
        try:
            return self._run_blocking(request, present)
        finally:
            run_id_var.reset(token)

    def _run_blocking(
        self, request: RunRequest, present: Callable[[dict[str, Any]], dict[str, Any]] | None
    ) -> RunResult:
        shown = present or _same
        payload, context, events, started = self._begin(request)
        run_id_var.set(events.run_id)
        collected = [started]
        state: Any = {}
        final: dict[str, Any] = {}
        failure: dict[str, Any] | None = None
        graph = self._stateless or build_graph().compile()
        lock = threading.Lock()

        def sink(part: Any) -> None:  # steps that run in parallel write from their threads
            if isinstance(part, Mapping) and "type" in part:
                with lock:
                    collected.append(shown(events.from_agent(part)))

        config: RunnableConfig = {
            "recursion_limit": 4 * context.max_steps + 10,
            "configurable": {TRACE_SINK: sink},  # no custom stream: single steps run inline
        }
        if not context.uses_llm():  # offline agents: a step of several runs inline too
            config = inline_steps(config)  # (LLM agents of one step overlap their calls)
        try:
            for part in graph.stream(payload, config, context=context, stream_mode="values"):
                state = part
            final = to_plain(state)
        except Exception as error:
            failure = _failure(events.run_id, error)
            collected.append(events.make("error", recoverable=False, **failure))
        recommendation_id = started["recommendation_id"]
        finished = self._finished(request, events, recommendation_id, final, failure, False, shown)
        collected.append(finished)
        stored = json_trace(collected, self.settings.json_trace)
        if stored:
            try:
                self.short_term.store_run(events.run_id, stored, request.subject or None)
            except Unavailable as error:
                log.warning("run %s: trace not persisted: %s", events.run_id, error)
                if SHORT_TERM not in finished["output"]["degraded"]:
                    finished["output"]["degraded"].append(SHORT_TERM)
        return _result(collected)

    @staticmethod
    def _output(state: dict[str, Any]) -> dict[str, Any]:
        return {
            "recommendations": state.get("recommendations", []),
            "rating": state.get("rating"),
            "explanation": state.get("explanation", ""),
            "reply": state.get("reply", ""),
            "degraded": list(dict.fromkeys(state.get("degraded", []))),
            "usage": state.get("usage", {}),
        }

    async def run(
        self,
        request: RunRequest,
        *,
        thread_id: str | None = None,
        present: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> RunResult:
        """A whole run (see `stream_run`); a one-shot run goes through `run_blocking` in a
        worker thread (less overhead than the event-loop path)."""
        if thread_id is None:
            return await asyncio.to_thread(self.run_blocking, request, present)
        events: list[dict[str, Any]] = []
        async for event in self.stream_run(request, thread_id=thread_id, present=present):
            events.append(event)
        return _result(events)

    async def replay(self, run_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.short_term.replay, run_id, after_seq)

    # -- chat sessions -------------------------------------------------------------------
    def create_session(self, user_id: str | None = None) -> tuple[str, str]:
        """A new chat session; returns (session_id, owner). An anonymous visitor's session
        is owned by `session:<its id>`."""
        session_id = uuid.uuid4().hex
        owner = user_id or f"{ANONYMOUS_PREFIX}{session_id}"
        self.short_term.create_session(owner, session_id)
        return session_id, owner

    def session_turns(self, session_id: str, limit: int | None = None) -> list[Turn]:
        return self.short_term.turns(session_id, limit)

    async def open_chat(
        self,
        session_id: str,
        message: str,
        context: dict[str, str] | None = None,
        present: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        run_id: str | None = None,
        history: Sequence[ChatMessage] = (),
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Start a chat turn: the user's message joins the session (raises `SessionNotFound`
        or `MemoryUnavailable` here); returns the run's event stream, at whose end the reply
        (with the recommended ids) joins the session. `history`: the conversation before
        `message` as the client holds it; when given, it replaces the one the session's
        graph thread holds."""
        owner = await asyncio.to_thread(self.short_term.session_owner, session_id)
        run_id = run_id or uuid.uuid4().hex
        anonymous = owner.startswith(ANONYMOUS_PREFIX)
        request = RunRequest(
            task="chat",
            user_id=None if anonymous else owner,
            session_id=owner.removeprefix(ANONYMOUS_PREFIX) if anonymous else session_id,
            message=message,
            messages=list(history),
            context_strings=context or {},
            run_id=run_id,
        )
        self.check_request(request)  # bad input is refused before the session is claimed
        busy = await asyncio.to_thread(self._claim_session, session_id, run_id)
        if busy is not None:
            raise SessionBusy(session_id, busy)
        try:
            await asyncio.to_thread(self.short_term.append_turn, session_id, "user", message)
        except BaseException:
            await asyncio.to_thread(self.short_term.release_session, session_id, run_id)
            raise

        async def finish(finished: dict[str, Any]) -> None:
            output = finished["output"]
            meta = {
                "run_id": finished["run_id"],
                "recommendation_id": finished["recommendation_id"],
                "status": finished["status"],
                "item_ids": [r["item_id"] for r in output["recommendations"]],
            }
            try:
                await asyncio.to_thread(
                    self.short_term.append_turn, session_id, "assistant", output["reply"], meta
                )
            except Unavailable as error:
                log.warning("session %s: reply not saved: %s", session_id, error)
            with contextlib.suppress(Unavailable):
                await asyncio.to_thread(
                    self.short_term.release_session, session_id, finished["run_id"]
                )
            if finished["status"] == "success":  # a cancelled or failed turn says nothing
                await asyncio.to_thread(
                    self._remember_statement, owner, message, session_id, finished["run_id"]
                )

        return self.stream_run(request, thread_id=session_id, present=present, on_finish=finish)

    def _claim_session(self, session_id: str, run_id: str) -> str | None:
        """Claim the session for `run_id`; returns None, or the run still answering. A claim
        held by a lost run (its replica died mid-reply: no sign of life for `LOST_AFTER_S`)
        is taken over: the lost run's trace ends with run_lost for every reader, and its
        message gets an empty error reply, so the history stays in user/assistant pairs."""
        memory = self.short_term
        busy: str | None = None
        for _ in range(3):
            busy = memory.claim_session(session_id, run_id, ttl_s=SESSION_CLAIM_TTL_S)
            if busy is None:
                return None
            if not memory.lost_claim(session_id, busy, SESSION_CLAIM_TTL_S, LOST_AFTER_S):
                return busy
            if memory.take_over_session(session_id, busy, run_id, SESSION_CLAIM_TTL_S):
                memory.end_lost_run(busy)
                last = memory.turns(session_id, limit=1)
                if last and last[-1].role == "user":
                    meta = {"run_id": busy, "status": "error", "error": "run_lost", "item_ids": []}
                    memory.append_turn(session_id, "assistant", "", meta)
                log.warning("session %s: run %s was lost, its claim taken over", session_id, busy)
                return None
        return busy

    async def stream_chat(
        self, session_id: str, message: str, context: dict[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """A chat turn's events (see `open_chat`)."""
        events = await self.open_chat(session_id, message, context)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    def _remember_statement(self, owner: str, message: str, session_id: str, run_id: str) -> None:
        """A chat message becomes a stated preference in long-term memory (best effort)."""
        meta: dict[str, MetaValue] = {"session_id": session_id, "run_id": run_id}
        try:
            self.memory.remember([(owner, "stated_preference", message, meta)])
        except Unavailable as error:
            log.warning("stated preference not remembered: %s", error)

    # -- feedback ------------------------------------------------------------------------
    def record_events(self, events: Sequence[EventIn]) -> list[EventOutcome]:
        """Record feedback events; each is stored once (a repeated `event_id` of the same
        user or session is a duplicate). Raises `MemoryUnavailable` if Redis is down."""
        box = self.toolbox()
        outcomes: dict[int, EventOutcome] = {}
        by_subject: dict[str, list[tuple[int, FeedbackRecord]]] = {}
        for n, event in enumerate(events):
            try:
                subject = event.subject
                if event.item_id not in box.dataset.item_index:
                    raise InvalidInput(f"unknown item_id {event.item_id!r}")
                effect = feedback_effect(box, event.type, event.item_id, event.value)
            except (InvalidInput, ValueError) as error:
                outcomes[n] = EventOutcome(event.event_id, "rejected", str(error))
                continue
            record = FeedbackRecord(
                event_id=event.event_id,
                event={k: v for k, v in dataclasses.asdict(event).items() if v is not None},
                item_id=event.item_id,
                profile_delta=effect.profile_delta,
                positive=effect.positive,
                exclude=effect.exclude,
                ts=event.timestamp,
            )
            by_subject.setdefault(subject, []).append((n, record))
        eta = self.settings.profile_eta
        remembered: list[tuple[str, str, str]] = []
        for subject, rows in by_subject.items():
            stored = self.short_term.record_feedback(subject, [r for _, r in rows], eta)
            for (n, record), new in zip(rows, stored, strict=True):
                outcomes[n] = EventOutcome(record.event_id, "stored" if new else "duplicate")
                note = _feedback_note(box, events[n])
                if new and note:
                    remembered.append((subject, note, record.event_id))
        if remembered:
            self.memory_writer.put(
                [(s, "feedback", text, {"event_id": eid}) for s, text, eid in remembered]
            )
        return [outcomes[n] for n in range(len(events))]

    def long_term_memories(self, user_id: str) -> list[Memory]:
        """The user's memories, after what is queued is written (read your writes)."""
        if self._memory_writer is not None:
            self._memory_writer.flush(timeout_s=5.0)
        return self.long_term().memories(user_id)

    def readiness(self) -> dict[str, str]:
        """ "ok" or what is wrong, for Redis and Chroma."""
        checks: dict[str, str] = {}
        checks["redis"] = "ok" if self.redis.available() else "unavailable"
        try:
            self.long_term().heartbeat()
            checks["chroma"] = "ok"
        except Unavailable as error:
            checks["chroma"] = f"unavailable: {error}"
        return checks

    # -- catalog -------------------------------------------------------------------------
    def upsert_item(self, item: Item) -> bool:
        """Add or replace an item of the served catalog; returns True if it is new.

        A changed item keeps the fitted model (indices do not move); a new item refits the
        default model (seconds on small catalogs); either way the new toolbox is prepared
        (`Toolbox.prepare`: the conversation reader knows the new titles), then replaces the
        old one in one step; dialogue statistics, if the catalog has them, are kept. The
        catalog is saved to the data directory."""
        with self._catalog_lock:
            old = self.toolbox()
            dataset, created = with_item(old.dataset, item)
            if created:  # the dialogue statistics follow the items to their new rows
                dialogues = None
                if old.dialogues is not None:
                    arrays = old.dialogues.to_catalog_arrays(old.dataset.item_ids)
                    dialogues = DialogueStats.for_catalog(arrays, dataset)
                box = Toolbox.build(dataset, dialogues=dialogues)
            else:
                box = Toolbox(
                    dataset=dataset,
                    train=old.train,
                    model=old.model,
                    content=ItemContentIndex.build(dataset),
                    catalog=catalog_index(dataset),
                    artifact=old.artifact,
                    dialogues=old.dialogues,
                )
            save_catalog(dataset, self.settings.data_dir, self.catalog)
            register_toolbox(self.catalog, box.prepare())
        one = Dataset(
            dataset.name, [item], [], dataset.interactions.take(np.zeros(0, dtype=np.int64))
        )
        try:
            self.long_term().index_catalog(one, collection=catalog_collection(self.catalog))
        except Unavailable as error:
            self.memory.forget_catalog_index(self.catalog)  # re-indexed on the next search
            log.warning("item %s not indexed in long-term memory yet: %s", item.item_id, error)
        return created

    def ingest(
        self,
        path: str,
        format: str,
        columns: str | None = None,
        name: str | None = None,
        dialogues: str | None = None,
    ) -> dict[str, Any]:
        """Load a dataset from a folder on the server and save it as catalog `name` (the
        served one by default, which is then swapped in); with `dialogues` (a ReDial-format
        JSONL file on the server) also their mention statistics, saved with the catalog and
        given to its toolbox (`agentrec ingest --dialogues`)."""
        from recdata.loaders import load_dataset
        from tools.dialogue_stats import fit_dialogue_file

        name = check_name(name or self.catalog)
        stats = coverage = None
        try:
            dataset = load_dataset(path, format, columns)
            if dialogues is not None:
                stats, coverage = fit_dialogue_file(dialogues, dataset)
        except OSError as error:  # a path the system refuses (too long, unreadable...)
            where = str(error.filename or path)[:200]
            raise InvalidInput(f"cannot read {where!r}: {error.strerror or error}") from None
        arrays = None if stats is None else stats.to_catalog_arrays(dataset.item_ids)
        with self._catalog_lock:
            save_catalog(dataset, self.settings.data_dir, name, dialogues=arrays)
            active = name == self.catalog
            if active:
                register_toolbox(name, Toolbox.build(dataset, dialogues=stats).prepare())
                self._reindex_catalog()
        return {
            "name": name,
            "items": dataset.n_items,
            "users": dataset.n_users,
            "interactions": len(dataset.interactions),
            "active": active,
            "dialogues": None
            if coverage is None
            else {**dataclasses.asdict(coverage), "coverage": round(coverage.coverage, 4)},
        }

    def _reindex_catalog(self) -> None:
        """Bring Chroma's copy of the served catalog up to date (later, if it is down)."""
        self.memory.forget_catalog_index(self.catalog)
        try:
            self.memory.ensure_catalog(self.catalog, force=True)
        except Unavailable as error:
            log.warning("catalog not re-indexed in long-term memory yet: %s", error)

    # -- forgetting ----------------------------------------------------------------------
    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete everything stored about `user_id`: sessions with their turns and graph
        checkpoints, profile, feedback, event log, run traces and long-term memories.
        Raises `Unavailable` if a store is down (call again: every step is idempotent)."""
        if self._memory_writer is not None and not self._memory_writer.flush():
            raise ChromaUnavailable(
                "long-term memory", TimeoutError("queued memories were not written in time")
            )
        sessions = self.short_term.client.zrange(self.short_term.user_sessions_key(user_id), 0, -1)
        saver = self.checkpointer()
        try:
            for session_id in sessions:
                sid = session_id.decode() if isinstance(session_id, bytes) else str(session_id)
                try:
                    saver.delete_thread(sid)
                except (OSError, ConnectionError) as error:
                    raise MemoryUnavailable(self.redis.url, error) from error
        finally:
            saver.close()
        deleted_sessions = self.short_term.forget_user(user_id)
        deleted_memories = self.long_term().forget_user(user_id)
        return {"sessions": deleted_sessions, "memories": deleted_memories}


def _same(event: dict[str, Any]) -> dict[str, Any]:
    return event


def _failure(run_id: str, error: BaseException) -> dict[str, Any]:
    """A failed run's typed error: the caller's fault, an outage, or a bug (logged)."""
    if isinstance(error, Unavailable):
        return {"code": "unavailable", "message": str(error)}
    if isinstance(error, AgentrecError):
        return {"code": "invalid_request", "message": str(error)}
    log.error("run %s failed", run_id, exc_info=error)
    return {"code": "internal_error", "message": "the run failed unexpectedly"}


def json_trace(
    events: list[dict[str, Any]], mode: Literal["summary", "full", "none"]
) -> list[dict[str, Any]]:
    """What a one-shot run keeps in its Redis trace. 'summary': `run_started`, any `error`
    and a `run_finished` whose recommendations are reduced to item id, rank and score (what
    replaying the run and attributing later events to it need; marked `"trace": "summary"`);
    'full': every event; 'none': nothing."""
    if mode == "full":
        return events
    if mode == "none" or not events:
        return []
    finished = events[-1]
    output = finished["output"]
    summary = {
        **finished,
        "trace": "summary",
        "output": {
            "recommendations": [
                {"item_id": r["item_id"], "rank": n, "score": r.get("score")}
                for n, r in enumerate(output.get("recommendations", []), 1)
            ],
            "rating": output.get("rating"),
            "degraded": output.get("degraded", []),
        },
    }
    errors = [e for e in events[1:-1] if e["type"] == "error"]
    return [events[0], *errors, summary]


def _result(events: list[dict[str, Any]]) -> RunResult:
    finished = events[-1]
    errors = [e for e in events if e["type"] == "error" and not e.get("recoverable")]
    return RunResult(
        run_id=finished["run_id"],
        recommendation_id=finished["recommendation_id"],
        output=finished["output"],
        events=events,
        error=errors[0] if errors else None,
    )


def _recommended(item_ids: Sequence[str]) -> dict[str, Any]:
    """An assistant message's record of the items it recommended (`agents.conversation`)."""
    return {RECOMMENDED_KEY: list(item_ids)} if item_ids else {}


def _feedback_note(box: Toolbox, event: EventIn) -> str | None:
    """The long-term memory text of an explicit opinion (like, dislike, rating)."""
    title = box.dataset.items[box.dataset.item_index[event.item_id]].title
    if event.type == "like":
        return f"Liked {title}"
    if event.type == "dislike":
        return f"Disliked {title}"
    if event.type == "rating" and event.value is not None:
        return f"Rated {title} {event.value:g} out of 5"
    return None
