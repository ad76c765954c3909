"""One place that knows where Redis is: an external server (`REDIS_URL`) or an embedded
redis-server in `<data_dir>/redis`, with sync and async clients tuned to fail fast.

Clients are never rebuilt after a failure: redis-py drops a broken connection from its pool
and opens a new one on the next command, so the same client works again as soon as the
server is back. `available()` is a cheap cached PING so callers can degrade meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from core.errors import AgentrecError, Unavailable
from core.settings import Settings
from memory import redis_url
from memory.redis_server import EmbeddedRedis


class MemoryStoreError(AgentrecError):
    """Base class of the short-term memory errors callers may want to handle."""


class MemoryUnavailable(MemoryStoreError, Unavailable):
    """Redis cannot be reached (down, restarting or too slow to answer)."""

    def __init__(self, url: str, cause: BaseException) -> None:
        self.url = url
        self.cause = cause
        super().__init__(
            f"short-term memory (Redis at {url}) is unavailable: {cause}; "
            "the request can be retried once Redis is back"
        )


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user + ':***' if user else '***'}@{host}"


@contextmanager
def redis_errors_as_unavailable(url: str) -> Iterator[None]:
    """Turn redis-py connection and timeout errors into `MemoryUnavailable`."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise MemoryUnavailable(redact_url(url), exc) from exc


class RedisProvider:
    """Redis clients for the whole service, built from `Settings`.

    With `settings.redis_url` it connects to that server; without it, `start()` (or entering
    the context manager) launches an `EmbeddedRedis` in `<data_dir>/redis` and `close()` stops
    it. Use one provider per process; its clients are thread-safe (connection pools).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        socket_timeout_s: float = 2.0,
        connect_timeout_s: float = 1.0,
        health_check_interval_s: int = 10,
        ping_timeout_s: float = 0.25,
        availability_ttl_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.socket_timeout_s = socket_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.health_check_interval_s = health_check_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.availability_ttl_s = availability_ttl_s
        self.embedded: EmbeddedRedis | None = None
        self._url: str | None = settings.redis_url
        self._lock = threading.Lock()
        self._sync_clients: dict[bool, redis.Redis] = {}
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[bool, redis.asyncio.Redis]
        ] = weakref.WeakKeyDictionary()
        self._probe: redis.Redis | None = None
        self._last_probe: tuple[float, bool] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> RedisProvider:
        """Start the embedded server when no external URL is configured (idempotent)."""
        with self._lock:
            if self.settings.redis_url is None and self.embedded is None:
                server = EmbeddedRedis(
                    self.settings.data_dir / "redis", maxmemory=self.settings.redis_maxmemory
                )
                server.start()
                self.embedded = server
                self._url = server.url
        return self

    def close(self) -> None:
        """Close every client and stop the embedded server if this provider started it."""
        with self._lock:
            clients = list(self._sync_clients.values())
            if self._probe is not None:
                clients.append(self._probe)
            self._sync_clients.clear()
            self._probe = None
            self._last_probe = None
            self._async_clients = weakref.WeakKeyDictionary()
            server, self.embedded = self.embedded, None
        for client in clients:
            client.close()
        if server is not None:
            server.stop()
            self._url = self.settings.redis_url

    def __enter__(self) -> RedisProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._url is None:
            raise MemoryStoreError(
                "no Redis configured: set REDIS_URL or start the provider (embedded Redis)"
            )
        return self._url

    # -- clients -------------------------------------------------------------------------
    def _retry(self) -> Retry:
        # One quick retry on a connection error covers a connection the server closed while
        # idle; more would only delay the MemoryUnavailable callers are waiting for. Never
        # retry a timeout: the command may have run (a second XADD or profile update would
        # count twice) and a frozen server would hold the caller for several timeouts.
        return Retry(
            ExponentialBackoff(cap=0.05, base=0.01),
            retries=1,
            supported_errors=(redis.ConnectionError,),
        )

    def client(self, decode_responses: bool = True) -> redis.Redis:
        """The shared sync client (str replies by default; bytes for binary payloads)."""
        url = self.url
        with self._lock:
            client = self._sync_clients.get(decode_responses)
            if client is None:
                client = redis_url.sync_client(
                    url,
                    decode_responses=decode_responses,
                    socket_timeout=self.socket_timeout_s,
                    socket_connect_timeout=self.connect_timeout_s,
                    health_check_interval=self.health_check_interval_s,
                    retry=self._retry(),
                    client_name="agentrec",
                )
                self._sync_clients[decode_responses] = client
            return client

    def async_client(self, decode_responses: bool = True) -> redis.asyncio.Redis:
        """The async client for the running event loop (asyncio connections are bound to the
        loop that opened them, so each loop gets its own client)."""
        url = self.url
        loop = asyncio.get_running_loop()
        with self._lock:
            per_loop = self._async_clients.setdefault(loop, {})
            client = per_loop.get(decode_responses)
            if client is None:
                client = redis_url.async_client(
                    url,
                    decode_responses=decode_responses,
                    socket_timeout=self.socket_timeout_s,
                    socket_connect_timeout=self.connect_timeout_s,
                    health_check_interval=self.health_check_interval_s,
                    retry=AsyncRetry(
                        ExponentialBackoff(cap=0.05, base=0.01),
                        retries=1,
                        supported_errors=(redis.ConnectionError,),
                    ),
                    client_name="agentrec",
                )
                per_loop[decode_responses] = client
            return client

    async def aclose_async_clients(self) -> None:
        """Close the async clients of the running loop (call from the app's shutdown)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            per_loop = self._async_clients.pop(loop, {})
        for client in per_loop.values():
            await client.aclose()

    # -- health --------------------------------------------------------------------------
    def available(self) -> bool:
        """Whether Redis answers a PING within `ping_timeout_s`; cached for
        `availability_ttl_s` so hot paths can ask on every request."""
        now = time.monotonic()
        last = self._last_probe
        if last is not None and now - last[0] < self.availability_ttl_s:
            return last[1]
        try:
            url = self.url
        except MemoryStoreError:
            return False
        with self._lock:
            if self._probe is None:
                self._probe = redis_url.sync_client(
                    url,
                    socket_timeout=self.ping_timeout_s,
                    socket_connect_timeout=self.ping_timeout_s,
                    retry=Retry(ExponentialBackoff(), retries=0),
                )
            probe = self._probe
        try:
            ok = bool(probe.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            ok = False
        self._last_probe = (time.monotonic(), ok)
        return ok
