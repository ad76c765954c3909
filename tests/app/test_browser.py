"""End to end in a real browser: the page at `/` on the real service (`agentrec serve`, its
embedded Redis and Chroma in a temp dir), driven by Debian's Chromium through playwright.
axe-core (pinned in tests/js/package.json, installed by `npm ci` as for
tests/app/test_js_clients.py) checks the page against WCAG 2 A/AA and best practice.

Skips when /usr/bin/chromium (scripts/ensure_apt.sh installs it) or playwright is
missing, and the accessibility test when node or npm is. Never downloads a browser. Leaves a
screenshot at tests/artifacts/browser.png.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import pytest

from tests.app.test_js_clients import NODE, NPM
from tests.app.test_js_clients import node_modules as node_modules  # the fixture: npm ci
from tests.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

REPO_ROOT = Path(__file__).resolve().parents[2]
INDEX_HTML = REPO_ROOT / "app" / "static" / "index.html"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY_TIMEOUT_S = 60.0
RUN_TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"{CHROMIUM} not found (scripts/ensure_apt.sh installs it as root)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="python playwright is not installed (it is pinned in requirements.lock)",
    ),
]


def _serve_command(port: int) -> list[str]:
    entry_point = Path(sys.executable).with_name("agentrec")
    base = [str(entry_point)] if entry_point.is_file() else [sys.executable, "-m", "app.cli"]
    return [*base, "serve", "--host", "127.0.0.1", "--port", str(port)]


def _server_env(data_dir: Path) -> dict[str, str]:
    """The default, self-contained service: embedded Redis and Chroma, no keys, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTREC_")}
    for name in ("REDIS_URL", "CHROMA_HOST", "CHROMA_PORT"):
        env.pop(name, None)
    env["AGENTREC_DATA_DIR"] = str(data_dir)
    env["AGENTREC_API_KEYS"] = ""  # also shadows a developer's .env
    return env


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`agentrec serve` on a free loopback port, ready (GET /readyz == 200)."""
    data_dir = tmp_path_factory.mktemp("agentrec-data")
    log_path = data_dir / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _serve_command(port),
            cwd=REPO_ROOT,
            env=_server_env(data_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"agentrec serve exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"/readyz not 200 within {READY_TIMEOUT_S:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no localStorage carried over); fails the test on a page error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.set_default_timeout(RUN_TIMEOUT_MS)
    yield page
    context.close()
    assert not page_errors, f"JavaScript errors on the page: {page_errors}"


def _wait_for_run(page: Page) -> None:
    """Until the run in progress has finished, successfully."""
    status = page.get_by_test_id("status")
    page.wait_for_function(
        "() => ['done', 'error'].includes(document.querySelector('[data-testid=status]')"
        ".dataset.state)",
        timeout=RUN_TIMEOUT_MS,
    )
    assert status.get_attribute("data-state") == "done", status.inner_text()


def _cards(page: Page) -> list[dict[str, Any]]:
    cards = page.get_by_test_id("card")
    return [
        {
            "item_id": card.get_attribute("data-item-id"),
            "title": card.get_by_test_id("card-title").inner_text().strip(),
        }
        for card in cards.all()
    ]


def _trace(page: Page) -> list[dict[str, str | None]]:
    events = page.get_by_test_id("trace-event")
    return [
        {"type": e.get_attribute("data-type"), "agent": e.get_attribute("data-agent")}
        for e in events.all()
    ]


def _screenshot(page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "browser.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_recommend_streams_cards_and_a_dislike_removes_the_item(base_url: str, page: Page) -> None:
    page.goto(f"{base_url}/")
    assert page.get_by_test_id("user-id").input_value() == "u001"

    page.get_by_test_id("recommend").click()
    _wait_for_run(page)
    first = _cards(page)
    assert first, "no recommendation cards"
    assert all(c["item_id"] and c["title"] for c in first), first
    trace = _trace(page)
    assert trace[0]["type"] == "run_started" and trace[-1]["type"] == "run_finished", trace
    started = {e["agent"] for e in trace if e["type"] == "agent_started"}
    assert len(started) >= 2, f"agents seen working: {started}"
    assert any(e["type"] == "candidates" for e in trace), trace
    assert not any(e["type"] == "error" for e in trace), trace
    assert page.locator(".agent.active").count() == 0  # every highlight cleared at the end

    disliked = first[0]["item_id"]
    card = page.locator(f'[data-testid=card][data-item-id="{disliked}"]')
    assert card.get_attribute("data-recommendation-id"), "feedback needs the recommendation_id"
    card.get_by_test_id("dislike").click()
    page.wait_for_selector(f'[data-testid=card][data-item-id="{disliked}"][data-feedback=dislike]')

    page.get_by_test_id("recommend").click()
    _wait_for_run(page)
    second = _cards(page)
    assert second, "no recommendation cards after the dislike"
    assert disliked not in {c["item_id"] for c in second}, (disliked, second)


def test_chat_types_out_a_reply_with_cards(base_url: str, page: Page) -> None:
    page.goto(f"{base_url}/")
    page.get_by_test_id("message").fill("a scary film")
    page.get_by_test_id("send").click()
    _wait_for_run(page)

    reply = page.get_by_test_id("reply").last.inner_text().strip()
    assert reply, "the assistant reply is empty"
    cards = _cards(page)
    assert cards and all(c["title"] for c in cards), cards
    assert any(c["title"] in reply for c in cards), (reply, cards)  # the reply names picks
    trace = _trace(page)
    assert len({e["agent"] for e in trace if e["type"] == "agent_started"}) >= 2, trace

    page.get_by_test_id("message").fill("something lighter, a comedy")
    page.get_by_test_id("send").click()
    _wait_for_run(page)
    assert page.get_by_test_id("reply").count() == 2
    assert page.get_by_test_id("reply").last.inner_text().strip()
    _screenshot(page)


def test_a_dropped_stream_resumes_from_the_last_event(base_url: str, page: Page) -> None:
    """The connection drops after the third event (the real stream, cut by the browser's
    request routing); the page resumes from `Content-Location` with `Last-Event-ID` and
    shows every event exactly once."""
    from playwright.sync_api import Route

    cut_streams: list[int] = []

    def cut_after_three_events(route: Route) -> None:
        response = route.fetch()
        body = response.body()
        frames = body.replace(b"\r\n", b"\n").split(b"\n\n")
        events = [f for f in frames if any(line.startswith(b"data:") for line in f.split(b"\n"))]
        assert len(events) > 3, body[:500]
        cut_streams.append(len(events))
        truncated = b"\n\n".join(events[:3]) + b"\n\n"
        route.fulfill(response=response, body=truncated)

    page.route("**/v1/recommendations/stream*", cut_after_three_events)
    page.goto(f"{base_url}/")
    page.get_by_test_id("recommend").click()
    _wait_for_run(page)
    assert cut_streams, "the stream was not intercepted"
    seqs = [
        int(seq)
        for seq in page.locator("[data-testid=trace-event][data-seq]").evaluate_all(
            "rows => rows.map(r => r.dataset.seq)"
        )
    ]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert len(seqs) > 3 and _trace(page)[-1]["type"] == "run_finished"
    assert page.get_by_test_id("card").count() >= 1


def test_an_api_error_is_shown_as_a_typed_error(base_url: str, page: Page) -> None:
    page.goto(f"{base_url}/")
    page.get_by_test_id("message").fill("x" * 5000)  # longer than any message the API accepts
    page.get_by_test_id("send").click()
    page.wait_for_selector("[data-testid=status][data-state=error]")
    errors = page.locator("[data-testid=trace-event][data-type=error]")
    assert errors.count() == 1
    assert errors.first.is_visible()
    shown = errors.first.locator(".what").inner_text()
    assert re.fullmatch(r"⚠ [a-z_0-9]+: .+", shown), shown  # the code and the message
    assert page.get_by_test_id("card").count() == 0
    assert page.get_by_test_id("send").is_enabled()  # the page is usable again


SSE_CHUNKS_SCRIPT = """(chunks) => {
    const frames = [];
    const parser = sseParser((frame) => frames.push(frame));
    for (const chunk of chunks) parser.push(chunk);
    return {frames, lastId: parser.lastId()};
}"""


def test_the_pages_sse_parser_follows_the_framing_rules(browser: Browser) -> None:
    """The page's parser on tricky input (no server needed): CRLF, CR and LF line ends,
    comments, multi-line data, a frame with no data (its id still counts), an unfinished
    last frame (dropped, its id not taken), and chunks split anywhere (one character at a
    time, including between the CR and LF of a CRLF)."""
    page = browser.new_page()
    page.set_content(INDEX_HTML.read_text(encoding="utf-8"))
    stream = (
        ": ping\r\n\r\n"
        'event: run_started\r\nid: 1\r\ndata: {"seq":1}\r\n\r\n'
        "event:token\nid: 2\ndata: first line\ndata:  second\n\n"
        "event: ignored\rid: 3\r\r"
        "data: plain\n\n"
        "event: unfinished\nid: 9\ndata: cut off"
    )
    expected = [
        {"event": "run_started", "id": "1", "data": '{"seq":1}'},
        {"event": "token", "id": "2", "data": "first line\n second"},
        {"event": "message", "id": "3", "data": "plain"},
    ]
    try:
        for chunks in ([stream], list(stream)):
            result = page.evaluate(SSE_CHUNKS_SCRIPT, chunks)
            assert result["frames"] == expected
            assert result["lastId"] == "3"
    finally:
        page.close()


AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
AXE_RUN_SCRIPT = """async (tags) => {
    const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
    return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        nodes: v.nodes.map((n) => ({target: n.target.join(' '), summary: n.failureSummary})),
    }));
}"""
SCROLLING_VIEWPORT: ViewportSize = {"width": 1280, "height": 720}
"""Small enough that the agent trace of one run overflows its panel and scrolls."""


@pytest.fixture(scope="module")
def axe_script(request: pytest.FixtureRequest) -> Path:
    """axe.min.js of the pinned axe-core, installed by test_js_clients' `node_modules`."""
    return Path(request.getfixturevalue("node_modules")) / "axe-core" / "axe.min.js"


