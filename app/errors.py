"""One error model for every answer the service does not give with a 2xx.

Every error body is::

    {"error": {"code": str, "message": str, "details": list | dict | null, "request_id": str}}

and never carries a stack trace. Every response (errors and successes, streams included)
carries an `X-Request-ID` header with the same id as the body's `request_id`.

Public API (wire it in `create_app`)::

    install(app, settings)            # the two middlewares + every handler below; call once,
                                      # after any other add_middleware (CORS...) so the
                                      # request-id middleware stays outermost
    install_error_handlers(app)       # only the handlers
    raise ApiError(status, code, message, details=None, headers=None)
    error_response(request, status, code, message, details=None, headers=None) -> JSONResponse
    request_id_of(request) -> str
    RequestIdMiddleware(app)                  # pure ASGI; must be the outermost middleware
    BodySizeLimitMiddleware(app, max_bytes)   # pure ASGI

Error codes produced here:

- `invalid_request` (422): the request does not match the schema; `details` is a list of
  `{"field": "body.count", "message": "Input should be greater than 0"}`, at most
  `MAX_VALIDATION_DETAILS` of them (the message gives the total). The input is never echoed:
  messages and field names are cut short, so a huge invalid body gets a small answer.
- `invalid_json` (400): the body is not valid JSON; `details` gives the position.
- `not_found` (404, also for unknown routes), `method_not_allowed` (405, with `Allow`),
  `http_<status>` for any other `HTTPException`.
- `payload_too_large` (413): the body is larger than `settings.max_body_bytes`, by its
  `Content-Length` or, for a chunked upload, while it is being read.
- `internal_error` (500): any other exception; logged on `agentrec.api` with the request id,
  the client only sees a generic message and the id to quote. (Starlette re-raises it after
  the response, so uvicorn logs the traceback as well.)

The middlewares are plain ASGI (not `BaseHTTPMiddleware`) so streaming responses (SSE) pass
through unbuffered. Note: FastAPI's `debug=True` replaces the 500 handler by a traceback page;
never enable it in the service.
"""

from __future__ import annotations

import http
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.utils import is_body_allowed_for_status_code
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_id_var
from core.settings import Settings

logger = logging.getLogger("agentrec.api")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Longest validation message passed on to clients (pydantic messages are short; a custom
# validator's could echo a whole input).
_MAX_DETAIL_MESSAGE_CHARS = 300
# A field name is made of the path to the bad value, dict keys included: long keys are cut.
_MAX_FIELD_PART_CHARS = 64
MAX_VALIDATION_DETAILS = 20
"""Most validation errors listed in a 422's `details` (the message says how many in all)."""


class ApiError(Exception):
    """An error meant for the client: raise it anywhere in a request; the handler turns it
    into the error body with `status`, plus `headers` (e.g. `Retry-After`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


class PayloadTooLarge(ApiError):
    """The request body is over the limit (raised from `receive` while the body is read)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413,
            "payload_too_large",
            f"The request body is larger than the limit of {max_bytes} bytes; send a smaller body.",
            details={"max_bytes": max_bytes},
        )


# -- request ids ---------------------------------------------------------------------------
def _valid_request_id(value: str | None) -> bool:
    return value is not None and _REQUEST_ID_PATTERN.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_of(request: Request) -> str:
    """The id of this request (set by `RequestIdMiddleware`; made up and remembered on the
    request when the middleware is not installed, so one request always has one id)."""
    request_id = getattr(request.state, "request_id", None)
    if not isinstance(request_id, str):
        request_id = new_request_id()
        request.state.request_id = request_id
    return request_id


