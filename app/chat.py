"""`agentrec chat`: a chat in the terminal with the agents, on the embedded defaults.

Each line you type is a message of one session; the reply streams as it is written, then
the recommendations are listed. Lines starting with / are commands: /like N, /dislike N
(feedback on item N of the last list), /quit. Reads from a pipe too (one message per line).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from typing import Any

from rich.console import Console

from core.errors import ConfigError
from core.settings import get_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("chat", help="Chat with the agents in the terminal.")
    p.add_argument("--user", default="u001", help="Who is chatting (default u001).")
    p.add_argument("--trace", action="store_true", help="Show the agents' reasoning too.")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from app.service import EventIn, Service

    console = Console()
    with console.status("Starting the service (embedded Redis and Chroma, demo catalog)..."):
        service = Service(get_settings()).start()
    try:
        box = service.toolbox()
        session_id, _ = service.create_session(args.user)
        console.print(
            f"[bold]agentrec chat[/] · {box.dataset.n_items:,} items · user {args.user} · "
            "/like N, /dislike N, /quit"
        )
        last: list[dict[str, Any]] = []
        interactive = sys.stdin.isatty()
        while True:
            try:
                line = input("you> " if interactive else "")
            except EOFError:
                break
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            if line.startswith(("/like", "/dislike")):
                kind, _, number = line[1:].partition(" ")
                if not number.strip().isdigit() or not 1 <= int(number) <= len(last):
                    console.print(f"[red]say /{kind} N with N between 1 and {len(last)}[/]")
                    continue
                item = last[int(number) - 1]
                event = EventIn(uuid.uuid4().hex, kind, item["item_id"], user_id=args.user)
                service.record_events([event])
                title = box.dataset.items[box.dataset.item_index[item["item_id"]]].title
                console.print(f"[dim]noted: you {kind} {title}[/]")
                continue
            if len(line) > service.settings.max_message_chars:
                raise ConfigError(f"messages are limited to {service.settings.max_message_chars}")
            last = asyncio.run(_turn(service, session_id, line, console, args.trace))
    finally:
        service.close()
    return 0


async def _turn(
    service: Any, session_id: str, message: str, console: Console, trace: bool
) -> list[dict[str, Any]]:
    box = service.toolbox()
    items: list[dict[str, Any]] = []
    console.print("[bold]agentrec>[/] ", end="")
    async for event in service.stream_chat(session_id, message):
        kind = event["type"]
        if kind == "token":
            console.print(event["text"], end="", soft_wrap=True, highlight=False)
        elif kind == "recommendations":
            items = event["items"]
        elif kind == "error" and not event.get("recoverable", True):
            console.print(f"\n[red]error: {event['message']}[/]")
        elif trace and kind in ("thought", "observation"):
            console.print(f"\n[dim]  {event['agent']}: {event['text']}[/]", end="")
    console.print()
    for rank, item in enumerate(items, 1):
        row = box.dataset.items[box.dataset.item_index[item["item_id"]]]
        console.print(f"  {rank:>2}. [bold]{row.title}[/] [dim]{item.get('explanation', '')}[/]")
    return items
