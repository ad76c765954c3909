"""The chat reply written by an LLM, checked before anyone reads it.

The model gets the conversation (its latest turns), the grounded recommendations (titles as
people write them, each with the offline brain's reason), what could not be done, and the
offline reply as a draft. Its answer is streamed from the model, then checked: it must be
non-empty and every catalog title it names (`tools.titles.TitleLinker`) must be one of the
recommendations or a title the user named. Only a checked reply is shown, its chunks
becoming `token` events in the order the model produced them; otherwise the caller keeps the
offline reply and marks the run degraded. Grounded or nothing: the check runs on the whole
text, so a reply reaches the user after the model has finished writing it.

One call, no retry: a chat turn's LLM budget is six calls in four round trips (the
analysts and the Searcher in parallel, the Item Analyst, the Ranker, this reply).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from agents.llm import TokenUsage, UsageTracker, stream_text
from agents.reply import display_title, problems, reason
from agents.schemas import Conversation, Intent, ItemInsight, RankedItem
from agents.toolbox import Toolbox

AGENT = "Reply"
MAX_ITEMS = 5
MAX_REPLY_CHARS = 2_000
INSTRUCTIONS = (
    "Write the reply to the latest user turn of this conversation. Recommend from "
    "`recommendations` (best first); `notes` says what could not be done; `draft` is a "
    "plain reply you may improve on."
)


@dataclass
class WrittenReply:
    text: str | None
    """The checked reply; None when it failed (see `error`)."""
    chunks: list[str] = field(default_factory=list)
    error: str | None = None


def llm_reply(
    model: BaseChatModel,
    box: Toolbox,
    transcript: str,
    conversation: Conversation | None,
    intent: Intent | None,
    items: Sequence[RankedItem],
    insights: Sequence[ItemInsight],
    relaxed: Sequence[str],
    draft: str,
    prompt: str,
    tracker: UsageTracker | None = None,
) -> WrittenReply:
    """Ask `model` for the reply (see the module docstring). Never raises for LLM failures."""
    conversation = conversation or Conversation()
    intent = intent or Intent()
    payload = {
        "conversation": transcript,
        "recommendations": [
            {
                "title": display_title(box, item.item_id),
                "reason": reason(box, item.item_id, conversation, intent, insights),
            }
            for item in items[:MAX_ITEMS]
        ],
        "notes": problems(conversation, relaxed),
        "draft": draft,
    }
    data = json.dumps(payload, ensure_ascii=False)
    messages = [SystemMessage(prompt), HumanMessage(f"{INSTRUCTIONS}\n<data>{data}</data>")]
    chunks: list[str] = []
    try:
        for chunk in stream_text(model, messages, tracker=tracker, agent=AGENT):
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > MAX_REPLY_CHARS:
                return WrittenReply(None, error="the reply is too long")
    except Exception as exc:  # any LLM/transport failure: the offline reply answers
        if tracker is not None:
            tracker.record(AGENT, TokenUsage(), failed_calls=1)
        return WrittenReply(None, error=f"{type(exc).__name__}: {exc}"[:200])
    text = "".join(chunks).strip()
    if not text:
        return WrittenReply(None, error="empty reply")
    ungrounded = ungrounded_titles(box, text, items, conversation)
    if ungrounded:
        return WrittenReply(None, error=f"it names {', '.join(ungrounded[:3])}, not recommended")
    return WrittenReply(text, chunks)


def ungrounded_titles(
    box: Toolbox, text: str, items: Sequence[RankedItem], conversation: Conversation
) -> list[str]:
    """Catalog titles `text` names that are neither recommended nor named by the user."""
    allowed = {item.item_id for item in items}
    allowed.update(m.item_id for m in conversation.mentions if m.role == "user")
    linked = box.title_linker.link(text)
    return list(dict.fromkeys(m.text for m in linked.mentions if m.item_id not in allowed))
