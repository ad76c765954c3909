"""How a feedback event changes what the agents know about a user.

An event on an item moves the user's preference for each of the item's profiled attribute
values by `signal / number of values` (so a film with three genres moves each by a third),
where the signal is the event's strength: a like or purchase +1, a dislike -1, a rating
(value - 3) / 2 on a 1-5 scale, a click +0.3, a view +0.1, an impression nothing. The store
applies P(u, t+1) = P(u, t) + eta * dP. Engagement (click, like, purchase, rating >= 4)
joins the user's feedback history, which the collaborative model reads as recent items; a
dislike or a rating <= 2 excludes the item from later recommendations, and a later like,
purchase or high rating lifts that exclusion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agents.toolbox import Toolbox
from agents.user_analyst import profiled_attributes

EventType = Literal["impression", "view", "click", "like", "dislike", "rating", "purchase"]
EVENT_TYPES: tuple[EventType, ...] = (
    "impression",
    "view",
    "click",
    "like",
    "dislike",
    "rating",
    "purchase",
)
SIGNALS: dict[str, float] = {
    "impression": 0.0,
    "view": 0.1,
    "click": 0.3,
    "like": 1.0,
    "dislike": -1.0,
    "purchase": 1.0,
}


@dataclass(frozen=True)
class FeedbackEffect:
    signal: float
    profile_delta: dict[str, dict[str, float]] = field(default_factory=dict)
    positive: bool = False
    exclude: bool | None = None


def event_signal(event_type: str, value: float | None) -> float:
    """The strength of an event in [-1, 1]; a rating needs its value (1 to 5)."""
    if event_type == "rating":
        if value is None:
            raise ValueError("a rating event needs a value between 1 and 5")
        return max(-1.0, min(1.0, (float(value) - 3.0) / 2.0))
    if event_type not in SIGNALS:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    return SIGNALS[event_type]


def feedback_effect(
    box: Toolbox, event_type: str, item_id: str, value: float | None = None
) -> FeedbackEffect:
    """What one event on a catalog item changes (the item must be in the catalog)."""
    signal = event_signal(event_type, value)
    attributes = box.dataset.items[box.dataset.item_index[item_id]].attributes
    delta: dict[str, dict[str, float]] = {}
    if signal:
        for name in profiled_attributes(box):
            values = attributes.get(name, ())
            if values:
                delta[name] = {v: signal / len(values) for v in values}
    strong_like = event_type in ("like", "purchase") or (event_type == "rating" and signal >= 0.5)
    strong_dislike = event_type == "dislike" or (event_type == "rating" and signal <= -0.5)
    return FeedbackEffect(
        signal=signal,
        profile_delta=delta,
        positive=strong_like or event_type == "click",
        exclude=True if strong_dislike else (False if strong_like else None),
    )
