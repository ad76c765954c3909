"""The `agentrec` command line: one sub-command module per area, gathered here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.errors import AgentrecError


def build_parser() -> argparse.ArgumentParser:
    from app import chat, demo, ingest, serve, train
    from evaluation import cli as eval_cli
    from recdata import cli as data_cli

    parser = argparse.ArgumentParser(
        prog="agentrec", description="Multi-agent recommendation service."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.register(sub)
    chat.register(sub)
    serve.register(sub)
    ingest.register(sub)
    train.register(sub)
    eval_cli.register(sub)
    data_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sub-command. User errors print one clear line and exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = ["agentrec", *(sys.argv[1:] if argv is None else argv)]
    try:
        return int(args.handler(args) or 0)
    except AgentrecError as exc:
        print(f"agentrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("agentrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
