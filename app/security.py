"""API keys, roles and the per-key rate limit.

Keys come from `settings.api_keys`: comma-separated `role:key` pairs, roles `client`
(recommend, chat, events) and `admin` (everything a client may do, plus ingest, delete and
catalog writes). A key must be at least `MIN_KEY_CHARS` (16) printable ASCII characters
without spaces, e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`. No keys:
the service is open (every caller is an anonymous admin) and `bind_host_for` keeps it on
loopback.

Public API::

    ApiKeys.parse(text) -> ApiKeys       # ConfigError naming the bad entry (never the key)
    keys.open; keys.lookup(key) -> Principal | None
    Principal(key_id, role)              # key_id: "key:<sha256 prefix>" or "ip:<client ip>"
    require_client, require_admin        # FastAPI dependencies -> Principal
    RateLimiter(redis, limit_per_minute); await limiter.check(key_id) -> RateDecision
    bind_host_for(settings, host) -> str
    install(app, settings, redis=None)   # sets app.state.api_keys and app.state.rate_limiter

Wiring: the dependencies read `request.app.state.api_keys` (an `ApiKeys`; required, a
missing one is a server error) and `request.app.state.rate_limiter` (a `RateLimiter`;
missing or None means no limit). Set both in `create_app`, or call `install` (again) in the
lifespan once the async Redis client exists. Use them as `Depends(require_client)` /
`Depends(require_admin)` on a route or router; a request is counted once by the rate limit
even when both run for it.

Answers (bodies in the `app.errors` model, so `errors.install` must be called):
401 `unauthorized` (no key or an unknown key; `WWW-Authenticate: Bearer`),
403 `forbidden` (a client key on an admin route),
429 `rate_limited` (`Retry-After` in whole seconds >= 1, `X-RateLimit-Limit`,
`X-RateLimit-Remaining`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import redis.asyncio
import redis.exceptions
from fastapi import Depends, FastAPI, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.errors import ApiError
from core.errors import ConfigError
from core.settings import Settings
from memory.connection import MemoryUnavailable

logger = logging.getLogger("agentrec.api")

ROLE_CLIENT = "client"
ROLE_ADMIN = "admin"
ROLES = (ROLE_CLIENT, ROLE_ADMIN)
MIN_KEY_CHARS = 16
LOOPBACK_HOST = "127.0.0.1"

_HOW_TO_SEND = "send the key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


@dataclass(frozen=True)
class Principal:
    """Who is calling: `key_id` identifies the key (or, in open mode, the client IP) for
    rate limits and logs without revealing it; `role` is `client` or `admin`."""

    key_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


def key_id_for(key: str) -> str:
    """A short, stable name for a key that is safe to log (a sha256 prefix)."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


