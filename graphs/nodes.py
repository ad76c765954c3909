"""The graph's nodes, one per agent (node names are the agent names).

Each node reads the blackboard, calls its agent's brain, emits trace events and returns a
state update. Nothing here knows how the service streams events.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, cast

import numpy as np
from langgraph.runtime import Runtime
from langgraph.types import Command, Overwrite

from agents.chat_search import search_conversation
from agents.context import Context
from agents.grounding import ground_ranked_list
from agents.item_analyst import analyse_items
from agents.llm import StructuredCaller, StructuredResult, UsageTracker
from agents.llm_brains import (
    caller_for,
    check_llm_config,
    llm_critique,
    llm_intent,
    llm_item_insights,
    llm_manager_decision,
    llm_rerank,
    llm_user_profile,
)
from agents.manager import FINISH, next_step
from agents.memory import LONG_TERM, SHORT_TERM, AgentMemory, get_memory
from agents.ranker import rank
from agents.reflector import review
from agents.schemas import Intent, RankedItem, UserProfile
from agents.searcher import merged_filters, score_given, search, text_scores_from_hits
from agents.state import State, input_defaults
from agents.toolbox import Toolbox, get_toolbox
from agents.trace import Tracer
from agents.user_analyst import analyse_user, summarise, with_conversation
from core.errors import AgentrecError, Unavailable
from graphs import chat
from tools.base import History
from tools.candidates import CandidateFilters

AgentNode = Literal["UserAnalyst", "ItemAnalyst", "Searcher", "Ranker", "Reflector"]
AGENT_NAMES = ("Manager", "UserAnalyst", "ItemAnalyst", "Searcher", "Ranker", "Reflector")


class RunInputError(AgentrecError):
    """The run's input cannot be answered (unknown item, missing candidates...)."""


def _llm(runtime: Runtime[Context], agent: str) -> tuple[StructuredCaller | None, UsageTracker]:
    """The agent's LLM caller (None for the offline brain) and a tracker for this step."""
    tracker = UsageTracker()
    return caller_for(runtime.context, agent, tracker), tracker


def _llm_outcome(
    trace: Tracer, call: StructuredResult[Any], used: bool, tracker: UsageTracker
) -> dict[str, Any]:
    """The state update and trace of one LLM brain call; a failure falls back (degraded)."""
    update: dict[str, Any] = {"usage": tracker.as_dict()}
    if call.attempts == 0:  # nothing to ask (e.g. an empty list): no call was made
        return update
    if used:
        trace.observation(
            f"LLM answer used ({call.attempts} attempt(s), {call.latency_s * 1000:.0f} ms)."
        )
    else:
        trace.emit(
            "error",
            recoverable=True,
            message=f"LLM brain failed ({call.error or 'unusable answer'}); "
            "the offline brain answered this step",
            attempts=call.attempts,
        )
        update["degraded"] = [trace.agent]
    return update


def _box(runtime: Runtime[Context]) -> Toolbox:
    return get_toolbox(runtime.context.catalog)


def _as_history(box: Toolbox, item_ids: list[str], timestamps: list[int]) -> History:
    index = box.dataset.item_index
    known = [n for n, item_id in enumerate(item_ids) if item_id in index]
    items = np.asarray([index[item_ids[n]] for n in known], dtype=np.int64)
    times = None
    if len(timestamps) == len(item_ids):
        times = np.asarray([timestamps[n] for n in known], dtype=np.int64)
    return History(items, times)


def _history(box: Toolbox, state: State) -> History:
    """The user's training history (or the visitor's session history), followed by what
    they engaged with since (feedback in short-term memory)."""
    history = box.history_of(state.user_id)
    if not len(history) and state.history_item_ids:
        history = _as_history(box, state.history_item_ids, state.history_timestamps)
    memory = state.memory
    if memory is None or not memory.feedback_item_ids:
        return history
    recent = _as_history(box, memory.feedback_item_ids, memory.feedback_timestamps)
    if not len(history):
        return recent
    times = None
    if history.timestamps is not None and recent.timestamps is not None:
        times = np.concatenate([history.timestamps, recent.timestamps])
    return History(np.concatenate([history.items, recent.items]), times)


