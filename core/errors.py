"""Errors that are reported to users as a message, never as a traceback."""

from __future__ import annotations


class AgentrecError(Exception):
    """Base class for every error whose message is meant for the user."""


class DataError(AgentrecError):
    """A dataset file is missing or malformed.

    The message names the file and, where known, the line and the problem.
    """

    def __init__(self, path: object, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class ConfigError(AgentrecError):
    """A setting or command-line option has an invalid value."""


class Unavailable(AgentrecError):
    """A backing service (Redis, Chroma, an LLM endpoint) cannot be reached right now; the
    same call may succeed later without a restart."""
