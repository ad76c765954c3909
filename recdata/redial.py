"""ReDial dialogues (Li et al., "Towards Deep Conversational Recommendations", NeurIPS 2018,
CC BY 4.0): loading, the text a system may read, and mapping mentions to a catalog.

The JSONL format has one dialogue per line: `conversationId`, `initiatorWorkerId` (the
seeker), `respondentWorkerId` (the recommender), `messages` (`messageId`, `text`,
`senderWorkerId`, `timeOffset`), `movieMentions` ({ReDial movie id: "Title (Year)" as typed})
and the questionnaires `initiatorQuestions` / `respondentQuestions` ({movie id: {suggested,
seen, liked}}). Movies are written `@<id>` inside the text.

What a system may read of a dialogue is `Dialogue.turns`: each message with a role (seeker =
"user", recommender = "assistant"), HTML entities unescaped and every `@id` replaced by the
mentioned title *without its year* (people rarely type years). Never the ids, never the
questionnaire labels.

`MentionMapper` maps a mention ("Title (Year)" as typed) to a catalog item by normalised title
(`recdata.titles.title_forms`: case, accents, punctuation, spacing, trailing articles,
alternate titles in parentheses); the years must agree when both have one. Among several
matches, an item of exactly the mentioned year wins, then the main title over an alternate
one, then the item with the most interactions.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from core.errors import DataError
from recdata.dataset import Dataset
from recdata.titles import item_year, split_year, title_forms

MENTION = re.compile(r"@(\d+)")
"""A movie mention inside a message's text: "@111776"."""
_SPACES = re.compile(r"[ \t]{2,}")

Role = Literal["user", "assistant"]


class Turn(NamedTuple):
    """One message of a conversation as a system reads it."""

    role: Role
    text: str


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    sender: str
    text: str
    """As in the file: HTML-escaped in places, movies as `@id`."""

    def mentioned_ids(self) -> list[str]:
        """The ReDial movie ids written in the text, in order, each once."""
        return list(dict.fromkeys(MENTION.findall(self.text)))


Answers = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Dialogue:
    conversation_id: str
    seeker: str
    recommender: str
    messages: tuple[Message, ...]
    mentions: Mapping[str, str]
    """ReDial movie id -> title as typed ("" when the file has none)."""
    seeker_answers: Answers = field(default_factory=dict)
    recommender_answers: Answers = field(default_factory=dict)
    """The questionnaires (labels about the dialogue: training data only)."""

    def role_of(self, message: Message) -> Role:
        return "user" if message.sender == self.seeker else "assistant"

    def text_of(self, message: Message) -> str:
        """The message as a system reads it (see the module docstring)."""
        return render_text(message.text, self.mentions)

    @property
    def turns(self) -> list[Turn]:
        return [Turn(self.role_of(m), self.text_of(m)) for m in self.messages]


def render_text(text: str, mentions: Mapping[str, str]) -> str:
    """`text` with HTML entities unescaped and each `@id` replaced by its title without the
    year (an id without a title is dropped)."""

    def title(match: re.Match[str]) -> str:
        return split_year(mentions.get(match.group(1), ""))[0]

    rendered = MENTION.sub(title, html.unescape(text))
    return _SPACES.sub(" ", rendered).strip()


def _answers(value: object) -> Answers:
    if not isinstance(value, dict):
        return {}  # the file writes an empty questionnaire as []
    return {
        str(movie): {str(k): int(v) for k, v in labels.items() if isinstance(v, int)}
        for movie, labels in value.items()
        if isinstance(labels, dict)
    }


def _dialogue(record: Any) -> Dialogue:
    if not isinstance(record, dict):
        raise ValueError("a dialogue must be a JSON object")
    messages = tuple(
        Message(str(m["messageId"]), str(m["senderWorkerId"]), str(m.get("text") or ""))
        for m in record["messages"]
    )
    mentions = record.get("movieMentions") or {}
    if not isinstance(mentions, dict):
        raise ValueError("movieMentions must be an object")
    return Dialogue(
        conversation_id=str(record["conversationId"]),
        seeker=str(record["initiatorWorkerId"]),
        recommender=str(record["respondentWorkerId"]),
        messages=messages,
        mentions={str(k): str(v or "") for k, v in mentions.items()},
        seeker_answers=_answers(record.get("initiatorQuestions")),
        recommender_answers=_answers(record.get("respondentQuestions")),
    )


def read_dialogues(path: str | Path) -> Iterator[Dialogue]:
    """The dialogues of a ReDial JSONL file, in file order (blank lines are skipped)."""
    path = Path(path).expanduser()
    try:
        found = path.is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte...
        raise DataError(str(path)[:200], f"not a usable path: {exc}") from None
    if not found:
        raise DataError(path, "no such file (expected ReDial dialogues, one JSON per line)")
    number = 0
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield _dialogue(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(path, f"not JSON ({exc.msg})", number) from None
                except (KeyError, TypeError, ValueError) as exc:
                    problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise DataError(path, f"not a ReDial dialogue: {problem}", number) from None
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text (expected ReDial JSONL)", number + 1) from None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None


def load_dialogues(path: str | Path) -> list[Dialogue]:
    dialogues = list(read_dialogues(path))
    if not dialogues:
        raise DataError(path, "holds no dialogues")
    return dialogues


class MentionMapper:
    """Maps ReDial mentions ("Title (Year)" as typed) to catalog item indices."""

    def __init__(self, catalog: Dataset, popularity: np.ndarray | None = None) -> None:
        self.catalog = catalog
        if popularity is None:
            items = np.asarray(catalog.interactions.item, dtype=np.int64)
            popularity = np.bincount(items, minlength=catalog.n_items)[: catalog.n_items]
        self.popularity = np.asarray(popularity)
        self.years: list[int | None] = []
        # form -> [(item index, 0 for the main title / 1 for an alternate title)]
        self._by_form: dict[str, list[tuple[int, int]]] = {}
        for index, item in enumerate(catalog.items):
            forms = title_forms(item.title)[0]
            self.years.append(item_year(item.title, item.attributes))
            for rank, form in enumerate(forms):
                self._by_form.setdefault(form, []).append((index, min(rank, 1)))
        self._cache: dict[str, int | None] = {}

    def map(self, title: str) -> int | None:
        """The catalog index of a mentioned title, or None when nothing agrees."""
        if title in self._cache:
            return self._cache[title]
        forms, year = title_forms(title)
        best: tuple[tuple[int, int, int, int], int] | None = None
        for rank, form in enumerate(forms):
            for index, item_rank in self._by_form.get(form, ()):
                item_year = self.years[index]
                if year is not None and item_year is not None and year != item_year:
                    continue
                key = (
                    int(year is None or item_year != year),
                    max(min(rank, 1), item_rank),
                    -int(self.popularity[index]),
                    index,
                )
                if best is None or key < best[0]:
                    best = (key, index)
        found = None if best is None else best[1]
        self._cache[title] = found
        return found

    def map_dialogue(self, dialogue: Dialogue) -> dict[str, int | None]:
        """Every mention of the dialogue: ReDial id -> catalog index (None: not mapped)."""
        return {movie: self.map(title) for movie, title in dialogue.mentions.items()}

    def coverage(self, dialogues: Sequence[Dialogue]) -> float:
        """The fraction of the dialogues' mentions that map to the catalog."""
        mapped = [self.map(t) is not None for d in dialogues for t in d.mentions.values()]
        return float(np.mean(mapped)) if mapped else float("nan")
