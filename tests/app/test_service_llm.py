"""The API with LLM brains against the OpenAI-compatible fake server (real HTTP both ways
for the LLM; the API over ASGI): usage is reported, memories reach the User Analyst's
prompt as data, and a failing LLM degrades the answer instead of failing it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.context import Context
from agents.llm_brains import clear_model_cache
from app.main import create_app
from app.service import RunRequest, Service
from core.settings import Settings
from memory.redis_server import EmbeddedRedis
from recdata.demo import DEMO_USER_ID
from tests.fakes.openai_server import FakeOpenAIServer, Reply, answer_by_schema

LLM_AGENTS = {"UserAnalyst", "ItemAnalyst", "Ranker", "Reflector"}


@pytest.fixture()
def fake_llm() -> Iterator[FakeOpenAIServer]:
    clear_model_cache()
    with FakeOpenAIServer() as server:
        yield server
    clear_model_cache()


@pytest.fixture()
def service(
    tmp_path: Path, redis_server: EmbeddedRedis, fake_llm: FakeOpenAIServer
) -> Iterator[Service]:
    model = "openai:fake-model"
    context = Context(
        user_analyst_model=model,
        item_analyst_model=model,
        ranker_model=model,
        reflector_model=model,
        base_url=fake_llm.base_url,
        llm_timeout_s=2.0,
        llm_max_retries=0,
    )
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=redis_server.url)  # type: ignore[call-arg]
    with Service(settings, context=context) as svc:
        yield svc


def post(service: Service, path: str, body: dict[str, Any]) -> httpx.Response:
    app = create_app(service.settings, service=service)

    async def go() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.post(path, json=body)

    return asyncio.run(go())


def test_llm_answers_are_used_and_counted(service: Service, fake_llm: FakeOpenAIServer) -> None:
    user = "llm-user"
    service.memory.remember([(user, "stated_preference", "I adore silent comedies", None)])
    fake_llm.responder = answer_by_schema(
        {
            "ProfileDraft": {"summary": "Loves silent comedies.", "affinities": []},
            "ReviewDraft": {"accept": True, "problems": [], "suggestions": [], "item_ids": []},
        },
        default={"items": []},
    )
    response = post(service, "/v1/recommendations", {"user_id": user, "count": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["items"]) == 5
    assert body["usage"]["llm_calls"] == len(fake_llm.chat_requests()) >= 3
    assert body["usage"]["prompt_tokens"] > 0
    profile_prompts = [
        r.prompt_text for r in fake_llm.chat_requests() if "ProfileDraft" in str(r.schema_name)
    ]
    assert profile_prompts and "I adore silent comedies" in profile_prompts[0]


def test_a_failing_llm_degrades_the_answer(service: Service, fake_llm: FakeOpenAIServer) -> None:
    fake_llm.default = Reply.error(500, "the model is down")
    offline = post(service, "/v1/recommendations", {"user_id": DEMO_USER_ID, "count": 5})
    assert offline.status_code == 200
    body = offline.json()
    assert len(body["items"]) == 5
    assert set(body["degraded"]) == LLM_AGENTS
    assert all(i["item_id"] and i["title"] for i in body["items"])


def test_a_json_run_asks_the_llms_of_one_step_at_the_same_time(
    tmp_path: Path, redis_server: EmbeddedRedis, fake_llm: FakeOpenAIServer
) -> None:
    """With LLM brains a chat's User Analyst and Searcher share a step and their calls
    overlap (one round trip), while offline a JSON run runs a step's agents one after the
    other in its own thread."""
    answer = answer_by_schema(
        {"ProfileDraft": {"summary": "Likes films.", "affinities": []}}, default={"items": []}
    )
    lock = threading.Lock()
    in_flight = [0]
    most = [0]

    def respond(request: Any) -> Reply:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.3)  # long enough for a concurrent call to arrive meanwhile
        with lock:
            in_flight[0] -= 1
        return answer(request)

    fake_llm.responder = respond
    model = "openai:fake-model"
    context = Context(
        user_analyst_model=model,
        searcher_model=model,
        base_url=fake_llm.base_url,
        llm_timeout_s=5.0,
        llm_max_retries=0,
    )
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=redis_server.url)  # type: ignore[call-arg]
    with Service(settings, context=context) as svc:
        ask = RunRequest(task="chat", user_id=DEMO_USER_ID, message="a comedy like Shrek")
        result = svc.run_blocking(ask)
    assert result.output["recommendations"]
    assert len(fake_llm.chat_requests()) >= 2
    assert most[0] == 2
