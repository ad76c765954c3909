"""Cross-origin access for browser frontends on other origins (CORS).

Allowed origins come from `settings.cors_origins` (`AGENTREC_CORS_ORIGINS`): comma-separated
origins such as `https://shop.example,http://localhost:3000`, or `*` for any origin. None by
default: no CORS headers are sent and browsers keep pages of other origins out.

- Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered for every route,
  with any request header allowed (`Authorization`, `X-API-Key`, `Idempotency-Key`,
  `Last-Event-ID`, ...): the API key, not a cookie, is what authenticates.
- Scripts may read `Content-Location` (where a stream resumes), `Retry-After`, the request
  id (`X-Request-ID`) and the rate limit headers.
- Listed origins may send credentials (`fetch(..., {credentials: "include"})`,
  `new EventSource(url, {withCredentials: true})`); `*` never allows credentials (the
  browser's rule), so `*` cannot be combined with listed origins.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from core.errors import ConfigError
from core.settings import Settings

EXPOSED_HEADERS = (
    "Content-Location",
    "Retry-After",
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
)
"""Response headers scripts on an allowed origin may read."""
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PREFLIGHT_MAX_AGE_S = 600

_ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


def parse_origins(text: str) -> tuple[str, ...]:
    """The origins of `AGENTREC_CORS_ORIGINS` (empty entries ignored, a trailing `/` dropped);
    `ConfigError` naming a bad entry."""
    origins: list[str] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        origin = entry if entry == "*" else entry.removesuffix("/")
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"AGENTREC_CORS_ORIGINS: {entry[:100]!r} is not an origin "
                "(scheme://host[:port], e.g. https://shop.example or http://localhost:3000) or *"
            )
        if origin not in origins:
            origins.append(origin)
    if "*" in origins and len(origins) > 1:
        raise ConfigError(
            "AGENTREC_CORS_ORIGINS: * (any origin, no credentials) cannot be combined with "
            "listed origins"
        )
    return tuple(origins)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the CORS middleware when origins are configured (none: nothing is added)."""
    origins = parse_origins(settings.cors_origins)
    if not origins:
        return
    any_origin = origins == ("*",)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=["*"],
        allow_credentials=not any_origin,
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_S,
    )