class ApiKeys:
    """The configured keys, kept as sha256 digests and compared in constant time."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        """`pairs` are (role, key); an invalid pair raises ConfigError naming its position."""
        entries: list[_Entry] = []
        seen: dict[bytes, int] = {}
        for position, (role, key) in enumerate(pairs, start=1):
            _check_entry(position, role, key)
            digest = hashlib.sha256(key.encode()).digest()
            if digest in seen:
                raise ConfigError(
                    f"API keys: entry {position} repeats the key of entry {seen[digest]}; "
                    "every key must be distinct"
                )
            seen[digest] = position
            entries.append(_Entry(digest, Principal(key_id_for(key), role)))
        self._entries = tuple(entries)

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        """Parse `role:key,role:key` (spaces around entries and empty entries are ignored)."""
        pairs: list[tuple[str, str]] = []
        entries = [entry.strip() for entry in text.split(",")]
        for position, entry in enumerate((e for e in entries if e), start=1):
            role, sep, key = entry.partition(":")
            if not sep:
                raise ConfigError(
                    f"API keys: entry {position} is not of the form role:key "
                    "(e.g. 'client:<key>,admin:<key>')"
                )
            pairs.append((role.strip(), key.strip()))
        return cls(pairs)

    @property
    def open(self) -> bool:
        """No keys configured: every caller is let in."""
        return not self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        counts = {role: sum(e.principal.role == role for e in self._entries) for role in ROLES}
        return f"ApiKeys({', '.join(f'{r}={n}' for r, n in counts.items())})"

    def lookup(self, key: str) -> Principal | None:
        """The principal of `key`, or None. Compares digests with `hmac.compare_digest`
        against every entry (no early exit), so timing reveals neither key nor position."""
        digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
        found: Principal | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found


def _check_entry(position: int, role: str, key: str) -> None:
    if role not in ROLES:
        raise ConfigError(
            f"API keys: entry {position} has an unknown role; write 'client:<key>' or 'admin:<key>'"
        )
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(
            f"API keys: the key of entry {position} is shorter than {MIN_KEY_CHARS} "
            "characters; generate one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )
    if not (key.isascii() and key.isprintable()) or any(ch.isspace() for ch in key):
        raise ConfigError(
            f"API keys: the key of entry {position} has spaces, control or non-ASCII "
            "characters; use printable ASCII only"
        )


# -- rate limit ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int
    remaining: int


# GCRA (generic cell rate algorithm) in one atomic script: the key holds the theoretical
# arrival time (TAT, ms) of the next request; each allowed request pushes it by one emission
# interval (60 s / limit) and a request is refused while TAT would run more than one period
# ahead of now. A burst of `limit` requests passes, then one every interval. The clock is the
# Redis server's, so every API replica agrees. The 0.01 ms slack absorbs float rounding.
_GCRA_SCRIPT = """
local limit = tonumber(ARGV[1])
local period = 60000.0
local interval = period / limit
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at - now > 0.01 then
  return {0, math.ceil((allow_at - now) / 1000), 0}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, 0, math.floor((period - (new_tat - now)) / interval + 0.01)}
