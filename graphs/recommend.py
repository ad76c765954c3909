"""The agent graph for every task (recommend, rank, rate, explain, chat).

`build_graph()` returns the uncompiled builder; `graph` is compiled without a checkpointer for
`langgraph.json` (LangGraph Studio brings its own persistence), and the service compiles the
same builder with its Redis checkpointer.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.context import Context
from agents.state import InputState, OutputState, State
from graphs import nodes

AGENTS = {
    "UserAnalyst": nodes.user_analyst,
    "Searcher": nodes.searcher,
    "ItemAnalyst": nodes.item_analyst,
    "Ranker": nodes.ranker,
    "Reflector": nodes.reflector,
}


def build_graph() -> StateGraph[State, Context, InputState, OutputState]:
    builder = StateGraph(
        State, context_schema=Context, input_schema=InputState, output_schema=OutputState
    )
    # the Manager routes with Command(goto=...): its destinations are declared so the drawn
    # graph (Studio, get_graph()) shows every route and every edge back
    builder.add_node("Manager", nodes.manager, destinations=(*AGENTS, END))
    for name, node in AGENTS.items():
        builder.add_node(name, node)
        builder.add_edge(name, "Manager")
    builder.add_edge(START, "Manager")
    return builder


class _AllowlistKeepingGraph(CompiledStateGraph[State, Context, InputState, OutputState]):
    """A compiled graph whose copies keep its msgpack allowlist.

    `compile()` derives the allowlist of types a checkpointer may load from the state
    schemas, but `Pregel.copy()` (langgraph 1.2) rebuilds the graph through `__init__`, which
    resets it; `langgraph dev` serves such a copy (with its own checkpointer), so under
    `LANGGRAPH_STRICT_MSGPACK=true` it blocked the agents' schemas when a thread loaded."""

    def copy(self, update: dict[str, Any] | None = None) -> _AllowlistKeepingGraph:
        copied = super().copy(update)
        copied._serde_allowlist = self._serde_allowlist
        return copied


graph = build_graph().compile(name="agentrec")
graph.__class__ = _AllowlistKeepingGraph