class RequestIdMiddleware:
    """Gives every request an id: the client's `X-Request-ID` when it is 1-64 characters of
    `[A-Za-z0-9._-]`, else a new uuid4 hex. Stores it in `scope["state"]["request_id"]`
    (`request.state.request_id`) and sets the `X-Request-ID` response header.

    Add it last (outermost) so every other middleware's responses carry the id too. The
    500 handler sets the header itself: Starlette sends 500s from outside all middlewares.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = offered if offered is not None and _valid_request_id(offered) else None
        request_id = request_id or new_request_id()
        # Mutate the scope in place: the 500 handler builds its Request from this same dict.
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_var.set(request_id)  # log lines of this request name it (app.logs)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


# -- body size -----------------------------------------------------------------------------
class BodySizeLimitMiddleware:
    """Answers 413 `payload_too_large` when a request body is over `max_bytes`.

    A `Content-Length` over the limit is refused before the app runs. A body without one
    (chunked) is counted while the app reads it: past the limit, `receive` raises
    `PayloadTooLarge`, whatever the app answers is dropped and the 413 is sent instead (if
    the app had already started its response, the exception propagates). At most one
    chunk beyond the limit is ever held in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        too_large = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                raise PayloadTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise PayloadTooLarge(self.max_bytes)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large and not response_started:
                return  # the app's answer to a body it could not read; the 413 follows
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large or response_started:
                raise
        if too_large and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = PayloadTooLarge(self.max_bytes)
        response = error_response(
            Request(scope),
            exc.status,
            exc.code,
            exc.message,
            exc.details,
            # The rest of the body is never read: the connection cannot be reused.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.strip().isascii():
        return None
    try:
        return int(value)
    except ValueError:
        return None  # the server rejects malformed lengths itself


# -- responses and handlers ----------------------------------------------------------------
def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error body for `request` (with its request id) as a JSON response."""
    request_id = request_id_of(request)
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": jsonable_encoder(details),
            "request_id": request_id,
        }
    }
    all_headers = {**(headers or {}), REQUEST_ID_HEADER: request_id}
    return JSONResponse(body, status_code=status, headers=all_headers)


async def _api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


def _field_name(loc: Any) -> str:
    if isinstance(loc, (list, tuple)):
        name = ".".join(_short(str(part), _MAX_FIELD_PART_CHARS) for part in loc)
        return _short(name) or "request"
    return _short(str(loc), _MAX_FIELD_PART_CHARS)


def _short(text: str, limit: int = _MAX_DETAIL_MESSAGE_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    json_error = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if json_error is not None:
        json_loc: tuple[Any, ...] = tuple(json_error.get("loc") or ())
        position = json_loc[1] if len(json_loc) > 1 else None
        reason = str((json_error.get("ctx") or {}).get("error") or "JSON decode error")
        where = f" at character {position}" if position is not None else ""
        return error_response(
            request,
            400,
            "invalid_json",
            f"The request body is not valid JSON: {reason}{where}.",
            [{"field": "body", "message": f"{reason}{where}"}],
        )

    # Only `loc` and `msg` are used: pydantic's `input` (which may be the whole body) and
    # `ctx` never reach the client, and at most MAX_VALIDATION_DETAILS errors are listed.
    details = []
    for error in errors[:MAX_VALIDATION_DETAILS]:
        loc = error.get("loc") or ()
        message = str(error.get("msg") or "invalid value")
        if tuple(loc) == ("body",) and not _is_json_content_type(
            request.headers.get("content-type")
        ):
            message += " (send the body as JSON with Content-Type: application/json)"
        details.append({"field": _field_name(loc), "message": _short(message)})
    if details:
        first = f"{details[0]['field']}: {details[0]['message']}"
        more = ""
        if len(errors) > len(details):
            more = f" (and {len(errors) - 1} more; details lists the first {len(details)})"
        elif len(details) > 1:
            more = f" (and {len(details) - 1} more, see details)"
        message = f"The request is invalid: {first}{more}."
    else:
        message = "The request is invalid."
    return error_response(request, 422, "invalid_request", message, details)


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers) if exc.headers else None
    if not is_body_allowed_for_status_code(status):
        return Response(
            status_code=status,
            headers={**(headers or {}), REQUEST_ID_HEADER: request_id_of(request)},
        )
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = f"HTTP {status}"
    detail = exc.detail
    custom_message = isinstance(detail, str) and detail and detail != phrase
    details = detail if isinstance(detail, (dict, list)) else None
    route = f"{request.method} {request.url.path}"

    if status == 404:
        code = "not_found"
        if "endpoint" not in request.scope:  # no route matched at all
            message = f"No route matches {route}; the API is documented at /docs."
        else:
            message = str(detail) if custom_message else "Not found."
    elif status == 405:
        code = "method_not_allowed"
        allowed = (headers or {}).get("Allow") or (headers or {}).get("allow")
        message = f"Method {request.method} is not allowed on {request.url.path}" + (
            f"; allowed: {allowed}." if allowed else "."
        )
    else:
        code = f"http_{status}"
        message = str(detail) if custom_message else f"{phrase}."
    return error_response(request, status, code, message, details, headers)


async def _unhandled_error_handler(request: Request, exc: Exception) -> Response:
    request_id = request_id_of(request)
    logger.error(
        "unhandled %s on %s %s (request_id=%s)",
        type(exc).__name__,
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return error_response(
        request,
        500,
        "internal_error",
        "The service failed to handle this request; quote the request id when reporting it.",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into the error body."""
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(Exception, _unhandled_error_handler)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the body-size limit and request-id middlewares (request id outermost, so even a
    413 carries the id) and every error handler. Call once, before the app starts."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)  # added last = outermost
    install_error_handlers(app)
