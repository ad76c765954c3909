"""The chat reply of the offline brain: what a person would want to read.

A reply acknowledges the request ("Something lighter: a comedy, then."), names the top pick
with one grounded reason (it shares genres or a director with a title the user named, people
who talked about that title suggested it, it is what was asked for, how it is rated), offers
a few more picks, says what could not be done (a title it does not know, a person the
catalog cannot search, a constraint it had to drop) and asks one useful question when the
request is vague. Every title it names is one of the grounded recommendations or a title
the user named.

Replies take turns between a few shapes (`SHAPES`), chosen from the number of assistant
turns so far, so two consecutive replies never read alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.schemas import Conversation, Intent, ItemInsight, RankedItem
from agents.toolbox import Toolbox
from recdata.titles import item_year, title_without_year

SHAPES = 3
OTHERS = 3
NOUNS = {
    "action": "action film",
    "adventure": "adventure",
    "animation": "animated film",
    "children": "family film",
    "children's": "family film",
    "comedy": "comedy",
    "crime": "crime film",
    "documentary": "documentary",
    "drama": "drama",
    "fantasy": "fantasy film",
    "film-noir": "film noir",
    "horror": "horror film",
    "musical": "musical",
    "mystery": "mystery",
    "romance": "romance",
    "sci-fi": "sci-fi film",
    "thriller": "thriller",
    "war": "war film",
    "western": "western",
}
RELAXED = {"years": "the years", "wanted": "the genre"}


def write_reply(
    box: Toolbox,
    conversation: Conversation | None,
    intent: Intent | None,
    items: Sequence[RankedItem],
    insights: Sequence[ItemInsight] = (),
    relaxed: Sequence[str] = (),
    shape: int = 0,
) -> str:
    """The reply to the latest user turn (see the module docstring)."""
    conversation = conversation or Conversation()
    intent = intent or Intent()
    note, wishes = _acknowledgement(box, conversation)
    ack = _join([note, f"{_capital(wishes)}: got it." if wishes else ""])
    notes = problems(conversation, relaxed)
    question = _question(conversation, intent)
    if not items:
        parts = [ack, *notes, "I found nothing that fits; could you loosen the request?"]
        return _join(parts)
    top = items[0]
    name = display_title(box, top.item_id)
    why = reason(box, top.item_id, conversation, intent, insights)
    others = [display_title(box, i.item_id) for i in items[1 : 1 + OTHERS]]
    match shape % SHAPES:
        case 0:
            lead = f"My top pick is {name}: {why}."
            more = f"Also worth a look: {_list(others)}." if others else ""
            parts = [ack, lead, more, *notes, question]
        case 1:
            lead = f"How about {name}? {_capital(why)}."
            more = f"If not, there is {_list(others, 'or')}." if others else ""
            parts = [*notes, ack, lead, more, question]
        case _:
            lead = f"I would start with {name}, since {why}."
            more = f"Then {_list(others)}." if others else ""
            parts = [note, *notes, lead, more, question]
    return _join(parts)


def display_title(box: Toolbox, item_id: str) -> str:
    """A catalog title as people write it: "The Matrix (1999)"."""
    item = box.dataset.items[box.dataset.item_index[item_id]]
    title = title_without_year(item.title)
    moved = title.rsplit(", ", 1)
    if len(moved) == 2 and moved[1] in ("The", "A", "An"):
        title = f"{moved[1]} {moved[0]}"
    year = item_year(item.title, item.attributes)
    return f"{title} ({year})" if year else title


def noun(value: str) -> str:
    return NOUNS.get(value.lower(), f"{value.lower()} film")


def with_article(phrase: str) -> str:
    return f"{'an' if phrase[:1] in 'aeiou' else 'a'} {phrase}"


def _acknowledgement(box: Toolbox, conversation: Conversation) -> tuple[str, str]:
    """What the latest user turn asked for ("something like Inception, a comedy") and a
    note on what it said about titles ("Noted, not Titanic.")."""
    asked = conversation.asked
    latest = conversation.turns - 1
    wishes: list[str] = []
    references = [
        display_title(box, m.item_id)
        for m in conversation.mentions
        if m.role == "user" and m.turn == latest and m.opinion != "disliked"
    ]
    if references:
        wishes.append("something like " + _list(references[:2]))
    if "lighter" in conversation.cues:
        wishes.append("something lighter")
    genres = asked.wanted.get("genres", [])
    if genres:
        wishes.append(" or ".join(with_article(noun(g)) for g in genres[:3]))
    for name, values in asked.wanted.items():
        if name != "genres":
            wishes.append(f"{name} {' or '.join(values[:2])}")
    years = _years(asked)
    if years:
        wishes.append(years)
    if "not gory" in conversation.cues:
        wishes.append("nothing gory")
    said: dict[str, list[str]] = {}
    for m in conversation.mentions:
        if m.opinion_turn == latest and m.opinion in ("disliked", "seen", "liked"):
            said.setdefault(m.opinion, []).append(display_title(box, m.item_id))
    notes = []
    if "disliked" in said:
        notes.append(f"Noted, not {_list(said['disliked'], 'or')}.")
    if "seen" in said:
        notes.append(f"Noted, you have seen {_list(said['seen'])}.")
    if "liked" in said and not references:
        notes.append(f"Glad you liked {_list(said['liked'])}.")
    return " ".join(notes), ", ".join(wishes)


def _years(intent: Intent) -> str:
    lo, hi = intent.year_min, intent.year_max
    if lo is not None and hi is not None:
        if hi - lo == 9 and lo % 10 == 0:
            return f"from the {lo}s"
        return f"from {lo} to {hi}" if lo != hi else f"from {lo}"
    if lo is not None:
        return f"from {lo} on"
    if hi is not None:
        return f"up to {hi}"
    return ""


def problems(conversation: Conversation, relaxed: Sequence[str]) -> list[str]:
    out: list[str] = []
    if conversation.unknown_titles:
        titles = _list([f'"{t}"' for t in conversation.unknown_titles[:3]])
        out.append(f"I don't know {titles}, so I could not go by it.")
    for person in conversation.people_not_found[:2]:
        if person.role == "actor" and not conversation.cast_listed:
            out.append(
                f"I can't search by actor: this catalog does not list cast, so {person.name} "
                "could not guide the picks."
            )
        else:
            out.append(f"I don't know any film with {person.name} in this catalog.")
    if relaxed:
        dropped = _list([RELAXED.get(r, r) for r in relaxed])
        out.append(f"Not enough matched every wish, so some picks let go of {dropped}.")
    return out


def _question(conversation: Conversation, intent: Intent) -> str:
    if conversation.vague:
        return intent.clarifying_question or "What are you in the mood for?"
    has_wish = bool(intent.wanted or intent.reference_item_ids or conversation.preferred)
    if has_wish or intent.year_min is not None or intent.year_max is not None:
        return ""
    if conversation.unknown_titles:
        return f'What kind of film is "{conversation.unknown_titles[0]}"? A genre would help.'
    return "Is there a genre or a film you loved that I should go by?"


def reason(
    box: Toolbox,
    item_id: str,
    conversation: Conversation,
    intent: Intent,
    insights: Sequence[ItemInsight],
) -> str:
    """One grounded reason to watch `item_id`: a director or genres it shares with a title
    the user named, people who talked about a named title suggested it, it has a tag asked
    for, it is the genre asked for, how it is rated, or how popular it is."""
    ds = box.dataset
    attrs = ds.items[ds.item_index[item_id]].attributes
    for ref in intent.reference_item_ids[:3]:
        ref_attrs = ds.items[ds.item_index[ref]].attributes
        ref_title = display_title(box, ref)
        for name in ("director", "directors"):
            shared_people = [v for v in attrs.get(name, ()) if v in ref_attrs.get(name, ())]
            if shared_people:
                return f"it is directed by {shared_people[0]}, like {ref_title}"
        shared = [g for g in attrs.get("genres", ()) if g in ref_attrs.get("genres", ())]
        if shared:
            return f"it shares {_list(shared[:2])} with {ref_title}"
    talked = _talked_about(box, item_id, conversation)
    if talked:
        return f"people who talked about {talked} often suggested it too"
    tagged = [
        v for n, values in conversation.preferred.items() for v in values if v in attrs.get(n, ())
    ]
    if tagged:
        return f'people tagged it "{tagged[0]}"'
    asked = [g for g in intent.wanted.get("genres", []) if g in attrs.get("genres", ())]
    if asked:
        return f"it is {with_article(noun(asked[0]))}, as you asked"
    insight = next((i for i in insights if i.item_id == item_id), None)
    if insight is not None and insight.mean_rating is not None and insight.n_ratings:
        return f"{insight.n_ratings} users rated it {insight.mean_rating:.1f} on average"
    return "it is among the titles people pick most here"


def _talked_about(box: Toolbox, item_id: str, conversation: Conversation) -> str:
    stats = box.dialogues
    if stats is None or not conversation.mentions:
        return ""
    index = box.dataset.item_index
    item = index[item_id]
    best, best_count = "", 1.0
    for mention in conversation.mentions:
        row = index.get(mention.item_id)
        if row is None:
            continue
        lo, hi = int(stats.indptr[row]), int(stats.indptr[row + 1])
        found = stats.indices[lo:hi] == item
        count = float(stats.counts[lo:hi][found].sum())
        if count > best_count:
            best, best_count = display_title(box, mention.item_id), count
    return best


def _list(values: Sequence[str], last: str = "and") -> str:
    values = [v for v in values if v]
    if len(values) <= 1:
        return "".join(values)
    return f"{', '.join(values[:-1])} {last} {values[-1]}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(parts: Sequence[str]) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())
