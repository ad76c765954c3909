"""A page on another origin drives the real service in headless Chromium (Debian's, through
playwright, as tests/app/test_browser.py does): `fetch` streams a run and drops it after
three events, then a native `EventSource` resumes from `Content-Location` and receives the
rest; every event arrives exactly once, and the EventSource closes by itself: after
`run_finished` it reconnects once with `Last-Event-ID`, gets 204, and never asks again.

The page is served by a second local HTTP server (another port: another origin); the
service allows that origin with `AGENTREC_CORS_ORIGINS`. A page on an origin not listed
cannot read anything.

Skips when /usr/bin/chromium (scripts/ensure_chromium.sh installs it) or playwright is
missing. Never downloads a browser.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from app.streaming import RUN_EVENT_TYPES
from tests.app.live_server import LiveServer, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Request

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
TIMEOUT_MS = 60_000
RECONNECT_WINDOW_MS = 4_000
"""How long the page keeps watching after the EventSource closed: longer than Chromium's
3 s reconnection delay, so a reconnection would show."""

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"{CHROMIUM} not found (run scripts/ensure_chromium.sh as root to install it)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="python playwright is not installed (it is pinned in requirements.lock)",
    ),
]

PAGE = b"<!doctype html><html lang=en><title>another origin</title><p>frontend</p></html>"


class PageServer:
    """A second local HTTP server: the frontend's origin."""

    def __init__(self, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pages() -> Iterator[tuple[PageServer, PageServer]]:
    allowed, other = PageServer(free_port()), PageServer(free_port())
    try:
        yield allowed, other
    finally:
        allowed.close()
        other.close()


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, pages: tuple[PageServer, PageServer]
) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("cross-origin")
    with LiveServer(data_dir, {"AGENTREC_CORS_ORIGINS": pages[0].origin}) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


FETCH_THEN_EVENTSOURCE = """async ({api, types, keepWatchingMs}) => {
  const seen = [];
  const response = await fetch(`${api}/v1/recommendations/stream`, {
    method: 'POST',
    headers: {'content-type': 'application/json', 'Idempotency-Key': crypto.randomUUID()},
    body: JSON.stringify({user_id: 'u001', count: 5}),
  });
  const location = response.headers.get('Content-Location');
  const requestId = response.headers.get('X-Request-ID');
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let lastId = null;
  while (seen.length < 3) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer = (buffer + decoder.decode(value, {stream: true})).replace(/\\r\\n/g, '\\n');
    let end;
    while (seen.length < 3 && (end = buffer.indexOf('\\n\\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let data = null;
      let id = null;
      for (const line of frame.split('\\n')) {
        if (line.startsWith('data:')) data = line.slice(5).trim();
        if (line.startsWith('id:')) id = line.slice(3).trim();
      }
      if (data !== null) {
        seen.push({via: 'fetch', id, event: JSON.parse(data)});
        lastId = id;
      }
    }
  }
  await reader.cancel();  // the page drops the stream after three events

  // EventSource cannot send headers on its first request: the id goes in the query
  const source = new EventSource(`${api}${location}?last_event_id=${lastId}`);
  let messages = 0;
  source.onmessage = () => { messages += 1; };
  for (const type of types) {
    source.addEventListener(type, (e) => {
      seen.push({via: 'eventsource', id: e.lastEventId, event: JSON.parse(e.data)});
    });
  }
  await new Promise((resolve) => {
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) resolve(); };
  });
  const closedState = source.readyState;
  await new Promise((resolve) => setTimeout(resolve, keepWatchingMs));
  return {seen, location, requestId, messages, closedState, laterState: source.readyState};
}"""


def test_fetch_then_eventsource_resume_from_another_origin(
    browser: Browser, api: LiveServer, pages: tuple[PageServer, PageServer]
) -> None:
    page_origin = pages[0].origin
    assert page_origin != api.base_url  # another port: another origin
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    resumes: list[Request] = []
    page.on(
        "requestfinished",
        lambda request: resumes.append(request) if "/v1/runs/" in request.url else None,
    )
    try:
        page.goto(f"{page_origin}/")
        result = page.evaluate(
            FETCH_THEN_EVENTSOURCE,
            {
                "api": api.base_url,
                "types": list(RUN_EVENT_TYPES),
                "keepWatchingMs": RECONNECT_WINDOW_MS,
            },
        )
        statuses = [(r.method, r.response().status if r.response() else None) for r in resumes]  # type: ignore[union-attr]
        last_event_ids = [r.all_headers().get("last-event-id") for r in resumes]
    finally:
        context.close()

    seen = result["seen"]
    events = [s["event"] for s in seen]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # every event exactly once
    assert [s["via"] for s in seen] == ["fetch"] * 3 + ["eventsource"] * (len(seen) - 3)
    assert len(seen) > 3
    assert {e["run_id"] for e in events} == {events[0]["run_id"]}
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "success"
    assert [s["id"] for s in seen] == [str(seq) for seq in seqs]
    assert result["location"] == f"/v1/runs/{events[0]['run_id']}/stream"  # readable: exposed
    assert result["requestId"]
    assert result["messages"] == 0  # every event is named: onmessage never fires

    # the EventSource closed by itself: one reconnection (Last-Event-ID: the last id) got
    # 204, and nothing was asked after it
    assert result["closedState"] == result["laterState"] == 2  # EventSource.CLOSED
    assert statuses == [("GET", 200), ("GET", 204)], statuses
    assert last_event_ids == [None, str(seqs[-1])]


def test_a_page_on_an_origin_not_listed_cannot_read(
    browser: Browser, api: LiveServer, pages: tuple[PageServer, PageServer]
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{pages[1].origin}/")
        outcome = page.evaluate(
            """async (api) => {
              try {
                await fetch(`${api}/v1/recommendations`, {
                  method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'});
                return 'read';
              } catch (error) {
                return error.name;
              }
            }""",
            api.base_url,
        )
    finally:
        context.close()
    assert outcome == "TypeError"  # the browser blocked it (no Access-Control-Allow-Origin)
