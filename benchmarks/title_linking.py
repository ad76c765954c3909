"""Title linking (tools/titles.py): speed per message and quality on ReDial dialogues.

    .venv/bin/python -m benchmarks.title_linking
    .venv/bin/python -m benchmarks.title_linking --catalog DIR --dialogues FILE.jsonl

The catalog is MovieLens "latest small" (9,742 movies) and the dialogues the ReDial training
split, both beside the repository in ../shared/data (never copied into it).

Quality: every message of the dialogues is given with each `@id` replaced by its title as
typed, without the year (what the redial protocol shows a system), and linked with the items
linked earlier in the dialogue as context. `recall` is the fraction of @-mentions that map to
the catalog (recdata.redial.MentionMapper) whose item is among the message's links; `precision`
the fraction of links that are one of the message's mapped @-mentions (titles typed without
an @ count against it, so it is a lower bound). The same is measured with every message in
lower case, and with one seeded typo (a letter dropped, doubled, replaced or two swapped) in
a word of 6+ letters of each mentioned title.

Speed: the time of `link` per message over all three variants, after one warm-up message.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import latency_summary, machine_info, write_json
from recdata.loaders import load_dataset
from recdata.redial import MENTION, Dialogue, MentionMapper, load_dialogues, render_text
from recdata.titles import split_year
from tools.titles import TitleLinker

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_CATALOG = SHARED / "ml-latest-small"
DEFAULT_DIALOGUES = SHARED / "redial" / "train_data.jsonl"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "title_linking.json"
SEED = 2024

Rewrite = Callable[[str], str]


def typo(word: str, rng: random.Random) -> str:
    """`word` with one edit at a random inner position."""
    k = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("drop", "double", "replace", "swap"))
    if kind == "drop":
        return word[:k] + word[k + 1 :]
    if kind == "double":
        return word[:k] + word[k] + word[k:]
    if kind == "replace":
        letters = [c for c in "aeioustnrl" if c != word[k].lower()]
        return word[:k] + rng.choice(letters) + word[k + 1 :]
    return word[:k] + word[k + 1] + word[k] + word[k + 2 :]


def with_typos(mentions: dict[str, str], rng: random.Random) -> dict[str, str]:
    out = {}
    for movie, title in mentions.items():
        name, year = split_year(title)
        words = name.split(" ")
        long = [k for k, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
        if long:
            k = rng.choice(long)
            words[k] = typo(words[k], rng)
        out[movie] = " ".join(words) + (f" ({year})" if year else "")
    return out


def measure(
    linker: TitleLinker,
    mapper: MentionMapper,
    dialogues: list[Dialogue],
    variant: str,
    timings: list[float],
) -> dict[str, float | int]:
    rng = random.Random(SEED)
    mentions = correct = links = right_links = messages = 0
    for dialogue in dialogues:
        titles = with_typos(dict(dialogue.mentions), rng) if variant == "typo" else None
        mapped = mapper.map_dialogue(dialogue)
        context: list[int] = []
        for message in dialogue.messages:
            text = render_text(message.text, titles or dialogue.mentions)
            if variant == "lowercase":
                text = text.lower()
            started = time.perf_counter()
            linked = linker.link(text, context)
            timings.append(time.perf_counter() - started)
            messages += 1
            expected = {mapped.get(m) for m in MENTION.findall(message.text)} - {None}
            mentions += len(expected)
            found = linked.items
            correct += len(expected.intersection(found))
            links += len(found)
            right_links += sum(1 for i in found if i in expected)
            context.extend(i for i in found if i not in context)
    return {
        "messages": messages,
        "mapped_mentions": mentions,
        "recall": round(correct / max(mentions, 1), 4),
        "links": links,
        "precision": round(right_links / max(links, 1), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--catalog-format", default="movielens-csv")
    parser.add_argument("--dialogues", type=Path, default=DEFAULT_DIALOGUES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    catalog = load_dataset(args.catalog, args.catalog_format)
    dialogues = load_dialogues(args.dialogues)
    started = time.perf_counter()
    linker = TitleLinker(catalog)
    build = time.perf_counter() - started
    mapper = MentionMapper(catalog)
    linker.link("warm up: something like Inception")
    timings: list[float] = []
    quality = {
        variant: measure(linker, mapper, dialogues, variant, timings)
        for variant in ("as_typed", "lowercase", "typo")
    }
    speed = latency_summary(timings)
    result = {
        "benchmark": "title_linking",
        "catalog": {"name": catalog.name, "items": catalog.n_items},
        "dialogues": {"file": args.dialogues.name, "count": len(dialogues)},
        "build_seconds": round(build, 3),
        "link_per_message": {"messages": len(timings), **speed},
        "quality": quality,
        "machine": machine_info(),
    }
    print(f"catalog {catalog.name}: {catalog.n_items} items, index built in {build:.2f} s")
    print(
        f"link per message ({len(timings)} messages): p50 {speed['p50_ms']:.3f} ms, "
        f"p99 {speed['p99_ms']:.3f} ms, max {speed['max_ms']:.3f} ms"
    )
    for variant, figures in quality.items():
        print(
            f"{variant:>9}: recall {figures['recall']:.3f} of {figures['mapped_mentions']} "
            f"mapped @-mentions, precision {figures['precision']:.3f} of {figures['links']} links"
        )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
