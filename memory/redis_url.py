"""Redis clients from a `REDIS_URL`, through redis-py's own clients for each deployment:

    redis://[[user]:password@]host:port/db        one server (rediss:// with TLS)
    unix:///path/to/redis.sock?db=0               one server on a Unix socket
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]
                                                  the master Sentinel names for `service`,
                                                  found again after a failover

A Sentinel URL's password is the data servers' (Sentinels themselves are reached without
one). Redis Cluster is not supported: the service's scripts keep each user's and each
run's keys in one hash slot, but its pipelines and blocking reads assume one server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from core.errors import ConfigError

SENTINEL_SCHEME = "redis+sentinel://"


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The parts of a `redis+sentinel://` URL (ConfigError when malformed)."""
    rest = url.removeprefix(SENTINEL_SCHEME)
    credentials, at, rest = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not hosts or not parts or len(parts) > 2:
        raise ConfigError(
            f"a Sentinel URL is redis+sentinel://host:port[,host:port]/service[/db], got {url!r}"
        )
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ConfigError(f"Sentinel address {host!r} in REDIS_URL is not host:port")
        sentinels.append((name, int(port)))
    if len(parts) == 2 and not parts[1].isdigit():
        raise ConfigError(f"the database in REDIS_URL must be a number, got {parts[1]!r}")
    db = int(parts[1]) if len(parts) == 2 else 0
    return SentinelUrl(sentinels, parts[0], db, username, password)


def _sentinel_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    keep = ("socket_timeout", "socket_connect_timeout")
    return {k: v for k, v in kwargs.items() if k in keep}


def sync_client(url: str, **kwargs: Any) -> redis.Redis:
    """A client for `url` (any scheme above); `kwargs` are redis-py connection settings."""
    if not url.startswith(SENTINEL_SCHEME):
        return redis.Redis.from_url(url, **kwargs)
    parts = parse_sentinel_url(url)
    sentinel = redis.sentinel.Sentinel(parts.sentinels, sentinel_kwargs=_sentinel_kwargs(kwargs))
    return sentinel.master_for(
        parts.service,
        db=parts.db,
        username=parts.username,
        password=parts.password,
        **kwargs,
    )


def async_client(url: str, **kwargs: Any) -> redis.asyncio.Redis:
    """The asyncio client for `url` (see `sync_client`)."""
    if not url.startswith(SENTINEL_SCHEME):
        return redis.asyncio.Redis.from_url(url, **kwargs)
    parts = parse_sentinel_url(url)
    sentinel = redis.asyncio.sentinel.Sentinel(
        parts.sentinels, sentinel_kwargs=_sentinel_kwargs(kwargs)
    )
    return sentinel.master_for(
        parts.service,
        db=parts.db,
        username=parts.username,
        password=parts.password,
        **kwargs,
    )
