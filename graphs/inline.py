"""Run the tasks of a LangGraph step in the calling thread.

LangGraph runs a step with more than one task (the User Analyst and the Searcher of a
`recommend` run) in a thread pool that it creates for every run: a thread started, and
joined at the end, per request. Offline brains are pure Python that holds the GIL, so the
threads buy nothing and cost about 2-3 ms of CPU per run. `inline_steps(config)` gives a
run a submit function that runs each task at once in the caller's thread and hands back a
finished future: the tasks of a step still read the same state and their writes are still
applied together at the end of the step, so the answer is the same, in one thread.

Only for runs consumed without a live stream (`stream_mode="values"` / `invoke`): with the
`custom` or `messages` stream modes LangGraph submits a waiter that must run beside the
tasks. The configurable key is LangGraph's own (`CONFIG_KEY_RUNNER_SUBMIT`).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from contextvars import copy_context
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import CONFIG_KEY_RUNNER_SUBMIT


def _run_now(
    fn: Callable[..., Any],
    *args: Any,
    __name__: str | None = None,
    __cancel_on_exit__: bool = False,
    __reraise_on_exit__: bool = True,
    __next_tick__: bool = False,
    **kwargs: Any,
) -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    try:
        future.set_result(copy_context().run(fn, *args, **kwargs))
    except BaseException as error:  # the runner reads it from the future, as from a thread
        future.set_exception(error)
    return future


def _submit() -> Callable[..., concurrent.futures.Future[Any]]:
    return _run_now


def inline_steps(config: RunnableConfig) -> RunnableConfig:
    """`config` with every task of a step run in the calling thread."""
    configurable = {**config.get("configurable", {}), CONFIG_KEY_RUNNER_SUBMIT: _submit}
    return {**config, "configurable": configurable}
