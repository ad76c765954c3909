"""API keys, roles and the Redis rate limit: a real uvicorn server and a real redis-server."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import httpx
import pytest
import redis.asyncio
from fastapi import APIRouter, Depends, FastAPI

from app import errors
from app.security import (
    MIN_KEY_CHARS,
    ApiKeys,
    Principal,
    RateLimiter,
    bind_host_for,
    install,
    key_id_for,
    require_admin,
    require_client,
)
from core.errors import ConfigError
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from tests.app.test_errors import serve_in_thread

CLIENT_KEY = "client-key-0123456789abcdef"
ADMIN_KEY = "admin-key-fedcba9876543210"
KEYS = f"client:{CLIENT_KEY}, admin:{ADMIN_KEY}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis-security")))
    with server:
        yield server


def unique_prefix() -> str:
    return f"test:ratelimit:{uuid.uuid4().hex}:"


# -- ApiKeys -------------------------------------------------------------------------------
def test_keys_parse_roles_and_lookup() -> None:
    keys = ApiKeys.parse(KEYS + ",")
    assert not keys.open and len(keys) == 2
    client = keys.lookup(CLIENT_KEY)
    admin = keys.lookup(ADMIN_KEY)
    assert client == Principal(key_id_for(CLIENT_KEY), "client")
    assert admin is not None and admin.role == "admin" and admin.is_admin
    assert client is not None and client.key_id != admin.key_id
    assert CLIENT_KEY not in client.key_id and CLIENT_KEY not in repr(keys)
    assert keys.lookup(CLIENT_KEY + "x") is None
    assert keys.lookup("") is None
    assert keys.lookup(CLIENT_KEY[:-1]) is None


@pytest.mark.parametrize("text", ["", "  ", " , ,"])
def test_no_keys_means_open(text: str) -> None:
    keys = ApiKeys.parse(text)
    assert keys.open and keys.lookup("anything-long-enough-123") is None


SECRET = "s3cret-value-that-must-not-leak"


@pytest.mark.parametrize(
    ("text", "entry", "problem"),
    [
        (f"client:{CLIENT_KEY},{SECRET}", "entry 2", "role:key"),
        (f"superuser:{SECRET}", "entry 1", "unknown role"),
        (f"{SECRET}:client", "entry 1", "unknown role"),
        (f"client:{CLIENT_KEY},admin:{SECRET[: MIN_KEY_CHARS - 1]}", "entry 2", "shorter"),
        (f"admin:{SECRET[:10]} {SECRET[10:]}", "entry 1", "spaces"),
        (f"admin:{SECRET}é", "entry 1", "non-ASCII"),
        (f"client:{SECRET},admin:{SECRET}", "entry 2", "repeats the key of entry 1"),
    ],
)
def test_bad_key_entries_are_named_without_the_key(text: str, entry: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ApiKeys.parse(text)
    message = str(caught.value)
    assert entry in message and problem in message
    assert SECRET[:10] not in message


# -- dependencies over HTTP ----------------------------------------------------------------
def build_app(settings: Settings, redis_url: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The async client belongs to the server's event loop: build it in the lifespan.
        client = redis.asyncio.Redis.from_url(redis_url) if redis_url else None
        install(app, settings, client)
        app.state.rate_limiter.key_prefix = unique_prefix()
        yield
        if client is not None:
            await client.aclose()

    app = FastAPI(lifespan=lifespan)
    errors.install(app, settings)
    install(app, settings)

    @app.get("/client")
    async def client_route(principal: Annotated[Principal, Depends(require_client)]) -> dict:
        return {"role": principal.role, "key_id": principal.key_id}

    @app.post("/admin")
    async def admin_route(principal: Annotated[Principal, Depends(require_admin)]) -> dict:
        return {"role": principal.role, "key_id": principal.key_id}

    # Both dependencies run for this route: the request must be counted once.
    router = APIRouter(dependencies=[Depends(require_client)])

    @router.post("/both")
    async def both_route(principal: Annotated[Principal, Depends(require_admin)]) -> dict:
        return {"role": principal.role}

    app.include_router(router)
    return app


@pytest.fixture(scope="module")
def keyed_url() -> Iterator[str]:
    with serve_in_thread(build_app(Settings(api_keys=KEYS))) as url:
        yield url


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def x_api_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def error_of(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return dict(error)


@pytest.mark.parametrize("headers", [{}, {"Authorization": f"Basic {CLIENT_KEY}"}])
def test_missing_key_is_401_with_instructions(keyed_url: str, headers: dict[str, str]) -> None:
    response = httpx.get(f"{keyed_url}/client", headers=headers)
    error = error_of(response, 401)
    assert error["code"] == "unauthorized"
    assert "Authorization: Bearer <key>" in str(error["message"])
    assert "X-API-Key" in str(error["message"])
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("style", [bearer, x_api_key])
def test_unknown_key_is_401(keyed_url: str, style: object) -> None:
    assert callable(style)
    response = httpx.get(f"{keyed_url}/client", headers=style("not-a-configured-key-at-all"))
    assert error_of(response, 401)["code"] == "unauthorized"
    assert "not-a-configured-key" not in response.text


@pytest.mark.parametrize("style", [bearer, x_api_key])
def test_client_key_reaches_client_routes_only(keyed_url: str, style: object) -> None:
    assert callable(style)
    ok = httpx.get(f"{keyed_url}/client", headers=style(CLIENT_KEY))
    assert ok.status_code == 200
    assert ok.json() == {"role": "client", "key_id": key_id_for(CLIENT_KEY)}

    refused = httpx.post(f"{keyed_url}/admin", headers=style(CLIENT_KEY))
    error = error_of(refused, 403)
    assert error["code"] == "forbidden" and "admin" in str(error["message"])


@pytest.mark.parametrize("style", [bearer, x_api_key])
def test_admin_key_reaches_every_route(keyed_url: str, style: object) -> None:
    assert callable(style)
    for method, path in [("GET", "/client"), ("POST", "/admin"), ("POST", "/both")]:
        response = httpx.request(method, f"{keyed_url}{path}", headers=style(ADMIN_KEY))
        assert response.status_code == 200, (path, response.text)
        assert response.json()["role"] == "admin"


def test_security_schemes_are_in_the_openapi_document(keyed_url: str) -> None:
    spec = httpx.get(f"{keyed_url}/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerKey"]["scheme"] == "bearer"
    assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"


def test_open_service_lets_everyone_in_as_admin_per_ip() -> None:
    with serve_in_thread(build_app(Settings(api_keys=""))) as url:
        response = httpx.post(f"{url}/admin")
        assert response.status_code == 200
        assert response.json() == {"role": "admin", "key_id": "ip:127.0.0.1"}
        assert httpx.get(f"{url}/client", headers=bearer("whatever")).status_code == 200


def test_missing_api_keys_on_app_state_is_a_server_error() -> None:
    app = FastAPI()
    errors.install(app, Settings())

    @app.get("/guarded")
    async def guarded(principal: Annotated[Principal, Depends(require_client)]) -> dict:
        return {}

    with serve_in_thread(app) as url:
        response = httpx.get(f"{url}/guarded", headers=bearer(CLIENT_KEY))
    assert error_of(response, 500)["code"] == "internal_error"


# -- the rate limiter against a real Redis -------------------------------------------------
def test_exactly_the_limit_passes_then_retry_after(redis_server: EmbeddedRedis) -> None:
    async def scenario() -> list[tuple[bool, int, int]]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        limiter = RateLimiter(client, 5, key_prefix=unique_prefix())
        decisions = [await limiter.check("key:a") for _ in range(7)]
        other = await limiter.check("key:b")
        await client.aclose()
        assert other.allowed  # counts are per key id
        return [(d.allowed, d.retry_after_s, d.remaining) for d in decisions]

    decisions = asyncio.run(scenario())
    assert [allowed for allowed, _, _ in decisions] == [True] * 5 + [False] * 2
    assert [remaining for _, _, remaining in decisions[:5]] == [4, 3, 2, 1, 0]
    for _, retry_after_s, _ in decisions[5:]:
        assert 1 <= retry_after_s <= 12  # one emission interval: 60 s / 5


def test_two_replicas_share_the_count(redis_server: EmbeddedRedis) -> None:
    async def scenario() -> list[bool]:
        prefix = unique_prefix()
        first_client = redis.asyncio.Redis.from_url(redis_server.url)
        second_client = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
        first = RateLimiter(first_client, 4, key_prefix=prefix)
        second = RateLimiter(second_client, 4, key_prefix=prefix)
        allowed = []
        for limiter in [first, second, first, second, first, second]:
            allowed.append((await limiter.check("key:shared")).allowed)
        await first_client.aclose()
        await second_client.aclose()
        return allowed

    assert asyncio.run(scenario()) == [True, True, True, True, False, False]


def test_limit_zero_never_refuses(redis_server: EmbeddedRedis) -> None:
    async def scenario() -> list[bool]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        limiter = RateLimiter(client, 0, key_prefix=unique_prefix())
        allowed = [(await limiter.check("key:z")).allowed for _ in range(50)]
        await client.aclose()
        return allowed

    assert all(asyncio.run(scenario()))
    assert asyncio.run(RateLimiter(None, 3).check("key:no-redis")).allowed


def _outage(data_dir: Path, failure_backoff_s: float) -> list[bool]:
    """Allowed? for: the one allowed request, a refusal, 3 requests while Redis is down,
    and one after Redis is back (its append-only file keeps the count)."""
    server = EmbeddedRedis(data_dir).start()

    async def scenario() -> list[bool]:
        client = redis.asyncio.Redis.from_url(
            server.url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        limiter = RateLimiter(
            client, 1, key_prefix=unique_prefix(), failure_backoff_s=failure_backoff_s
        )
        results = [(await limiter.check("key:down")).allowed for _ in range(2)]
        server.stop()
        results += [(await limiter.check("key:down")).allowed for _ in range(3)]
        server.start()
        results.append((await limiter.check("key:down")).allowed)
        await client.aclose()
        return results

    try:
        return asyncio.run(scenario())
    finally:
        server.stop()


def test_fails_open_while_redis_is_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentrec.api"):
        results = _outage(tmp_path / "redis", failure_backoff_s=0.0)
    # Down: allowed, no exception. Back: limited again.
    assert results == [True, False, True, True, True, False]
    warnings = [r for r in caplog.records if "rate limit not enforced" in r.getMessage()]
    assert len(warnings) == 1


def test_after_a_failure_redis_is_left_alone_for_the_back_off(tmp_path: Path) -> None:
    # Within the back-off the limiter does not ask the restarted Redis (which would refuse).
    assert _outage(tmp_path / "redis", failure_backoff_s=60.0) == [True, False] + [True] * 4


def test_refusals_over_http_are_429_with_retry_after(redis_server: EmbeddedRedis) -> None:
    settings = Settings(api_keys=KEYS, rate_limit_per_minute=3)
    with serve_in_thread(build_app(settings, redis_server.url)) as url:
        # /both runs both dependencies: counted once, all three pass.
        statuses = [
            httpx.post(f"{url}/both", headers=bearer(ADMIN_KEY)).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        refused = httpx.get(f"{url}/client", headers=x_api_key(ADMIN_KEY))
        error = error_of(refused, 429)
        assert error["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["X-RateLimit-Limit"] == "3"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        # Another key has its own budget.
        assert httpx.get(f"{url}/client", headers=bearer(CLIENT_KEY)).status_code == 200


# -- binding -------------------------------------------------------------------------------
def test_open_service_binds_to_loopback_only(caplog: pytest.LogCaptureFixture) -> None:
    open_settings = Settings(api_keys="")
    with caplog.at_level(logging.WARNING, logger="agentrec.api"):
        assert bind_host_for(open_settings, "0.0.0.0") == "127.0.0.1"
    assert any("AGENTREC_API_KEYS" in r.getMessage() for r in caplog.records)
    for loopback in ["127.0.0.1", "127.0.0.2", "::1", "localhost"]:
        assert bind_host_for(open_settings, loopback) == loopback
    assert bind_host_for(Settings(api_keys=KEYS), "0.0.0.0") == "0.0.0.0"
    with pytest.raises(ConfigError):
        bind_host_for(Settings(api_keys="client:short"), "0.0.0.0")