def _filters(state: State) -> CandidateFilters:
    """The request's filters, plus what the user disliked before (memory) and, in a chat,
    every title already named or suggested."""
    filters = CandidateFilters(**state.filters) if state.filters else CandidateFilters()
    excluded = set(filters.exclude_item_ids)
    if state.memory is not None:
        excluded.update(state.memory.excluded_item_ids)
    if state.task == "chat" and state.conversation is not None:
        excluded.update(state.conversation.excluded_item_ids)
    if len(excluded) > len(filters.exclude_item_ids):
        filters = filters.model_copy(update={"exclude_item_ids": sorted(excluded)})
    return filters


def _memory(runtime: Runtime[Context]) -> AgentMemory | None:
    return get_memory(runtime.context.memory)


def _memory_down(trace: Tracer, which: str, error: Unavailable) -> dict[str, Any]:
    """The run carries on without a store that is down: a recoverable error, degraded."""
    trace.emit("error", recoverable=True, message=f"{error}; answering without it")
    return {"degraded": [which]}


def _list_filters(state: State) -> CandidateFilters:
    """What a final list must satisfy: the request's and the intent's filters; a rank task
    orders exactly the given candidates, so nothing is filtered there."""
    if state.task == "rank":
        return CandidateFilters(exclude_seen=False)
    return merged_filters(_filters(state), state.intent)


def _count(state: State, context: Context) -> int:
    count = state.count if state.count is not None else None
    if count is None and state.intent is not None and state.intent.count:
        count = state.intent.count
    return max(1, min(count or context.top_k, 100))


def _check_input(state: State, box: Toolbox) -> None:
    if state.task == "rank" and not box.indices(state.candidate_item_ids).size:
        raise RunInputError("the rank task needs candidate_item_ids from the catalog")
    if state.task in ("rate", "explain") and state.item_id not in box.dataset.item_index:
        raise RunInputError(f"unknown item_id {state.item_id!r} for the {state.task} task")


_PER_RUN: dict[str, Any] = {
    "memory": None,
    "intent": None,
    "conversation": None,
    "profile": None,
    "pool": None,
    "insights": [],
    "ranked": None,
    "critique": None,
    "recommendations": [],
    "rating": None,
    "explanation": "",
    "reply": "",
    "finished": False,
}
_COUNTERS: dict[str, Any] = {
    "completed": [],
    "steps": 0,
    "reflections": 0,
    "degraded": [],
    "usage": {},
}


def _fresh_run(state: State) -> tuple[State, dict[str, Any]]:
    """The state as a new run sees it, and the update that clears the previous run's
    blackboard (reducer channels are overwritten, not added to)."""
    fresh = dataclasses.replace(state, **_PER_RUN, **_COUNTERS)
    update = {**_PER_RUN, **{k: Overwrite(v) for k, v in _COUNTERS.items()}}
    update["steps"] = Overwrite(1)
    return fresh, update


def manager(state: State, runtime: Runtime[Context]) -> Command[AgentNode | Literal["__end__"]]:
    ctx = runtime.context
    box = _box(runtime)
    trace = Tracer(runtime.stream_writer, "Manager")
    update: dict[str, Any] = {"steps": 1}
    interrupted = state.run_id is not None and state.run_id != state.active_run_id
    if state.finished or (interrupted and state.steps > 0):
        # a new run on a thread that answered (or whose last run was cut short): start afresh
        state, update = _fresh_run(state)
    if state.run_id != state.active_run_id:
        update["active_run_id"] = state.run_id
    if state.steps == 0:
        _check_input(state, box)
        memory = _memory(runtime)
        if memory is not None and state.user_id:
            try:
                update["memory"] = state.memory = memory.load_user(state.user_id)
            except Unavailable as error:
                update.update(_memory_down(trace, SHORT_TERM, error))
        with_llm = check_llm_config(ctx)
        if with_llm:
            trace.thought(f"LLM brains: {', '.join(with_llm)}; the others run offline.")
        if chat.is_chat(state):
            started = chat.start_chat(state, box, trace)
            update.update(started)
            state = dataclasses.replace(
                state, **{k: v for k, v in started.items() if k != "messages"}
            )
            if state.intent is not None and state.intent.needs_clarification:
                asked = chat.clarify(state, trace)
                turns = [*update.get("messages", []), *asked.pop("messages")]
                done = {**update, **asked, "messages": turns, **_run_ends()}
                return Command(goto="__end__", update=done)
        elif state.message.strip():
            from agents.intent import parse_intent

            intent = parse_intent(state.message, box.dataset)
            update["intent"] = intent
            trace.thought(f"Intent: {intent.model_dump(exclude_defaults=True)}")
    step = next_step(state, ctx.max_steps, ctx.max_reflections, parallel=ctx.uses_llm())
    caller, tracker = _llm(runtime, "Manager")
    if caller is not None and step != (FINISH,):
        summary = {
            "task": state.task,
            "completed": state.completed,
            "critique": state.critique.model_dump() if state.critique else None,
        }
        decision, call = llm_manager_decision(
            caller, summary, [*step, FINISH] if state.ranked else list(step), ctx.manager_prompt
        )
        update.update(_llm_outcome(trace, call, decision is not None, tracker))
        if decision is not None:
            trace.thought(decision.reason or f"Next: {decision.next}")
            step = (decision.next,)
    if step == (FINISH,):
        update.update(_finish(state, box, ctx, trace))
        update.update(_run_ends())
        trace.thought("The task is answered.")
        return Command(goto="__end__", update=update)
    trace.emit("action", tool="route", args={"next": list(step)})
    return Command(goto=cast(list[AgentNode], list(step)), update=update)