def _axe_violations(page: Page, axe_script: Path) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it is now (axe injected once per page)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe_script))
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN_SCRIPT, AXE_TAGS)
    return violations


def _describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {n['target']}\n    {n['summary']}"
        for v in violations
        for n in v["nodes"]
    )


@pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm install the pinned axe-core (tests/js)"
)
@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_the_page_has_no_accessibility_violations_after_a_recommendation_and_a_chat_turn(
    base_url: str, page: Page, axe_script: Path, color_scheme: Literal["light", "dark"]
) -> None:
    """axe-core (WCAG 2.0-2.2 A/AA and best practice): 0 violations on the page as a user
    leaves it after a recommendation (trace scrolled, feedback given) and after a chat turn."""
    page.set_viewport_size(SCROLLING_VIEWPORT)
    page.emulate_media(color_scheme=color_scheme)
    page.goto(f"{base_url}/")

    page.get_by_test_id("recommend").click()
    _wait_for_run(page)
    assert page.locator("[data-testid=trace-event][data-type=reflection]").count() >= 1
    assert page.get_by_test_id("trace").evaluate("t => t.scrollHeight > t.clientHeight")
    violations = _axe_violations(page, axe_script)
    assert violations == [], f"after a recommendation:\n{_describe(violations)}"

    # the feedback buttons show words and an icon, no emoji; their names say which item
    first, second = _cards(page)[:2]
    like = page.get_by_role("button", name=f"Like {first['title']}", exact=True)
    dislike = page.get_by_role("button", name=f"Dislike {second['title']}", exact=True)
    assert like.inner_text().strip() == "Like" and dislike.inner_text().strip() == "Dislike"
    assert like.locator("svg[aria-hidden=true]").count() == 1
    like.click()
    dislike.click()
    page.wait_for_selector("[data-testid=card][data-feedback=like]")
    page.wait_for_selector("[data-testid=card][data-feedback=dislike]")
    violations = _axe_violations(page, axe_script)
    assert violations == [], f"after feedback:\n{_describe(violations)}"

    page.get_by_test_id("message").fill("a scary film")
    page.get_by_test_id("send").click()
    _wait_for_run(page)
    assert page.get_by_test_id("reply").last.inner_text().strip()
    violations = _axe_violations(page, axe_script)
    assert violations == [], f"after a chat turn:\n{_describe(violations)}"
