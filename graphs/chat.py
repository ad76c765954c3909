"""The chat task's steps in the Manager node: reading the conversation when a run starts,
and answering (the reply joins the conversation) when it ends.

A chat run reads `messages` (the conversation so far) and `message` (the latest user
message, appended as a user turn unless it already ends the conversation). A run given
only `messages` whose last turn is an unanswered user message is a chat run too, whatever
its task (LangGraph Studio's chat view sends just that).

The reply is the offline brain's (`agents.reply`) unless a reply model is configured
(`Context.reply_model`, else `Context.model`): then the model writes it and it is shown only
if it passes the grounding check (`agents.reply_llm`); a rejected or failed reply leaves
the offline one, and the run is marked degraded ("Reply"). Either way the reply reaches the
client as `token` events that spell it exactly.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.context import Context
from agents.conversation import RECOMMENDED_KEY, chat_turns
from agents.llm import UsageTracker
from agents.llm_brains import caller_for
from agents.reply import write_reply
from agents.reply_llm import AGENT as REPLY_AGENT
from agents.reply_llm import llm_reply
from agents.schemas import RankedItem
from agents.state import State
from agents.toolbox import Toolbox
from agents.trace import Tracer


def is_chat(state: State) -> bool:
    """A chat run: the chat task, or a bare conversation ending with a user turn."""
    if state.task == "chat":
        return True
    return (
        state.task == "recommend"
        and not state.message.strip()
        and bool(state.messages)
        and isinstance(state.messages[-1], HumanMessage)
    )


def start_chat(state: State, box: Toolbox, trace: Tracer) -> dict[str, Any]:
    """The update that starts a chat run: the task, the new user turn, the conversation and
    its intent."""
    history: list[BaseMessage] = list(state.messages)
    text = state.message.strip()
    update: dict[str, Any] = {"task": "chat"}
    if text and not _ends_with_user(history, text):
        turn = HumanMessage(text)
        history.append(turn)
        update["messages"] = [turn]
    reading = box.conversation_reader.read(chat_turns(history))
    conversation = reading.conversation
    update["conversation"] = conversation
    update["intent"] = reading.intent
    trace.thought(
        f"Read {conversation.turns} turn(s): {len(conversation.mentions)} title(s) named, "
        f"{len(conversation.suggested_item_ids)} already suggested.",
    )
    trace.thought(f"Intent: {reading.intent.model_dump(exclude_defaults=True)}")
    return update


def clarify(state: State, trace: Tracer) -> dict[str, Any]:
    """The answer to a conversation that says nothing usable yet: one question."""
    intent = state.intent
    question = (intent.clarifying_question if intent else None) or "What are you in the mood for?"
    stream_reply(trace, question)
    return {"reply": question, "recommendations": [], "messages": [AIMessage(question)]}


def answer(
    state: State, box: Toolbox, items: list[RankedItem], trace: Tracer, context: Context
) -> dict[str, Any]:
    """The reply to a chat run (streamed as tokens) and the assistant turn it adds: written
    by the reply model when one is configured and its reply passes the check
    (`agents.reply_llm`), else by the offline brain (`agents.reply`)."""
    shape = sum(isinstance(m, AIMessage) for m in state.messages)
    relaxed = state.pool.relaxed if state.pool is not None else []
    reply = write_reply(
        box, state.conversation, state.intent, items, state.insights, relaxed, shape
    )
    chunks = _words(reply)
    update: dict[str, Any] = {}
    tracker = UsageTracker()
    caller = caller_for(context, REPLY_AGENT, tracker)
    if caller is not None and items:
        written = llm_reply(
            caller.model,
            box,
            transcript(state),
            state.conversation,
            state.intent,
            items,
            state.insights,
            relaxed,
            reply,
            context.reply_prompt,
            tracker,
        )
        update["usage"] = tracker.as_dict()
        if written.text is not None:
            reply, chunks = written.text, written.chunks
            trace.observation("The reply model's reply passed the check.")
        else:
            trace.emit(
                "error",
                recoverable=True,
                message=f"LLM reply rejected ({written.error}); the offline reply answers",
            )
            update["degraded"] = [REPLY_AGENT]
    for chunk in chunks:
        trace.emit("token", text=chunk)
    message = AIMessage(reply, additional_kwargs={RECOMMENDED_KEY: [i.item_id for i in items]})
    return {**update, "reply": reply, "messages": [message]}


def uses_llm_reply(context: Context) -> bool:
    """Whether chat replies are written by a model under `context`."""
    return bool(context.model_for(REPLY_AGENT))


TRANSCRIPT_TURNS = 12
TRANSCRIPT_CHARS = 4_000


def transcript(state: State) -> str:
    """The conversation as text for an LLM brain: the latest `TRANSCRIPT_TURNS` turns, one
    "user: ..." or "assistant: ..." line each (at most `TRANSCRIPT_CHARS`, the latest kept);
    a conversation of one user turn is just its text."""
    turns = chat_turns(state.messages)[-TRANSCRIPT_TURNS:]
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].text
    lines = [f"{turn.role}: {' '.join(turn.text.split())}" for turn in turns]
    return "\n".join(lines)[-TRANSCRIPT_CHARS:]


def stream_reply(trace: Tracer, reply: str) -> None:
    """The user-facing reply as `token` events, word by word (what a chat UI types out)."""
    for word in _words(reply):
        trace.emit("token", text=word)


def _words(reply: str) -> list[str]:
    words = reply.split(" ")
    return [w if n == len(words) - 1 else w + " " for n, w in enumerate(words)]


def _ends_with_user(messages: list[BaseMessage], text: str) -> bool:
    return (
        bool(messages)
        and isinstance(messages[-1], HumanMessage)
        and (messages[-1].text.strip() == text)
    )
