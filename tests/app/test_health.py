"""Liveness, readiness and the dependency report on a real service (a real redis-server of
its own, stopped and started again; embedded Chroma), the API over ASGI.

Readiness means "can serve": a replica whose Redis is down still answers recommendations
(degraded), so it stays ready and says what is degraded; only starting and stopping are 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from agents.memory import SHORT_TERM
from app.main import create_app
from app.service import Service
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from recdata.demo import DEMO_USER_ID
from tests.servers import free_port

T = TypeVar("T")


@dataclass
class Deployment:
    """A started service and the redis-server it uses (`redis` is replaced on a restart)."""

    service: Service
    redis: EmbeddedRedis
    redis_dir: Path
    port: int

    def restart_redis(self) -> None:
        self.redis = EmbeddedRedis(self.redis_dir, port=self.port).start()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("health")
    port = free_port()
    redis = EmbeddedRedis(root / "redis", port=port).start()
    settings = Settings(_env_file=None, data_dir=root / "data", redis_url=redis.url)  # type: ignore[call-arg]
    try:
        with Service(settings) as service:
            # every probe of the service sees Redis as it is now (its cache would hide an
            # outage for up to a second from the recommendations' `degraded`)
            service.redis.availability_ttl_s = 0.0
            deployment = Deployment(service, redis, root / "redis", port)
            yield deployment
            deployment.redis.stop()  # the one a test restarted
    finally:
        redis.stop()


def served(app: FastAPI, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Run `body` with a client of `app`, between its startup and its shutdown."""

    async def go() -> T:
        async with app.router.lifespan_context(app), _client(app) as client:
            return await body(client)

    return asyncio.run(go())


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def get_all(app: FastAPI, *paths: str) -> list[httpx.Response]:
    """GET each path without starting the app (before startup or after shutdown)."""

    async def go() -> list[httpx.Response]:
        async with _client(app) as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(go())


def test_a_redis_outage_leaves_the_service_ready_and_degraded(deployment: Deployment) -> None:
    app = create_app(deployment.service.settings, service=deployment.service)

    async def probe(client: httpx.AsyncClient) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        seen["healthy"] = await client.get("/readyz")
        seen["healthy_report"] = await client.get("/health/dependencies")
        deployment.redis.stop()
        try:
            seen["ready"] = await client.get("/readyz")
            seen["report"] = await client.get("/health/dependencies")
            seen["livez"] = await client.get("/livez")
            seen["healthz"] = await client.get("/healthz")
            seen["recommend"] = await client.post(
                "/v1/recommendations", json={"user_id": DEMO_USER_ID, "count": 5}
            )
        finally:
            deployment.restart_redis()
        seen["back"] = await client.get("/readyz")
        return seen

    seen = served(app, probe)

    # Redis is down: recommendations still answer (degraded), so the replica is ready
    assert seen["recommend"].status_code == 200, seen["recommend"].text
    assert SHORT_TERM in seen["recommend"].json()["degraded"]
    ready = seen["ready"]
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["degraded"] == ["redis"]
    assert ready.json()["checks"]["redis"].startswith("unavailable: ")
    assert ready.json()["checks"]["chroma"] == "ok"

    report = seen["report"]
    assert report.status_code == 200
    body = report.json()
    assert body["status"] == "degraded"
    assert body["dependencies"]["redis"]["status"] == "unavailable"
    error = body["dependencies"]["redis"]["error"]
    assert "Redis" in error and str(deployment.port) in error
    assert body["dependencies"]["chroma"] == {"status": "ok", "error": None}

    for name in ("livez", "healthz"):
        assert seen[name].status_code == 200
        assert seen[name].json() == {"status": "ok"}

    # before the outage
    healthy = seen["healthy"]
    assert healthy.status_code == 200
    assert healthy.json() == {
        "status": "ready",
        "degraded": [],
        "checks": {"redis": "ok", "chroma": "ok"},
    }
    assert seen["healthy_report"].json() == {
        "status": "ok",
        "dependencies": {
            "redis": {"status": "ok", "error": None},
            "chroma": {"status": "ok", "error": None},
        },
    }

    # back without a restart of the service
    assert seen["back"].status_code == 200
    assert seen["back"].json()["degraded"] == []


def test_readiness_is_503_only_while_starting_or_stopping(deployment: Deployment) -> None:
    app = create_app(deployment.service.settings, service=deployment.service)

    ready, report, live = get_all(app, "/readyz", "/health/dependencies", "/livez")
    assert ready.status_code == 503
    assert ready.json()["status"] == "starting"
    assert report.status_code == 200  # a report, not a probe
    assert report.json() == {"status": "starting", "dependencies": {}}
    assert live.status_code == 200  # the process answers

    async def readiness(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/readyz")

    assert served(app, readiness).status_code == 200

    after, live = get_all(app, "/readyz", "/livez")
    assert after.status_code == 503
    assert after.json()["status"] == "stopping"
    assert live.status_code == 200

    again = served(app, readiness)  # started again: ready again
    assert again.status_code == 200 and again.json()["degraded"] == []


def test_the_probes_are_documented(deployment: Deployment) -> None:
    app = create_app(deployment.service.settings, service=deployment.service)
    paths = app.openapi()["paths"]
    for path in ("/livez", "/healthz", "/readyz", "/health/dependencies"):
        assert "get" in paths[path], path
    assert set(paths["/readyz"]["get"]["responses"]) >= {"200", "503"}
    assert "503" not in paths["/health/dependencies"]["get"]["responses"]
