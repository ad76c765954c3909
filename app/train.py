"""`agentrec train`: fit a catalog's models once and save them as a versioned artifact.

The artifact (`<model store>/<catalog>/<version>/`, see `agents.toolbox_store`) is what
`agentrec serve` loads memory-mapped at start, and what running workers swap in when a newer
one appears. With `--events`, positive feedback events from the Redis event log (a like,
click or purchase, a rating of 4 or more) become training interactions of the collaborative
model: those folded into the newest earlier artifact, then those recorded since (a dislike
or a rating of 2 or less removes the user's earlier positive rows on that item).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from core.errors import ConfigError, Unavailable
from core.settings import get_settings

EPILOG = """\
Model store: --model-dir, else AGENTREC_MODEL_DIR, else DATA_DIR/models.
Events (--events): read from --redis-url, else REDIS_URL: the Redis the service records
feedback in. The manifest keeps where the event log was read up to, so the next
`train --events` reads only what came after.
Exit status: 0 on success, 2 on errors."""

POSITIVE_TYPES = ("like", "purchase", "click")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="Fit a catalog's models once and save them as a versioned artifact.",
        description="Fit the default model and the content index of a catalog and write them "
        "(numpy arrays and a manifest with the data hash, parameters and dev metrics) as a "
        "new version in the model store; `agentrec serve` loads the newest one "
        "memory-mapped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--catalog", default=None, help="catalog name (default: AGENTREC_CATALOG, else demo)"
    )
    p.add_argument("--model-dir", type=Path, default=None, help="the model store directory")
    p.add_argument(
        "--events",
        action="store_true",
        help="fold positive feedback events from the Redis event log into the training data",
    )
    p.add_argument("--redis-url", default=None, help="Redis with the event log (--events)")
    p.add_argument(
        "--keep",
        type=int,
        default=5,
        help="versions of the catalog to keep; older ones are deleted (default 5; 0 keeps all)",
    )
    p.set_defaults(handler=run)


@dataclass(frozen=True)
class EventLog:
    """What one read of the event log gave: the feedback rows to train on and the cursor."""

    rows: list[Any]  # FeedbackRow
    new_events: int
    positive: int
    removed: int
    until_ms: int


def read_events(
    client: Any, previous: list[Any], after_ms: int, prefix: str = "agentrec"
) -> EventLog:
    """Fold the feedback events logged after `after_ms` (ms since the epoch, Redis stream
    ids) into `previous` feedback rows. Reads every `P:user:{uid}:events` stream up to the
    Redis server's clock minus 1 ms, so an event logged meanwhile is read next time."""
    from agents.toolbox_store import FeedbackRow
    from memory.short_term import ShortTermMemory

    memory = ShortTermMemory(client, prefix=prefix)
    seconds, micros = client.time()
    until_ms = int(seconds) * 1000 + int(micros) // 1000 - 1
    head, _, tail = memory.user_events_key("\0").partition("\0")
    rows = list(previous)
    seen = {row.event_id for row in rows}
    new = positive = removed = 0
    for raw_key in sorted(client.scan_iter(match=f"{head}*{tail}", count=1000, _type="stream")):
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        subject = key[len(head) : len(key) - len(tail)]
        entries = client.xrange(key, f"{after_ms + 1}-0", str(until_ms))
        for entry_id, fields in entries:
            data = fields.get(b"data", fields.get("data"))
            event = _json(data)
            event_id = str(event.get("event_id", ""))
            if not event_id or event_id in seen:
                continue
            seen.add(event_id)
            new += 1
            kind, item_id, value = event.get("type"), str(event.get("item_id")), event.get("value")
            rating = float(value) if kind == "rating" and value is not None else None
            if kind in POSITIVE_TYPES or (rating is not None and rating >= 4):
                stamp = event.get("timestamp")
                if stamp is None:
                    ms = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    stamp = int(ms.split("-")[0]) / 1000
                row = FeedbackRow(event_id, subject, item_id, rating or 1.0, int(float(stamp)))
                rows.append(row)
                positive += 1
            elif kind == "dislike" or (rating is not None and rating <= 2):
                before = len(rows)
                rows = [r for r in rows if (r.user_id, r.item_id) != (subject, item_id)]
                removed += before - len(rows)
    return EventLog(rows, new, positive, removed, until_ms)


