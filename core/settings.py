"""One settings object for the whole service, read from the environment and `.env`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "agentrec"


class Settings(BaseSettings):
    """Service settings. Every field can be set with an `AGENTREC_`-prefixed env var."""

    model_config = SettingsConfigDict(env_prefix="AGENTREC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where downloaded datasets, the embedded Redis and Chroma keep their files.",
    )
    catalog: str = Field(
        default="demo", description="The catalog the service recommends from ('demo' is bundled)."
    )
    preset: str = Field(
        default="offline",
        description="Agent preset: a name in configs/ (offline, openai, local) or a TOML path.",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Model store: `agentrec train` writes versioned artifacts to "
        "<model_dir>/<catalog>/<version>/ and serving loads the newest one memory-mapped "
        "(default: <data_dir>/models).",
    )
    model_artifacts: Literal["prefer", "require", "off"] = Field(
        default="prefer",
        description="How serving gets its models: 'prefer' loads the newest artifact trained "
        "on the served catalog and fits in process (with a log line) when there is none, "
        "'require' refuses to start without one, 'off' always fits in process.",
    )
    model_reload_s: float = Field(
        default=30.0,
        ge=0.0,
        description="How often a serving worker looks for a newer model artifact of its "
        "catalog and swaps it in (seconds; 0: never).",
    )

    redis_url: str | None = Field(
        default=None,
        validation_alias="REDIS_URL",
        description="External Redis; when unset the service starts an embedded redis-server.",
    )
    chroma_host: str | None = Field(
        default=None,
        validation_alias="CHROMA_HOST",
        description="External Chroma server; when unset Chroma runs embedded in data_dir.",
    )
    chroma_port: int = Field(default=8000, validation_alias="CHROMA_PORT")
    session_ttl_s: int = Field(
        default=7 * 24 * 3600, description="How long session data lives in Redis (seconds)."
    )
    trace_ttl_s: int = Field(
        default=3600,
        ge=1,
        description="How long the trace of a run in flight lives in Redis after its last "
        "event (seconds); a run that goes silent for longer is forgotten.",
    )
    finished_trace_ttl_s: int = Field(
        default=600,
        ge=1,
        description="How long a finished run stays replayable (resume with Last-Event-ID, "
        "follow from another replica) after its last event (seconds).",
    )
    json_trace: Literal["summary", "full", "none"] = Field(
        default="summary",
        description="What a one-shot JSON run keeps in Redis: 'summary' (run_started and a "
        "run_finished with the recommended item ids: replay and attribution), 'full' (every "
        "agent event, as a streamed run) or 'none'.",
    )
    trace_max_events: int = Field(
        default=10_000, ge=10, description="Most events one run's trace keeps (oldest dropped)."
    )
    redis_maxmemory: str = Field(
        default="",
        description="maxmemory of the embedded redis-server (e.g. '512mb'; empty: no limit). "
        "It evicts keys closest to expiry first (volatile-ttl): traces, then sessions; "
        "profiles and event logs, which have no TTL, are never evicted.",
    )
    profile_eta: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Learning rate of profile updates from feedback: P(t+1) = P(t) + eta * dP.",
    )

    api_keys: str = Field(
        default="",
        description="API keys as comma-separated role:key pairs (roles: client, admin), e.g. "
        "'client:k1,admin:k2'. Empty: the service is open and binds to loopback only.",
    )
    rate_limit_per_minute: int = Field(
        default=1200, ge=0, description="Requests per minute per API key (0: no limit)."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (bytes)."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request's headers must arrive within this many seconds (else 408).",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A request's body must arrive within this many seconds of its headers.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Service logs: JSON lines (time, level, logger, message, request and run "
        "ids) or plain text.",
    )
    max_message_chars: int = Field(
        default=4000, ge=1, description="Longest chat message or query accepted (characters)."
    )
    cors_origins: str = Field(
        default="",
        description="Origins whose pages may call the API from a browser (CORS), "
        "comma-separated (e.g. 'https://shop.example,http://localhost:3000'), or '*' for any "
        "origin without credentials. Empty: none.",
    )
    blas_threads: int = Field(
        default=1,
        ge=0,
        description="Threads of each BLAS and OpenMP library (numpy's matrix products) in a "
        "serving worker: 1, as a worker is one process per core (more oversubscribe the "
        "cores); 0 leaves the libraries' defaults and their own environment variables.",
    )


def get_settings() -> Settings:
    """Build the settings from the current environment (never at import time)."""
    return Settings()
