"""An OpenAI-compatible fake LLM server speaking the real chat-completions wire protocol.

Used by the tests (`tests.fakes.openai_server` re-exports it) and by `benchmarks.llm_cost`.
A stdlib `ThreadingHTTPServer` on 127.0.0.1 (free port) in a background thread; use it as a
context manager or through a pytest fixture:

    with FakeOpenAIServer(default=Reply.structured({"name": "x"})) as server:
        model = ChatOpenAI(model="fake", base_url=server.base_url, api_key="dummy")
        ...
        assert server.requests[0].response_format is not None

What each request gets is chosen, in order, by: the queue (`enqueue(...)`, one `Reply` per
request), then the `responder` function (request -> `Reply`), then `default`.
`Reply.structured(obj)` answers in whatever form the request asks for: a call of the forced
(or first) tool when the request carries tools, else JSON content (json_schema / json_object
response formats, or none). `answer_schema_with(obj)` answers every request that way;
`answer_by_schema({"RankedList": {...}, "Critique": {...}})` picks the dict by the requested
schema's name (tool name or json_schema name).

Token usage is a deterministic count of whitespace-separated words (`count_tokens`): prompt =
words of the message texts, completion = words of the content or of the tool-call arguments.
Every request is recorded (`requests`) with the usage that was sent back.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

ReplyKind = Literal["text", "tool_call", "structured", "error"]


def count_tokens(text: str) -> int:
    """The fake tokenizer: whitespace-separated words."""
    return len(text.split())


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build with the class methods; `delay_s` sleeps before answering."""

    kind: ReplyKind
    content: str = ""
    tool_name: str | None = None
    arguments: str = "{}"
    payload: Any = None
    status: int = 200
    error_message: str = ""
    delay_s: float = 0.0

    @classmethod
    def text(cls, content: str, *, delay_s: float = 0.0) -> Reply:
        """Plain assistant content (also the way to send malformed JSON)."""
        return cls(kind="text", content=content, delay_s=delay_s)

    @classmethod
    def json(cls, obj: Any, *, delay_s: float = 0.0) -> Reply:
        """Assistant content holding `obj` serialized as JSON."""
        return cls(kind="text", content=json.dumps(obj), delay_s=delay_s)

    @classmethod
    def tool_call(
        cls, name: str | None, arguments: dict[str, Any] | str, *, delay_s: float = 0.0
    ) -> Reply:
        """A call of tool `name` (None: the request's forced or first tool).

        A string `arguments` is sent verbatim (malformed arguments for tests).
        """
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return cls(kind="tool_call", tool_name=name, arguments=args, delay_s=delay_s)

    @classmethod
    def structured(cls, obj: Any, *, delay_s: float = 0.0) -> Reply:
        """Answer `obj` in the form the request asks for (tool call or JSON content)."""
        return cls(kind="structured", payload=obj, delay_s=delay_s)

    @classmethod
    def error(cls, status: int = 500, message: str = "", *, delay_s: float = 0.0) -> Reply:
        """An HTTP error with an OpenAI-style error body (500, 429, 400, ...)."""
        text = message or HTTPStatus(status).phrase
        return cls(kind="error", status=status, error_message=text, delay_s=delay_s)

    def with_delay(self, delay_s: float) -> Reply:
        return replace(self, delay_s=delay_s)


