"""Docker is not available on the build machines: check the deployment files by reading them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_compose_has_api_redis_chroma_with_healthchecks() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"api", "redis", "chroma"}
    for name in ("redis", "chroma"):
        assert services[name]["healthcheck"]["test"], name
        assert services["api"]["depends_on"][name]["condition"] == "service_healthy"
    env = services["api"]["environment"]
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["CHROMA_HOST"] == "chroma"
    for volume in ("redis-data", "chroma-data", "api-data"):
        assert volume in compose["volumes"]
    # the API binds beyond loopback only with keys; its health check is readiness (can
    # serve, which a Redis or Chroma outage only degrades), within the check's timeout
    assert env["AGENTREC_API_KEYS"].startswith("${AGENTREC_API_KEYS:?")
    check = services["api"]["healthcheck"]
    assert "/readyz" in " ".join(check["test"])
    assert "/health/dependencies" not in " ".join(check["test"])


def test_dockerfile_copies_every_package_and_runs_the_service() -> None:
    text = (REPO / "Dockerfile").read_text()
    pyproject = (REPO / "pyproject.toml").read_text()
    packages = re.search(r"include = \[(.*?)\]", pyproject)
    assert packages is not None
    for pkg in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert re.search(rf"^COPY {pkg} \./{pkg}$", text, re.M), f"Dockerfile misses {pkg}/"
    assert "requirements.lock" in text
    assert '"agentrec", "serve"' in text
    # the image's own health check is liveness: a store outage must not mark it unhealthy
    healthcheck = re.search(r"^HEALTHCHECK .*?\n\s+CMD (.*)$", text, re.M)
    assert healthcheck is not None
    assert "/livez" in healthcheck.group(1)


def test_the_scaled_profile_puts_nginx_in_front_of_the_replicas() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    api, replica, lb = services["api"], services["api-2"], services["lb"]
    assert replica["profiles"] == lb["profiles"] == ["scaled"]
    assert replica["environment"] == api["environment"]  # the same stateless service
    assert "ports" not in replica  # scalable: --scale api-2=N
    assert lb["volumes"] == ["./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert {lb["depends_on"][name]["condition"] for name in ("api", "api-2")} == {"service_healthy"}
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    assert re.findall(r"server (\S+):8000", conf) == ["api", "api-2"]
    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent" in conf
    assert "proxy_buffering off" in conf  # Server-Sent Events pass unbuffered


def test_compose_trains_once_into_a_model_store_every_replica_reads() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    train = services["train"]
    assert train["profiles"] == ["train"]  # a job, not started by `up`
    assert train["command"][:2] == ["agentrec", "train"]
    assert "models" in compose["volumes"]
    store = train["environment"]["AGENTREC_MODEL_DIR"]
    assert f"models:{store}" in train["volumes"]
    # it reads the feedback the replicas record, from their Redis
    assert train["environment"]["REDIS_URL"] == services["api"]["environment"]["REDIS_URL"]
    for name in ("api", "api-2"):
        assert services[name]["environment"]["AGENTREC_MODEL_DIR"] == store
        assert f"models:{store}:ro" in services[name]["volumes"]
