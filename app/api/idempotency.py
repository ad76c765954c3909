"""`Idempotency-Key` on streamed POSTs: a retried request attaches to the run the first one
started instead of starting another.

The first request with a key stores `key -> run id` in Redis (`SET NX`, for the trace TTL),
scoped to the caller (the API key, or the client address on an open service): another
caller's key never names this caller's run. A later request with the same key and the same
body gets that run's events after its `Last-Event-ID`; with a different body it is a 422
`idempotency_key_reused`. Once the run is gone (its trace expired), the key starts a new run.

Keys live in the service's short-term Redis (`service.short_term.client`, under its prefix):

    P:idempotency:{<caller>}:<sha256 of the key>   string  JSON {run_id, body, at}   TTL trace_ttl_s

Redis down: the request starts its run without the record (logged), as one-shot runs go on
without Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from app.service import Service

log = logging.getLogger("agentrec.api")

MAX_KEY_CHARS = 255
"""Longest Idempotency-Key (any text: only its digest is stored), e.g. a UUID."""
KEY_DESCRIPTION = (
    "Makes a streamed POST retry-safe: a request with the key of an earlier one (same caller, "
    "same body, within the run's lifetime) attaches to that run and streams what follows "
    "its `Last-Event-ID` instead of starting another run (fetch-event-source's retries). "
    f"1-{MAX_KEY_CHARS} characters, e.g. a UUID."
)
STARTING_S = 5.0
"""How long a key may name a run that has written nothing yet (it is starting elsewhere)."""
POLL_S = 0.1

# KEYS: the record. ARGV: the value it must still hold, the new value, TTL. Replaces a record
# whose run is gone, unless another request replaced it first.
_REPLACE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"


@dataclass(frozen=True)
class Claim:
    """The run a request streams: `new` when this request starts it."""

    run_id: str
    new: bool
    key: str | None = None
    """The Redis key of the record (None: not stored, Redis is down)."""
    value: str | None = None


def fingerprint(*parts: Any) -> str:
    """A digest of what a request asks for (its route and body), to tell a retry of the same
    request from another request reusing the key."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def record_key(service: Service, caller: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{service.short_term.prefix}:idempotency:{{{caller}}}:{digest}"


class KeyReused(Exception):
    """The key names an earlier request with a different body."""


async def claim(
    service: Service,
    caller: str,
    key: str,
    body: str,
    run_id: str,
    run_known: Any,
) -> Claim:
    """The run for a request with an Idempotency-Key: a new one (`run_id`, recorded), or the
    run an earlier request with the key started. `run_known(run_id)` (async) says whether a
    run still exists (live here, or its trace in Redis); a recorded run that does not is
    awaited while it may be starting, then replaced by the new one. Raises `KeyReused`."""
    client = service.short_term.client
    name = record_key(service, caller, key)
    ttl = service.settings.trace_ttl_s
    value = json.dumps({"run_id": run_id, "body": body, "at": time.time()})
    try:
        while True:
            if await asyncio.to_thread(client.set, name, value, nx=True, ex=ttl):
                return Claim(run_id, True, name, value)
            raw = await asyncio.to_thread(client.get, name)
            if raw is None:
                continue  # expired in between: claim it
            current = raw.decode() if isinstance(raw, bytes) else str(raw)
            record = json.loads(current)
            if record.get("body") != body:
                raise KeyReused(key)
            earlier = str(record["run_id"])
            if await run_known(earlier):
                return Claim(earlier, False)
            if time.time() - float(record.get("at", 0.0)) < STARTING_S:
                await asyncio.sleep(POLL_S)  # started elsewhere a moment ago: wait for it
                continue
            replace = client.register_script(_REPLACE)
            if await asyncio.to_thread(replace, keys=[name], args=[current, value, ttl]):
                return Claim(run_id, True, name, value)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning("Idempotency-Key not recorded (Redis unavailable): %s", error)
        return Claim(run_id, True)


async def release(service: Service, claim: Claim) -> None:
    """Forget a new run's record when the run could not start (the key may be used again)."""
    if not claim.new or claim.key is None or claim.value is None:
        return
    try:
        script = service.short_term.client.register_script(_RELEASE)
        await asyncio.to_thread(script, keys=[claim.key], args=[claim.value])
    except (redis.ConnectionError, redis.TimeoutError) as error:
        log.warning("Idempotency-Key record not released: %s", error)