def _run_ends() -> dict[str, Any]:
    """The update that ends a run: the next run on the thread starts afresh, and sees only
    the inputs it sends itself (every other input back at its default)."""
    return {**input_defaults(), "finished": True}


def _grounded(state: State, box: Toolbox, ctx: Context, trace: Tracer) -> list[RankedItem]:
    """The final list, through the grounding validator: nothing ungrounded leaves the graph."""
    pool_ids = [c.item_id for c in state.pool.candidates] if state.pool is not None else []
    report = ground_ranked_list(
        state.ranked,
        box.dataset,
        k=_count(state, ctx),
        history=_history(box, state),
        filters=_list_filters(state),
        allowed_ids=pool_ids,
        fallback=pool_ids,
    )
    items = _with_sources(state, report.items, _count(state, ctx), ctx.diversity)
    if report.changed:
        trace.observation(
            "Grounding changed the list.",
            dropped=[f"{d.proposed}: {d.reason}" for d in report.dropped][:20],
            repaired=[f"{r.proposed} -> {r.item_id}" for r in report.repaired][:20],
            refilled=report.refilled,
        )
    return items


def _with_sources(
    state: State, items: list[RankedItem], count: int, diversity: float
) -> list[RankedItem]:
    """Each item with its pool sources; with diversity on, an item that is not among the
    `count` most relevant candidates is marked as exploration."""
    if state.pool is None:
        return items
    sources = {c.item_id: c.sources for c in state.pool.candidates}
    relevant = {c.item_id for c in state.pool.candidates[:count]}
    out = []
    for item in items:
        found = list(sources.get(item.item_id, []))
        if diversity > 0 and item.item_id not in relevant and state.task != "rank":
            found.append("exploration")
        out.append(item.model_copy(update={"sources": found}))
    return out


def _finish(state: State, box: Toolbox, ctx: Context, trace: Tracer) -> dict[str, Any]:
    if state.task in ("recommend", "rank", "chat"):
        items = _grounded(state, box, ctx, trace)
        trace.emit("recommendations", items=[i.model_dump() for i in items])
        out: dict[str, Any] = {"recommendations": items}
        if state.task == "chat":
            out.update(chat.answer(state, box, items, trace, ctx))
        return out
    insight = state.insights[0] if state.insights else None
    if state.task == "rate":
        history = _history(box, state)
        item = box.dataset.item_index[str(state.item_id)]
        rating = float(box.rating_predictor.predict([history], [item])[0])
        return {"rating": round(rating, 3)}
    return {"explanation": insight.summary if insight else ""}