"""

_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, MemoryUnavailable)


class RateLimiter:
    """At most `limit_per_minute` requests per key id, counted in Redis so that every API
    replica shares the count. A limit of 0, or no Redis client, never refuses. When Redis
    cannot be reached the limiter fails open (allows) and logs a warning at most once per
    `warn_interval_s`; after a failure it does not ask Redis again for `failure_backoff_s`,
    so a frozen server costs one socket timeout per back-off period, not one per request."""

    def __init__(
        self,
        redis_client: redis.asyncio.Redis | None,
        limit_per_minute: int,
        *,
        key_prefix: str = "agentrec:ratelimit:",
        warn_interval_s: float = 60.0,
        failure_backoff_s: float = 1.0,
    ) -> None:
        if limit_per_minute < 0:
            raise ConfigError("rate limit: requests per minute must be >= 0 (0: no limit)")
        self.redis = redis_client
        self.limit = limit_per_minute
        self.key_prefix = key_prefix
        self.warn_interval_s = warn_interval_s
        self.failure_backoff_s = failure_backoff_s
        self._script = (
            redis_client.register_script(_GCRA_SCRIPT) if redis_client is not None else None
        )
        self._last_warning: float | None = None
        self._skip_redis_until = 0.0

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self._script is not None

    async def check(self, key_id: str) -> RateDecision:
        """Count one request for `key_id` and say whether it may proceed."""
        if self._script is None or self.limit <= 0:
            return RateDecision(True, 0, max(self.limit, 0))
        if time.monotonic() < self._skip_redis_until:
            return RateDecision(True, 0, self.limit)
        try:
            reply = await self._script(keys=[self.key_prefix + key_id], args=[self.limit])
        except _REDIS_DOWN as exc:
            self._skip_redis_until = time.monotonic() + self.failure_backoff_s
            self._warn_unavailable(exc)
            return RateDecision(True, 0, self.limit)
        allowed, retry_after_s, remaining = (int(value) for value in reply)
        if allowed:
            return RateDecision(True, 0, max(remaining, 0))
        return RateDecision(False, max(retry_after_s, 1), 0)

    def _warn_unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._last_warning is not None and now - self._last_warning < self.warn_interval_s:
            return
        self._last_warning = now
        logger.warning(
            "rate limit not enforced: Redis is unavailable (%s: %s); requests are allowed "
            "until it is back",
            type(exc).__name__,
            exc,
        )


# -- FastAPI dependencies ------------------------------------------------------------------
_bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerKey",
    description="An API key as `Authorization: Bearer <key>`.",
)
_api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="An API key as `X-API-Key: <key>` (alternative to the Bearer header).",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]
HeaderKey = Annotated[str | None, Depends(_api_key_scheme)]


def _api_keys_of(request: Request) -> ApiKeys:
    keys = getattr(request.app.state, "api_keys", None)
    if not isinstance(keys, ApiKeys):
        raise RuntimeError(
            "app.state.api_keys is not set: call app.security.install(app, settings) in create_app"
        )
    return keys


def _client_key_id(request: Request) -> str:
    host = request.client.host if request.client else None
    return f"ip:{host or 'unknown'}"


async def _authorize(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    header_key: str | None,
    needed_role: str,
) -> Principal:
    keys = _api_keys_of(request)
    if keys.open:
        principal = Principal(_client_key_id(request), ROLE_ADMIN)
    else:
        presented = bearer.credentials if bearer is not None else header_key
        if not presented:
            raise ApiError(
                401,
                "unauthorized",
                f"This endpoint needs an API key: {_HOW_TO_SEND}.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = keys.lookup(presented)
        if found is None:
            logger.info("unknown API key from %s", _client_key_id(request))
            raise ApiError(
                401,
                "unauthorized",
                f"The API key is not valid: check it, and {_HOW_TO_SEND}.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        principal = found

    await _enforce_rate_limit(request, principal)
    request.state.principal = principal
    if needed_role == ROLE_ADMIN and not principal.is_admin:
        raise ApiError(
            403,
            "forbidden",
            "This endpoint needs an admin API key; the key sent has the client role.",
        )
    return principal


async def _enforce_rate_limit(request: Request, principal: Principal) -> None:
    limiter = getattr(request.app.state, "rate_limiter", None)
    if not isinstance(limiter, RateLimiter):
        return
    if getattr(request.state, "rate_counted_for", None) == principal.key_id:
        return  # both dependencies ran for this request: count it once
    request.state.rate_counted_for = principal.key_id
    decision = await limiter.check(principal.key_id)
    if decision.allowed:
        return
    raise ApiError(
        429,
        "rate_limited",
        f"Too many requests: this key may make {limiter.limit} requests per minute; "
        f"retry in {decision.retry_after_s} s.",
        details={"limit_per_minute": limiter.limit, "retry_after_s": decision.retry_after_s},
        headers={
            "Retry-After": str(decision.retry_after_s),
            "X-RateLimit-Limit": str(limiter.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
        },
    )


async def require_client(
    request: Request, bearer: BearerCredentials, header_key: HeaderKey
) -> Principal:
    """Dependency: any valid key (client or admin); 401 without one, 429 over the limit."""
    return await _authorize(request, bearer, header_key, ROLE_CLIENT)


async def require_admin(
    request: Request, bearer: BearerCredentials, header_key: HeaderKey
) -> Principal:
    """Dependency: an admin key; 401 without a valid key, 403 for a client key."""
    return await _authorize(request, bearer, header_key, ROLE_ADMIN)


# -- wiring --------------------------------------------------------------------------------
def install(
    app: FastAPI, settings: Settings, redis_client: redis.asyncio.Redis | None = None
) -> None:
    """Set `app.state.api_keys` and `app.state.rate_limiter` from `settings` (ConfigError on
    bad keys). Call it again (e.g. in the lifespan) to attach the async Redis client."""
    app.state.api_keys = ApiKeys.parse(settings.api_keys)
    app.state.rate_limiter = RateLimiter(redis_client, settings.rate_limit_per_minute)


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_host_for(settings: Settings, host: str) -> str:
    """The interface to bind: `host` when API keys are configured; without keys the service
    is open, so a non-loopback `host` becomes 127.0.0.1 (with a warning)."""
    if not ApiKeys.parse(settings.api_keys).open or _is_loopback(host):
        return host
    logger.warning(
        "no API keys configured (AGENTREC_API_KEYS): the open service binds to %s instead "
        "of %s; configure keys to serve other hosts",
        LOOPBACK_HOST,
        host,
    )
    return LOOPBACK_HOST
