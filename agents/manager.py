"""Manager: decides the next step of a run from the task and the blackboard.

Offline brain: a fixed, task-specific plan of stages; the agents of one stage run in
parallel. A chat turn runs its agents one after the other: each step is short, and a
single task per step runs in the calling thread (no thread pool to start per turn), and
the Searcher then finds the profile built from the conversation on the blackboard.
After a rejected review it sends the list back to the Ranker, at most
`max_reflections` times; `max_steps` bounds the whole run.
"""

from __future__ import annotations

from agents.schemas import TaskName
from agents.state import State

PLANS: dict[TaskName, tuple[tuple[str, ...], ...]] = {
    "recommend": (("UserAnalyst", "Searcher"), ("ItemAnalyst",), ("Ranker",), ("Reflector",)),
    "chat": (("UserAnalyst",), ("Searcher",), ("ItemAnalyst",), ("Ranker",), ("Reflector",)),
    "rank": (("UserAnalyst", "Searcher"), ("ItemAnalyst",), ("Ranker",), ("Reflector",)),
    "rate": (("UserAnalyst",), ("ItemAnalyst",)),
    "explain": (("UserAnalyst",), ("ItemAnalyst",)),
}
FINISH = "finish"


PARALLEL_CHAT = PLANS["recommend"]
"""The chat plan when LLM brains answer: their calls are network round trips, so the User
Analyst and the Searcher ask at the same time."""


def next_step(
    state: State, max_steps: int, max_reflections: int, *, parallel: bool = False
) -> tuple[str, ...]:
    """The agents to run next, or (FINISH,). `parallel`: LLM brains answer (a chat then
    runs its analysts and its Searcher side by side)."""
    if state.steps >= max_steps:
        return (FINISH,)
    last = state.completed[-1] if state.completed else None
    critique = state.critique
    if last == "Reflector" and critique is not None and not critique.accept:
        if state.reflections <= max_reflections:
            return ("Ranker",)
        return (FINISH,)
    if last == "Ranker" and state.reflections > 0:
        return ("Reflector",)
    done = set(state.completed)
    plan = PARALLEL_CHAT if parallel and state.task == "chat" else PLANS[state.task]
    for stage in plan:
        todo = tuple(agent for agent in stage if agent not in done)
        if todo:
            return todo
    return (FINISH,)
