"""uvicorn's HTTP protocol with read timeouts: a request's headers must arrive within
`header_timeout_s` of its first byte (or of the connection, for the first request), and its
body within `body_timeout_s` of its headers. uvicorn alone only times out idle keep-alive
connections, so a client sending headers at one byte a second held a connection (and its
memory) for as long as it liked. A late header gets a 408 and the connection is closed; a
late body closes the connection (the application sees the client leave)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("agentrec.api")

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0

_TIMEOUT_BODY = (
    b'{"error": {"code": "request_timeout", "message": "the request was not received in time"}}'
)
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + b"content-length: %d\r\n\r\n" % len(_TIMEOUT_BODY)
    + _TIMEOUT_BODY
)


def configure(config: Any, header_timeout_s: float, body_timeout_s: float) -> None:
    """Set the timeouts on a uvicorn `Config` (they travel with it to spawned workers)."""
    config.agentrec_header_timeout_s = header_timeout_s
    config.agentrec_body_timeout_s = body_timeout_s


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the read timeouts of its `Config` (`configure`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = getattr(self.config, "agentrec_header_timeout_s", HEADER_TIMEOUT_S)
        self.body_timeout = getattr(self.config, "agentrec_body_timeout_s", BODY_TIMEOUT_S)
        self._read_timer: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, on_timeout: Any) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, on_timeout)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout, self._headers_late)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout, self._body_late)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _headers_late(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            log.info("closed a connection whose request headers were late")
            self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()

    def _body_late(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            log.info("closed a connection whose request body was late")
            self.transport.close()
