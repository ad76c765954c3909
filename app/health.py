"""The state of the service's dependencies (Redis, Chroma), for readiness and the report.

Liveness, readiness and the dependency report answer different questions (app/api/ops.py):
a replica whose Redis or Chroma is down still answers every recommendation (degraded), so
it is *ready*; only the dependency report says which store is down and why. An orchestrator
that restarted or unrouted replicas for a store outage would turn a degraded service into a
full outage.

Public API::

    DependencyCheck(name, ok, error)            # one dependency's state
    checks = DependencyChecks(timeout_s=1.0)    # app.state.dependency_checks: made at
    await checks.run(service) -> list[...]      # startup, closed at shutdown
    checks.close()

Each check runs in a small thread pool of its own, so a store that hangs never takes the
threads requests run on; a check that does not answer within `timeout_s` is reported as
unavailable, and is not started again while it still runs (probes every few seconds do not
pile up threads behind a black-holed server).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memory.connection import redis_errors_as_unavailable

if TYPE_CHECKING:
    from app.service import Service

logger = logging.getLogger("agentrec.api")

DEPENDENCY_TIMEOUT_S = 1.0
"""Longest wait for one dependency's answer (the compose health check allows 2 s)."""
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class DependencyCheck:
    """One dependency's state: `ok`, or the `error` that says why not."""

    name: str
    ok: bool
    error: str | None = None


def check_redis(service: Service) -> DependencyCheck:
    """Redis answers PING now (not the provider's cached `available()`, which may be a second
    old; the shared client's error says why not)."""
    provider = service.redis
    with redis_errors_as_unavailable(provider.url):
        provider.client().ping()
    return DependencyCheck("redis", True)


def check_chroma(service: Service) -> DependencyCheck:
    """Chroma answers its heartbeat (the embedded client or the server)."""
    service.long_term().heartbeat()
    return DependencyCheck("chroma", True)


CHECKS: dict[str, Callable[[Service], DependencyCheck]] = {
    "redis": check_redis,
    "chroma": check_chroma,
}


def _guarded(
    name: str, check: Callable[[Service], DependencyCheck], service: Service
) -> DependencyCheck:
    try:
        return check(service)
    except Exception as error:  # any failure of a probe is the dependency's state, not a 500
        logger.debug("dependency %s is unavailable: %s", name, error)
        text = str(error) or type(error).__name__
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 1] + "…"
        return DependencyCheck(name, False, text)


class DependencyChecks:
    """Runs every check of `CHECKS` at once, each bounded by `timeout_s`."""

    def __init__(self, timeout_s: float = DEPENDENCY_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(CHECKS), thread_name_prefix="agentrec-health"
        )
        self._running: dict[str, concurrent.futures.Future[DependencyCheck]] = {}

    async def run(self, service: Service) -> list[DependencyCheck]:
        return list(
            await asyncio.gather(
                *(self._one(name, check, service) for name, check in CHECKS.items())
            )
        )

    async def _one(
        self, name: str, check: Callable[[Service], DependencyCheck], service: Service
    ) -> DependencyCheck:
        future = self._running.get(name)
        if future is None or future.done():  # a check still running is joined, not repeated
            try:
                future = self._executor.submit(_guarded, name, check, service)
            except RuntimeError:  # closed: the app is shutting down
                return DependencyCheck(name, False, "the service is stopping")
            self._running[name] = future
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), self.timeout_s
            )
        except TimeoutError:
            return DependencyCheck(name, False, f"no answer within {self.timeout_s:g} s")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