def user_analyst(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    box = _box(runtime)
    trace = Tracer(runtime.stream_writer, "UserAnalyst")
    trace.emit("agent_started")
    history = _history(box, state)
    trace.action("profile_history", n_interactions=len(history))
    profile = analyse_user(box, state.user_id, history, state.intent)
    if state.task == "chat" and state.conversation is not None:
        profile = with_conversation(box, profile, state.conversation)
    update: dict[str, Any] = {"completed": ["UserAnalyst"]}
    if state.memory is not None and state.memory.preferences:
        profile = _with_preferences(box, profile, state.memory.preferences)
    memory = _memory(runtime)
    has_memories = state.memory is None or state.memory.memory_count > 0  # None: unknown
    if memory is not None and state.user_id and runtime.context.recall_k > 0 and has_memories:
        query = _latest_message(state) or profile.summary
        trace.action("recall_memories", k=runtime.context.recall_k)
        try:
            recalled = memory.recall(state.user_id, query, runtime.context.recall_k)
        except Unavailable as error:
            update.update(_memory_down(trace, LONG_TERM, error))
        else:
            if recalled:
                trace.observation(f"Recalled {len(recalled)} memories.", memories=recalled)
                profile = profile.model_copy(update={"memories": recalled})
    caller, tracker = _llm(runtime, "UserAnalyst")
    if caller is not None:
        better, call = llm_user_profile(
            caller,
            box,
            state.user_id,
            history,
            state.intent,
            profile,
            runtime.context.user_analyst_prompt,
        )
        update.update(_llm_outcome(trace, call, better is not None, tracker))
        profile = better or profile
    trace.observation(profile.summary)
    trace.emit("agent_finished")
    return {**update, "profile": profile}


def _with_preferences(
    box: Toolbox, profile: UserProfile, preferences: dict[str, dict[str, float]]
) -> UserProfile:
    """The profile with the preferences learnt from feedback added to its affinities."""
    affinities = {name: dict(values) for name, values in profile.affinities.items()}
    for name, weights in preferences.items():
        into = affinities.setdefault(name, {})
        for value, weight in weights.items():
            into[value] = round(max(-1.0, min(1.0, into.get(value, 0.0) + weight)), 3)
        affinities[name] = dict(sorted(into.items(), key=lambda kv: -kv[1]))
    summary = summarise(box, affinities, profile.recent_item_ids)
    return profile.model_copy(update={"affinities": affinities, "summary": summary})


def _latest_message(state: State) -> str:
    """The latest user message: the run's `message`, or in a chat the last user turn."""
    if state.message.strip():
        return state.message.strip()
    return state.conversation.latest if state.conversation is not None else ""


def _catalog_text_scores(
    runtime: Runtime[Context], box: Toolbox, query: str, trace: Tracer, update: dict[str, Any]
) -> np.ndarray | None:
    """Text search in the long-term memory's catalog collection (None: search in process)."""
    memory = _memory(runtime)
    if memory is None or not query.strip():
        return None
    k = max(runtime.context.pool_size * 2, 50)
    trace.action("search_catalog", query=query, k=k)
    try:
        hits = memory.search_catalog(runtime.context.catalog, query, k)
    except Unavailable as error:
        update.update(_memory_down(trace, LONG_TERM, error))
        return None
    return text_scores_from_hits(box, hits)


def searcher(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    box = _box(runtime)
    trace = Tracer(runtime.stream_writer, "Searcher")
    trace.emit("agent_started")
    history = _history(box, state)
    update: dict[str, Any] = {"completed": ["Searcher"]}
    if state.task == "rank":
        trace.action("score_candidates", n=len(state.candidate_item_ids))
        pool = score_given(box, history, state.candidate_item_ids)
    else:
        intent: Intent | None = state.intent
        caller, tracker = _llm(runtime, "Searcher")
        # in a chat the LLM reads the conversation, as the offline brain does
        message = chat.transcript(state) if state.task == "chat" else _latest_message(state)
        if caller is not None and message:
            understood, call = llm_intent(caller, box, message, runtime.context.searcher_prompt)
            update.update(_llm_outcome(trace, call, understood is not None, tracker))
            if understood is not None:
                intent = understood
                update["intent"] = intent
                trace.thought(f"Intent: {intent.model_dump(exclude_defaults=True)}")
        query = " ".join(intent.keywords) if intent is not None else ""
        text_scores = _catalog_text_scores(runtime, box, query, trace, update)
        preferences = state.memory.preferences if state.memory is not None else None
        trace.action("search", pool_size=runtime.context.pool_size)
        if state.task == "chat" and state.conversation is not None:
            found = search_conversation(
                box,
                history,
                state.conversation,
                intent or Intent(),
                _filters(state),
                runtime.context.pool_size,
                _count(state, runtime.context),
                preferences=preferences,
                text_scores=text_scores,
            )
            pool = found.pool
            if found.intent != intent:
                update["intent"] = found.intent
                trace.observation(f"Nothing met every constraint; let go of {pool.relaxed}.")
        else:
            pool = search(
                box,
                history,
                intent,
                _filters(state),
                runtime.context.pool_size,
                preferences=preferences,
                text_scores=text_scores,
            )
    trace.emit(
        "candidates",
        items=[c.model_dump() for c in pool.candidates[:20]],
        total=len(pool.candidates),
    )
    trace.emit("agent_finished")
    return {**update, "pool": pool}


def item_analyst(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    box = _box(runtime)
    trace = Tracer(runtime.stream_writer, "ItemAnalyst")
    trace.emit("agent_started")
    if state.task in ("rate", "explain"):
        ids = [str(state.item_id)]
    else:
        pool = state.pool.candidates if state.pool is not None else []
        ids = [c.item_id for c in pool[: _count(state, runtime.context)]]
    trace.action("analyse_items", n=len(ids))
    history = _history(box, state)
    insights = analyse_items(box, history, ids)
    update: dict[str, Any] = {"completed": ["ItemAnalyst"]}
    caller, tracker = _llm(runtime, "ItemAnalyst")
    if caller is not None and ids:
        better, call = llm_item_insights(
            caller, box, history, ids, insights, runtime.context.item_analyst_prompt
        )
        update.update(_llm_outcome(trace, call, better is not None, tracker))
        insights = better or insights
    trace.observation(f"Evidence for {len(insights)} items.")
    trace.emit("agent_finished")
    return {**update, "insights": insights}


def ranker(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    box = _box(runtime)
    ctx = runtime.context
    trace = Tracer(runtime.stream_writer, "Ranker")
    trace.emit("agent_started")
    pool = state.pool
    assert pool is not None, "the Searcher runs before the Ranker"
    ranked = rank(
        box,
        pool,
        state.insights,
        state.profile,
        _count(state, ctx),
        ctx.diversity,
        state.critique,
    )
    update: dict[str, Any] = {"completed": ["Ranker"]}
    caller, tracker = _llm(runtime, "Ranker")
    if caller is not None and pool.candidates:
        better, call = llm_rerank(
            caller,
            box,
            pool,
            state.insights,
            state.profile,
            _count(state, ctx),
            ranked,
            _history(box, state),
            _list_filters(state),
            ctx.ranker_prompt,
            critique=state.critique,
        )
        update.update(_llm_outcome(trace, call, better is not None, tracker))
        if call.value is not None:
            final = {item.item_id for item in (better or ranked).items}
            changed = [p.item_id for p in call.value.items if p.item_id not in final]
            if changed:
                trace.observation(
                    "Grounding repaired or dropped LLM proposals.", proposals=changed[:20]
                )
        ranked = better or ranked
    trace.observation(f"Ranked {len(ranked.items)} items.")
    trace.emit("agent_finished")
    return {**update, "ranked": ranked}


def reflector(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    box = _box(runtime)
    trace = Tracer(runtime.stream_writer, "Reflector")
    trace.emit("agent_started")
    assert state.ranked is not None and state.pool is not None
    critique = review(
        box,
        state.ranked,
        state.pool,
        _list_filters(state),
        _history(box, state),
        _count(state, runtime.context),
    )
    update: dict[str, Any] = {}
    caller, tracker = _llm(runtime, "Reflector")
    # a chat reply written by a model is checked on its own: the LLM review is not asked too,
    # so a chat turn stays within four round trips
    llm_review = not (state.task == "chat" and chat.uses_llm_reply(runtime.context))
    if caller is not None and critique.accept and llm_review:
        verdict, call = llm_critique(
            caller,
            box,
            state.ranked,
            state.profile,
            state.intent,
            runtime.context.reflector_prompt,
        )
        update.update(_llm_outcome(trace, call, verdict is not None, tracker))
        critique = verdict or critique
    trace.emit("reflection", accept=critique.accept, problems=critique.problems)
    trace.emit("agent_finished")
    return {
        **update,
        "critique": critique,
        "reflections": 0 if critique.accept else 1,
        "completed": ["Reflector"],
    }