@dataclass
class RecordedRequest:
    """One HTTP request as the server saw it, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 200
    usage: dict[str, int] | None = None
    reply: Reply | None = None

    @property
    def model(self) -> str | None:
        value = self.body.get("model")
        return value if isinstance(value, str) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        return [tool.get("function", {}).get("name", "") for tool in self.tools]

    @property
    def tool_choice(self) -> Any:
        return self.body.get("tool_choice")

    @property
    def forced_tool_name(self) -> str | None:
        """The tool named by `tool_choice`, if the request forces one."""
        choice = self.tool_choice
        if isinstance(choice, dict):
            name = choice.get("function", {}).get("name")
            return name if isinstance(name, str) else None
        return None

    @property
    def response_format(self) -> dict[str, Any] | None:
        value = self.body.get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def response_format_type(self) -> str | None:
        fmt = self.response_format
        return fmt.get("type") if fmt else None

    @property
    def schema_name(self) -> str | None:
        """The schema the request asks for: forced (or only) tool, else json_schema name."""
        if self.forced_tool_name is not None:
            return self.forced_tool_name
        if len(self.tools) == 1:
            return self.tool_names[0]
        fmt = self.response_format
        if fmt and fmt.get("type") == "json_schema":
            name = (fmt.get("json_schema") or {}).get("name")
            return name if isinstance(name, str) else None
        return None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options") or {}
        return bool(options.get("include_usage"))

    @property
    def prompt_text(self) -> str:
        """All message texts joined (string contents and text parts)."""
        return " ".join(_message_text(m) for m in self.messages)


Responder = Callable[[RecordedRequest], Reply]


def answer_schema_with(obj: Any) -> Responder:
    """A responder answering every request with `obj` in the requested form."""
    return lambda _request: Reply.structured(obj)


def answer_by_schema(answers: dict[str, Any], default: Any = None) -> Responder:
    """A responder answering each requested schema (by name) with its dict, in the requested form.

    Requests naming no schema (json_object mode) or an unknown one get `default`; with no
    default they get an HTTP 400 naming the problem, so a test notices.
    """

    def respond(request: RecordedRequest) -> Reply:
        name = request.schema_name
        if name is not None and name in answers:
            return Reply.structured(answers[name])
        if default is not None:
            return Reply.structured(default)
        return Reply.error(400, f"fake server: no scripted answer for schema {name!r}")

    return respond


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


@dataclass
class _Resolved:
    """A reply turned into concrete wire content for one request."""

    content: str | None
    tool_name: str | None = None
    arguments: str | None = None

    @property
    def completion_text(self) -> str:
        return (self.arguments or "") if self.tool_name is not None else (self.content or "")


def _resolve(reply: Reply, request: RecordedRequest) -> _Resolved:
    if reply.kind == "text":
        return _Resolved(content=reply.content)
    if reply.kind == "tool_call":
        name = reply.tool_name or request.forced_tool_name or next(iter(request.tool_names), "")
        return _Resolved(content=None, tool_name=name, arguments=reply.arguments)
    # structured: follow what the request asks for
    serialized = json.dumps(reply.payload)
    if request.tools:
        name = request.forced_tool_name or request.tool_names[0]
        return _Resolved(content=None, tool_name=name, arguments=serialized)
    return _Resolved(content=serialized)


@dataclass
class FakeOpenAIServer:
    """The fake server. `latency_s` is added to every chat-completions request."""

    default: Reply = field(default_factory=lambda: Reply.text("ok"))
    responder: Responder | None = None
    latency_s: float = 0.0
    models: tuple[str, ...] = ("fake-model",)
    chunk_words: int = 1
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- scripting -------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._queue.extend(replies)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def chat_requests(self) -> list[RecordedRequest]:
        """Recorded POST /v1/chat/completions requests."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        """Forget recorded requests and queued replies."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The OpenAI base URL to give a client (ends with /v1)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        handler = _make_handler(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- request handling (called from handler threads) --------------------------------
    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        return self.default

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _new_id(self) -> int:
        with self._lock:
            return next(self._ids)


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output quiet

        def do_GET(self) -> None:
            request = self._recorded({})
            if self.path.rstrip("/").endswith("/models"):
                data = [
                    {"id": name, "object": "model", "created": 0, "owned_by": "fake"}
                    for name in server.models
                ]
                self._send_json(200, {"object": "list", "data": data})
            else:
                request.status = 404
                self._send_error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._recorded({}).status = 400
                self._send_error(400, "request body is not JSON")
                return
            request = self._recorded(body if isinstance(body, dict) else {})
            if not self.path.rstrip("/").endswith("/chat/completions"):
                request.status = 404
                self._send_error(404, f"no route {self.path}")
                return
            reply = server._next_reply(request)
            request.reply = reply
            server._sleep(server.latency_s + reply.delay_s)
            if server._stopping.is_set():
                return
            try:
                if reply.kind == "error":
                    request.status = reply.status
                    self._send_error(reply.status, reply.error_message)
                elif request.stream:
                    self._stream(request, _resolve(reply, request))
                else:
                    self._complete(request, _resolve(reply, request))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout)

        # ---- helpers -----------------------------------------------------------------
        def _recorded(self, body: dict[str, Any]) -> RecordedRequest:
            request = RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            server._record(request)
            return request

        def _usage(self, request: RecordedRequest, resolved: _Resolved) -> dict[str, int]:
            prompt = count_tokens(request.prompt_text)
            completion = count_tokens(resolved.completion_text)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            request.usage = usage
            return usage

        def _complete(self, request: RecordedRequest, resolved: _Resolved) -> None:
            message: dict[str, Any] = {"role": "assistant", "content": resolved.content}
            finish_reason = "stop"
            if resolved.tool_name is not None:
                message["tool_calls"] = [
                    {
                        "id": f"call_{server._new_id()}",
                        "type": "function",
                        "function": {"name": resolved.tool_name, "arguments": resolved.arguments},
                    }
                ]
                finish_reason = "tool_calls"
            body = {
                "id": f"chatcmpl-{server._new_id()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.model or server.models[0],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": self._usage(request, resolved),
            }
            self._send_json(200, body)

        def _stream(self, request: RecordedRequest, resolved: _Resolved) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            completion_id = f"chatcmpl-{server._new_id()}"
            model = request.model or server.models[0]

            def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                return {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }

            self._event(chunk({"role": "assistant", "content": ""}))
            if resolved.tool_name is not None:
                call_id = f"call_{server._new_id()}"
                self._event(
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": call_id,
                                    "type": "function",
                                    "function": {"name": resolved.tool_name, "arguments": ""},
                                }
                            ]
                        }
                    )
                )
                for piece in _pieces(resolved.arguments or "", server.chunk_words):
                    delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                    self._event(chunk(delta))
                finish = "tool_calls"
            else:
                for piece in _pieces(resolved.content or "", server.chunk_words):
                    self._event(chunk({"content": piece}))
                finish = "stop"
            self._event(chunk({}, finish))
            usage = self._usage(request, resolved)
            if request.include_usage:
                final = chunk({})
                final["choices"] = []
                final["usage"] = usage
                self._event(final)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        def _send_json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _send_error(self, status: int, message: str) -> None:
            error_type = {
                400: "invalid_request_error",
                401: "authentication_error",
                404: "not_found_error",
                429: "rate_limit_error",
            }.get(status, "server_error")
            body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
            self._send_json(status, body)

    return Handler


def _pieces(text: str, words_per_piece: int) -> Iterator[str]:
    """Split `text` into pieces of whole words, keeping the whitespace (joins back to text)."""
    if not text:
        return
    parts: list[str] = []
    current = ""
    words = 0
    for index, char in enumerate(text):
        current += char
        ends_word = not char.isspace() and (index + 1 == len(text) or text[index + 1].isspace())
        if ends_word:
            words += 1
            if words >= words_per_piece:
                parts.append(current)
                current = ""
                words = 0
    if current:
        parts.append(current)
    yield from parts