def _json(data: Any) -> dict[str, Any]:
    import json

    try:
        value = json.loads(data)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class _Steps:
    """One line per step with its duration; a spinner while it runs on a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        started = time.perf_counter()
        if self.console.is_terminal:
            with self.console.status(f"{text}..."):
                yield
        else:
            yield
        self.console.print(f"{text}: done in {time.perf_counter() - started:.1f} s")


def run(args: argparse.Namespace) -> int:
    from agents import toolbox_store as ts
    from recdata.store import check_name
    from tools import artifacts

    settings = get_settings()
    catalog = check_name(args.catalog or settings.catalog)
    if args.keep < 0:
        raise ConfigError(f"--keep must be 0 or more, got {args.keep}")
    store = Path(args.model_dir) if args.model_dir is not None else ts.model_store(settings)
    redis_url = args.redis_url or settings.redis_url
    if args.events and not redis_url:
        raise ConfigError(
            "--events needs the Redis the service records events in: --redis-url or REDIS_URL"
        )
    console = Console(highlight=False, soft_wrap=True)
    steps = _Steps(console)
    with steps.step(f"Loading catalog {catalog}"):
        dataset = ts.load_catalog_dataset(settings, catalog)
        print_ = ts.fingerprint(dataset)
    console.print(
        f"catalog {catalog}: {dataset.n_items:,} items, {dataset.n_users:,} users, "
        f"{len(dataset.interactions):,} interactions (data hash {print_.data[:12]})"
    )
    feedback: list[Any] = []
    events: dict[str, Any] | None = None
    if args.events:
        versions = artifacts.versions(ts.catalog_store(store, catalog))
        previous, after_ms, since = [], 0, None
        if versions:
            manifest = artifacts.read_manifest(versions[-1])
            previous = ts.read_feedback(versions[-1])
            after_ms = int(manifest.get("feedback", {}).get("events_until_ms", 0))
            since = versions[-1].name
        assert redis_url is not None
        with steps.step("Reading feedback events from Redis"):
            log = _read_events(redis_url, previous, after_ms)
        feedback = log.rows
        events = {
            "events_after_ms": after_ms,
            "events_until_ms": log.until_ms,
            "previous_artifact": since,
            "carried_rows": len(previous),
            "new_events": log.new_events,
            "new_positive": log.positive,
            "removed_rows": log.removed,
        }
        console.print(
            f"events: {log.new_events:,} new since {since or 'the start of the log'} "
            f"({log.positive:,} positive, {log.removed:,} rows withdrawn); "
            f"{len(feedback):,} feedback interactions in all"
        )
    dialogues = ts.catalog_dialogues(settings.data_dir, catalog, dataset)
    if dialogues is not None:
        console.print(
            f"dialogue statistics: {dialogues.n_dialogues:,} dialogues, "
            f"{int((dialogues.mentions > 0).sum()):,} items mentioned (kept in the artifact)"
        )
    rows = len(dataset.interactions) + len(feedback)
    with steps.step(f"Fitting the default model on {rows:,} interactions (self-tuning)"):
        started = time.perf_counter()
        box = ts.fit_toolbox(dataset, feedback, dialogues=dialogues)
        fit_s = time.perf_counter() - started
    with steps.step("Writing the artifact"):
        folder = ts.save_toolbox(box, store, catalog, feedback=feedback, events=events, fit_s=fit_s)
        pruned = ts.prune_versions(store, catalog, args.keep)
    manifest = artifacts.read_manifest(folder)
    size = sum(p.stat().st_size for p in folder.iterdir())
    blend = manifest["metrics"].get("blend")
    figure = f"; dev objective {blend:.4f}" if isinstance(blend, float) else ""
    console.print(
        f"model {manifest['version']} of {catalog}: {len(manifest['arrays'])} arrays, "
        f"{size / 1e6:,.1f} MB{figure} -> {folder}"
    )
    if pruned:
        console.print(
            f"deleted {len(pruned)} older version(s): {', '.join(p.name for p in pruned)}"
        )
    console.print(f"Serve it with: AGENTREC_CATALOG={catalog} agentrec serve")
    return 0


def _read_events(url: str, previous: list[Any], after_ms: int) -> EventLog:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
    try:
        return read_events(client, previous, after_ms)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        raise Unavailable(f"cannot read feedback events from Redis: {error}") from None
    finally:
        client.close()
