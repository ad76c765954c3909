"""User Analyst: turns a history and stated wishes into a `UserProfile`.

Offline brain: attribute affinities weighted by recency (exponential decay over positions
from the end) and by rating (above or below the user's own mean), scaled to [-1, 1]; the
stated constraints are the run's `Intent`.
"""

from __future__ import annotations

import weakref
from collections import defaultdict

import numpy as np

from agents.schemas import Conversation, Intent, UserProfile
from agents.toolbox import Toolbox
from recdata.dataset import Dataset
from tools.base import History

HALF_LIFE = 20.0
"""Positions from the end after which an interaction counts half."""
MAX_VALUES = 60
"""Attributes with more distinct values than this (ids, directors) are not profiled."""


_profiled: weakref.WeakKeyDictionary[Dataset, tuple[str, ...]] = weakref.WeakKeyDictionary()


def profiled_attributes(box: Toolbox) -> list[str]:
    """Catalog attributes with a small vocabulary, worth an affinity each.

    Computed once per catalog (its items are immutable): it reads every item, which cost
    more than the rest of a profile.
    """
    cached = _profiled.get(box.dataset)
    if cached is None:
        ds = box.dataset
        names = {name for item in ds.items[:2000] for name in item.attributes}
        cached = tuple(sorted(n for n in names if 1 < len(ds.attribute_values(n)) <= MAX_VALUES))
        _profiled[ds] = cached
    return list(cached)


def analyse_user(
    box: Toolbox, user_id: str | None, history: History, intent: Intent | None
) -> UserProfile:
    n = len(history)
    intent = intent or Intent()
    if n == 0:
        return UserProfile(
            user_id=user_id,
            summary="New visitor: no history yet, recommendations start from what is popular"
            + (" and from what they asked for." if intent.wanted else "."),
            cold_start=True,
            constraints=intent,
        )
    positions = np.arange(n)
    recency = np.power(0.5, (n - 1 - positions) / HALF_LIFE)
    if history.ratings is not None and float(np.ptp(history.ratings)) > 0:
        centred = history.ratings - float(history.ratings.mean())
        weight = recency * centred / float(np.abs(centred).max())
    else:
        weight = recency
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    attributes = profiled_attributes(box)
    for item, w in zip(history.items.tolist(), weight.tolist(), strict=True):
        attrs = box.dataset.items[item].attributes
        for name in attributes:
            for value in attrs.get(name, ()):
                sums[name][value] += w
    affinities: dict[str, dict[str, float]] = {}
    for name, values in sums.items():
        top = max((abs(v) for v in values.values()), default=0.0)
        if top > 0:
            ranked = sorted(values.items(), key=lambda kv: -kv[1])
            affinities[name] = {v: round(s / top, 3) for v, s in ranked if abs(s / top) >= 0.05}
    recent = [box.dataset.items[int(i)].item_id for i in history.items[::-1][:10]]
    return UserProfile(
        user_id=user_id,
        summary=summarise(box, affinities, recent),
        affinities=affinities,
        recent_item_ids=recent,
        n_interactions=n,
        cold_start=False,
        constraints=intent,
    )


CHAT_OPINION_WEIGHT = 0.5
"""Affinity a title liked (+) or disliked (-) in the conversation adds to each of its values."""


def with_conversation(
    box: Toolbox, profile: UserProfile, conversation: Conversation
) -> UserProfile:
    """The profile with what the user said in the chat: the attribute values of the titles
    they liked count for them, of those they disliked against them (clipped to [-1, 1])."""
    signs = {"liked": 1.0, "disliked": -1.0}
    affinities = {name: dict(values) for name, values in profile.affinities.items()}
    attributes = profiled_attributes(box)
    said: dict[str, list[str]] = {"liked": [], "disliked": []}
    for mention in conversation.mentions:
        sign = signs.get(mention.opinion or "")
        if sign is None or mention.item_id not in box.dataset.item_index:
            continue
        item = box.dataset.items[box.dataset.item_index[mention.item_id]]
        said[str(mention.opinion)].append(item.title)
        for name in attributes:
            into = affinities.setdefault(name, {})
            for value in item.attributes.get(name, ()):
                weight = into.get(value, 0.0) + sign * CHAT_OPINION_WEIGHT
                into[value] = round(max(-1.0, min(1.0, weight)), 3)
    if not said["liked"] and not said["disliked"]:
        return profile
    notes = [profile.summary]
    if said["liked"]:
        notes.append(f"In this chat liked {', '.join(said['liked'][:3])}.")
    if said["disliked"]:
        notes.append(f"In this chat did not like {', '.join(said['disliked'][:3])}.")
    return profile.model_copy(update={"affinities": affinities, "summary": " ".join(notes)})


def summarise(box: Toolbox, affinities: dict[str, dict[str, float]], recent: list[str]) -> str:
    """One line on what the user enjoys, dislikes and watched last."""
    parts: list[str] = []
    for name, values in affinities.items():
        liked = [v for v, a in values.items() if a > 0.3][:3]
        disliked = [v for v, a in sorted(values.items(), key=lambda kv: kv[1]) if a < -0.3][:2]
        if liked:
            parts.append(f"enjoys {', '.join(liked)} ({name})")
        if disliked:
            parts.append(f"tends to dislike {', '.join(disliked)}")
    titles = [box.dataset.items[box.dataset.item_index[i]].title for i in recent[:3]]
    text = "; ".join(parts) if parts else "varied tastes"
    return f"{text[:1].upper()}{text[1:]}; recently: {', '.join(titles)}."
