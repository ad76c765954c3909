"""The JSON API end to end, on real `agentrec serve` processes (embedded Redis and Chroma in
temp data directories): recommendations and their options, feedback events and what they
change, rank/rate/explain, API keys, roles and the rate limit, body limits, operations and
forgetting a user.

Two servers run for the module, started together: `api`, open (no keys, as on a developer's
machine), and `secured`, with a client key, an admin key and a client key kept for the rate
limit test (AGENTREC_RATE_LIMIT_PER_MINUTE=5 counts per key, so the other keys' few calls
never reach it).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.app.live_server import LiveServer, events_of, read_sse, start_all

SOURCES = {"personalized", "fallback", "exploration"}
RATE_LIMIT = 5


@dataclass
class Keys:
    client: str
    admin: str
    limited: str


@dataclass
class Servers:
    api: LiveServer
    secured: LiveServer
    keys: Keys


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("api")
    keys = Keys(*(secrets.token_urlsafe(24) for _ in range(3)))
    api = LiveServer(root / "open")
    secured = LiveServer(
        root / "secured",
        {
            "AGENTREC_API_KEYS": f"client:{keys.client},admin:{keys.admin},client:{keys.limited}",
            "AGENTREC_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        },
    )
    try:
        start_all([api, secured])
        yield Servers(api, secured, keys)
    finally:
        api.stop()
        secured.stop()


@pytest.fixture()
def client(servers: Servers) -> Iterator[httpx.Client]:
    with servers.api.client() as c:
        yield c


# -- helpers -------------------------------------------------------------------------------
def error_body(response: httpx.Response) -> dict[str, Any]:
    """The error model: {"error": {code, message, details, request_id}}."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] and error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def recommend(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    items = answer["items"]
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    assert len({i["item_id"] for i in items}) == len(items)
    assert all(i["source"] in SOURCES for i in items)
    assert answer["fallback_used"] == any(i["source"] == "fallback" for i in items)
    return answer


def ids(answer: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in answer["items"]]


class Catalog:
    """Items as `GET /v1/items/{id}` describes them (cached per test)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.cache: dict[str, dict[str, Any]] = {}

    def item(self, item_id: str) -> dict[str, Any]:
        if item_id not in self.cache:
            response = self.client.get(f"/v1/items/{item_id}")
            assert response.status_code == 200, response.text
            self.cache[item_id] = response.json()
        return self.cache[item_id]

    def genres(self, item_id: str) -> set[str]:
        return set(self.item(item_id)["attributes"].get("genres", []))


def new_user() -> str:
    return f"new-{uuid.uuid4().hex[:12]}"


def event(type_: str, item_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "type": type_, "item_id": item_id, **fields}


def post_events(client: httpx.Client, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/events", json={"events": events})
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


# -- recommendations -------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 7, 25])
def test_recommendations_honour_count_with_titled_ranked_items(
    client: httpx.Client, count: int
) -> None:
    catalog = Catalog(client)
    answer = recommend(client, user_id="u001", count=count)
    assert len(answer["items"]) == count
    assert answer["recommendation_id"] and answer["run_id"]
    for item in answer["items"]:
        assert item["title"] == catalog.item(item["item_id"])["title"]
        assert item["properties"] == {}
    assert answer["fallback_used"] is False  # a known user with a history


def test_every_answer_has_its_own_ids(client: httpx.Client) -> None:
    first = recommend(client, user_id="u001", count=3)
    second = recommend(client, user_id="u001", count=3)
    assert first["recommendation_id"] != second["recommendation_id"]
    assert first["run_id"] != second["run_id"]


def test_an_unknown_user_gets_a_cold_start_from_the_fallback(client: httpx.Client) -> None:
    answer = recommend(client, user_id=new_user(), count=6)
    assert len(answer["items"]) == 6
    assert {i["source"] for i in answer["items"]} == {"fallback"}
    assert answer["fallback_used"] is True

    without = recommend(client, user_id=new_user(), count=6, fallback="none")
    assert all(i["source"] != "fallback" for i in without["items"])
    assert without["fallback_used"] is False


def test_include_and_exclude_filters(client: httpx.Client) -> None:
    catalog = Catalog(client)
    horror = recommend(client, user_id="u001", count=8, filters={"include": {"genres": ["Horror"]}})
    assert len(horror["items"]) == 8
    assert all("Horror" in catalog.genres(i) for i in ids(horror))

    unfiltered = recommend(client, user_id="u001", count=8)
    banned = {"Action", "Sci-Fi"}
    assert any(catalog.genres(i) & banned for i in ids(unfiltered))  # the filter has work
    filtered = recommend(
        client, user_id="u001", count=8, filters={"exclude": {"genres": [*banned]}}
    )
    assert len(filtered["items"]) == 8
    assert not any(catalog.genres(i) & banned for i in ids(filtered))

    both = recommend(
        client,
        user_id="u001",
        count=5,
        filters={"include": {"genres": ["Comedy", "Romance"]}, "exclude": {"genres": ["Drama"]}},
    )
    assert both["items"]
    for item_id in ids(both):
        genres = catalog.genres(item_id)
        assert genres & {"Comedy", "Romance"} and "Drama" not in genres


def test_exclude_item_ids(client: httpx.Client) -> None:
    first = recommend(client, user_id="u007", count=5)
    excluded = ids(first)[:3]
    second = recommend(client, user_id="u007", count=5, exclude_item_ids=excluded)
    assert len(second["items"]) == 5
    assert not set(excluded) & set(ids(second))


def test_fields_return_item_properties(client: httpx.Client) -> None:
    catalog = Catalog(client)
    answer = recommend(client, user_id="u001", count=4, fields=["genres", "year", "text"])
    for item in answer["items"]:
        stored = catalog.item(item["item_id"])
        assert item["properties"] == {
            "genres": stored["attributes"]["genres"],
            "year": stored["attributes"]["year"],
            "text": stored["text"],
        }
    unknown = client.post("/v1/recommendations", json={"user_id": "u001", "fields": ["colour"]})
    assert unknown.status_code == 422
    assert error_body(unknown)["code"] == "invalid_request"


def test_a_query_moves_the_answer_towards_the_asked_genre(client: httpx.Client) -> None:
    catalog = Catalog(client)
    plain = recommend(client, user_id="u001", count=10)
    asked = recommend(client, user_id="u001", count=10, query="a funny comedy to laugh out loud")
    comedies_plain = sum("Comedy" in catalog.genres(i) for i in ids(plain))
    comedies_asked = sum("Comedy" in catalog.genres(i) for i in ids(asked))
    assert comedies_asked > comedies_plain
    assert comedies_asked >= 5


def test_diversity_widens_the_genres_of_an_answer(client: httpx.Client) -> None:
    catalog = Catalog(client)

    def genre_count(user_id: str, diversity: float) -> int:
        answer = recommend(client, user_id=user_id, count=10, diversity=diversity)
        assert len(answer["items"]) == 10
        return len(set().union(*(catalog.genres(i) for i in ids(answer))))

    users = ["u001", "u003", "u100"]
    focused = [genre_count(u, 0.0) for u in users]
    varied = [genre_count(u, 1.0) for u in users]
    assert all(v >= f for v, f in zip(varied, focused, strict=True))
    assert sum(varied) > sum(focused)


@pytest.mark.parametrize(
    "body",
    [
        {"count": 0},
        {"count": 51},
        {"diversity": 1.5},
        {"fallback": "random"},
        {"filters": {"include": {"colour": ["red"]}}},
        {"user_id": "u001", "colour": "red"},
    ],
)
def test_invalid_recommendation_requests(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 422
    assert error_body(response)["code"] == "invalid_request"


def test_malformed_json_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        "/v1/recommendations", content=b'{"count": 3', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_body(response)["code"] == "invalid_json"


# -- feedback events -------------------------------------------------------------------------
def test_a_batch_of_mixed_events_and_its_repeats(client: httpx.Client) -> None:
    user = new_user()
    answer = recommend(client, user_id=user, count=3)
    shown = ids(answer)
    batch = [
        event("impression", shown[0], user_id=user, position=0),
        event("view", shown[0], user_id=user, recommendation_id=answer["recommendation_id"]),
        event("click", shown[1], user_id=user, recommendation_id=answer["recommendation_id"]),
        event("like", shown[1], user_id=user),
        event("rating", shown[2], user_id=user, value=4),
        event("purchase", shown[2], user_id=user, timestamp=1_700_000_000),
        event("dislike", shown[0], session_id=f"s-{uuid.uuid4().hex[:8]}"),
        event("like", "no-such-item-1999", user_id=user),
    ]
    result = post_events(client, batch)
    statuses = [(r["event_id"], r["status"]) for r in result["results"]]
    expected = [(e["event_id"], "stored") for e in batch[:-1]]
    assert statuses == [*expected, (batch[-1]["event_id"], "rejected")]
    assert result["results"][-1]["message"]
    assert (result["stored"], result["duplicates"], result["rejected"]) == (7, 0, 1)

    again = post_events(client, [*batch[:3], event("view", shown[1], user_id=user)])
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3 + ["stored"]
    assert (again["stored"], again["duplicates"], again["rejected"]) == (1, 3, 0)

    memories = client.get(f"/v1/users/{user}/memories").json()
    assert memories["events"] == 7  # the 6 stored for this user and the one new view
    assert set(memories["feedback_item_ids"]) <= set(shown)


def test_concurrent_repeats_of_a_batch_are_stored_once(client: httpx.Client) -> None:
    user = new_user()
    shown = ids(recommend(client, user_id=user, count=3))
    batch = [event("like", item_id, user_id=user) for item_id in shown]
    answers: list[dict[str, Any]] = []

    def send() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
            answers.append(post_events(own, batch))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6
    assert sum(a["stored"] for a in answers) == len(batch)
    assert sum(a["duplicates"] for a in answers) == 5 * len(batch)
    memories = client.get(f"/v1/users/{user}/memories").json()
    assert memories["events"] == len(batch)
    assert sorted(memories["feedback_item_ids"]) == sorted(shown)


def test_a_dislike_excludes_the_item_for_the_user(client: httpx.Client) -> None:
    before = recommend(client, user_id="u011", count=10)
    disliked = ids(before)[0]
    result = post_events(client, [event("dislike", disliked, user_id="u011")])
    assert result["stored"] == 1
    after = recommend(client, user_id="u011", count=50)
    assert disliked not in ids(after)
    filtered = recommend(
        client,
        user_id="u011",
        count=50,
        filters={"include": {"genres": [*Catalog(client).genres(disliked)]}},
    )
    assert disliked not in ids(filtered)
    memories = client.get("/v1/users/u011/memories").json()
    assert disliked in memories["excluded_item_ids"]


def test_a_dislike_excludes_the_item_for_an_anonymous_session(client: httpx.Client) -> None:
    session, stranger = f"anon-{uuid.uuid4().hex[:10]}", f"anon-{uuid.uuid4().hex[:10]}"
    before = recommend(client, session_id=session, count=5)
    disliked = ids(before)[0]
    post_events(client, [event("dislike", disliked, session_id=session)])
    after = recommend(client, session_id=session, count=20)
    assert disliked not in ids(after)
    # another anonymous visitor still gets it: the dislike belongs to the session
    assert disliked in ids(recommend(client, session_id=stranger, count=5))


def test_event_batches_over_100_are_refused(client: httpx.Client) -> None:
    batch = [event("view", "alien-1979", user_id="u020") for _ in range(101)]
    response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 422
    error = error_body(response)
    assert error["code"] == "invalid_request"
    assert error["details"][0]["field"] == "body.events"
    assert client.get("/v1/users/u020/memories").json()["events"] == 0  # nothing stored
    assert post_events(client, batch[:100])["stored"] == 100


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "rating", "user_id": "u021"},
        {"type": "rating", "user_id": "u021", "value": 6},
        {"type": "like"},
        {"type": "shrug", "user_id": "u021"},
        {"type": "like", "user_id": "u021", "colour": "red"},
    ],
    ids=["rating-without-value", "rating-out-of-range", "nobody", "unknown-type", "extra-field"],
)
def test_invalid_events_are_a_422(client: httpx.Client, bad: dict[str, Any]) -> None:
    bad_event = {"event_id": uuid.uuid4().hex, "item_id": "alien-1979", **bad}
    response = client.post("/v1/events", json={"events": [bad_event]})
    assert response.status_code == 422
    assert error_body(response)["code"] == "invalid_request"


def test_an_empty_batch_is_a_422(client: httpx.Client) -> None:
    response = client.post("/v1/events", json={"events": []})
    assert response.status_code == 422


# -- rank, rate, explain -----------------------------------------------------------------------
def test_rank_orders_the_given_items(client: httpx.Client) -> None:
    given = ids(recommend(client, user_id=new_user(), count=6))  # popular items
    shuffled = given[::-1]
    answer = client.post("/v1/rank", json={"user_id": "u001", "item_ids": shuffled})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert sorted(i["item_id"] for i in items) == sorted(given)
    assert [i["rank"] for i in items] == list(range(1, len(given) + 1))
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)

    with_unknown = client.post("/v1/rank", json={"user_id": "u001", "item_ids": [*given, "nope-1"]})
    assert with_unknown.status_code == 200
    assert sorted(i["item_id"] for i in with_unknown.json()["items"]) == sorted(given)


def test_rate_and_explain(client: httpx.Client) -> None:
    catalog = Catalog(client)
    item_id = ids(recommend(client, user_id="u001", count=1))[0]
    rating = client.post("/v1/rate", json={"user_id": "u001", "item_id": item_id})
    assert rating.status_code == 200, rating.text
    body = rating.json()
    assert (body["user_id"], body["item_id"]) == ("u001", item_id)
    assert isinstance(body["rating"], float) and 1.0 <= body["rating"] <= 5.0

    why = client.post("/v1/explain", json={"user_id": "u001", "item_id": item_id})
    assert why.status_code == 200, why.text
    explanation = why.json()
    assert explanation["item_id"] == item_id and explanation["explanation"].strip()
    assert catalog.item(item_id)["title"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/rate", {"user_id": "u001", "item_id": "no-such-item-1999"}),
        ("/v1/explain", {"user_id": "u001", "item_id": "no-such-item-1999"}),
        ("/v1/rank", {"user_id": "u001", "item_ids": ["no-such-item-1999"]}),
        ("/v1/rank", {"user_id": "u001", "item_ids": []}),
    ],
    ids=["rate", "explain", "rank", "rank-empty"],
)
def test_unknown_items_are_a_4xx(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    assert 400 <= response.status_code < 500
    assert error_body(response)["code"] == "invalid_request"


def test_items(client: httpx.Client) -> None:
    item_id = ids(recommend(client, user_id="u001", count=1))[0]
    item = client.get(f"/v1/items/{item_id}").json()
    assert item["item_id"] == item_id and item["title"] and item["attributes"]["genres"]
    missing = client.get("/v1/items/no-such-item-1999")
    assert missing.status_code == 404
    assert error_body(missing)["code"] == "item_not_found"


# -- security --------------------------------------------------------------------------------
def test_api_keys_and_roles(servers: Servers) -> None:
    keys = servers.keys
    with servers.secured.client() as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200

        anonymous = c.post("/v1/recommendations", json={"user_id": "u001", "count": 2})
        assert anonymous.status_code == 401
        assert error_body(anonymous)["code"] == "unauthorized"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = c.post(
            "/v1/recommendations",
            json={"count": 2},
            headers={"Authorization": f"Bearer {secrets.token_urlsafe(24)}"},
        )
        assert wrong.status_code == 401
        assert error_body(wrong)["code"] == "unauthorized"
        assert keys.client not in wrong.text

        bearer = {"Authorization": f"Bearer {keys.client}"}
        ok = c.post("/v1/recommendations", json={"user_id": "u001", "count": 2}, headers=bearer)
        assert ok.status_code == 200 and len(ok.json()["items"]) == 2
        header = c.get("/v1/items/alien-1979", headers={"X-API-Key": keys.client})
        assert header.status_code == 200

        for method, path in [
            ("GET", f"/v1/runs/{uuid.uuid4().hex}/stream"),
            ("POST", f"/v1/runs/{uuid.uuid4().hex}/cancel"),
            ("POST", "/v1/sessions"),
            ("GET", "/v1/users/u001/memories"),
        ]:
            refused = c.request(method, path, json={} if method == "POST" else None)
            assert refused.status_code == 401, (method, path)
            assert error_body(refused)["code"] == "unauthorized"

        forbidden = c.delete("/v1/users/x", headers=bearer)
        assert forbidden.status_code == 403
        assert error_body(forbidden)["code"] == "forbidden"
        admin = c.delete("/v1/users/x", headers={"X-API-Key": keys.admin})
        assert admin.status_code == 200 and admin.json()["user_id"] == "x"


def test_the_rate_limit_counts_per_key(servers: Servers) -> None:
    keys = servers.keys
    with servers.secured.client(headers={"X-API-Key": keys.limited}) as c:
        statuses = [c.get("/v1/items/alien-1979").status_code for _ in range(RATE_LIMIT)]
        assert statuses == [200] * RATE_LIMIT
        refused = c.get("/v1/items/alien-1979")
        assert refused.status_code == 429
        assert error_body(refused)["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60 // RATE_LIMIT
        assert refused.headers["x-ratelimit-limit"] == str(RATE_LIMIT)
        other = c.get("/v1/items/alien-1979", headers={"X-API-Key": keys.admin})
        assert other.status_code == 200  # another key has its own budget


# -- limits and operations ------------------------------------------------------------------
def test_a_body_over_the_limit_is_a_413(client: httpx.Client) -> None:
    padding = "x" * (1_100_000)
    response = client.post(
        "/v1/recommendations",
        json={"user_id": "u001", "query": padding},
    )
    assert response.status_code == 413
    error = error_body(response)
    assert error["code"] == "payload_too_large"
    assert error["details"]["max_bytes"] < len(padding)


def test_a_chunked_body_over_the_limit_is_a_413(client: httpx.Client) -> None:
    """No Content-Length: the server counts the body while reading it."""

    def body() -> Iterator[bytes]:
        yield b'{"user_id": "u001", "query": "'
        for _ in range(20):
            yield b"x" * 60_000
        yield b'"}'

    response = client.post(
        "/v1/recommendations", content=body(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert error_body(response)["code"] == "payload_too_large"


def test_a_chat_message_over_4000_characters_is_a_422(client: httpx.Client) -> None:
    session_id = client.post("/v1/sessions", json={"user_id": "u030"}).json()["session_id"]
    response = client.post(f"/v1/sessions/{session_id}/messages", json={"message": "a" * 4001})
    assert response.status_code == 422
    error = error_body(response)
    assert error["details"][0]["field"] == "body.message"
    at_limit = "funny " * 666 + "film"
    assert len(at_limit) == 4000
    with client.stream(
        "POST", f"/v1/sessions/{session_id}/messages", json={"message": at_limit}
    ) as stream:
        assert stream.status_code == 200
        events = events_of(read_sse(stream))
    assert events[-1]["type"] == "run_finished"
    turns = client.get(f"/v1/sessions/{session_id}").json()["turns"]
    assert [t["text"] for t in turns if t["role"] == "user"] == [at_limit]


def test_readiness_and_health(client: httpx.Client) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "degraded": [],
        "checks": {"redis": "ok", "chroma": "ok"},
    }
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/healthz").json() == {"status": "ok"}
    report = client.get("/health/dependencies")
    assert report.status_code == 200
    assert report.json()["status"] == "ok"
    assert set(report.json()["dependencies"]) == {"redis", "chroma"}


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels` (prometheus_client's
    parser reads the exposition text)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def test_metrics_count_requests_runs_and_events(client: httpx.Client) -> None:
    before = client.get("/metrics")
    assert before.status_code == 200
    assert "agentrec_http_requests" in before.text
    for _ in range(3):
        client.get("/v1/items/no-such-item-1999")
    user = new_user()
    shown = ids(recommend(client, user_id=user, count=2))
    like = event("like", shown[0], user_id=user)
    post_events(client, [like, event("like", "no-such-item-1999", user_id=user)])
    post_events(client, [like])
    after = client.get("/metrics").text

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before.text, name, **labels)

    requests = "agentrec_http_requests_total"
    assert grew(requests, route="/v1/items/{item_id}", status="404") == 3
    assert grew(requests, route="/v1/recommendations", status="200") == 1
    assert grew(requests, route="/v1/events", status="202") == 2
    assert grew("agentrec_runs_total", task="recommend", status="success") == 1
    assert grew("agentrec_feedback_events_total", status="stored") == 1
    assert grew("agentrec_feedback_events_total", status="rejected") == 1
    assert grew("agentrec_feedback_events_total", status="duplicate") == 1


def test_forgetting_a_user_removes_their_memories(client: httpx.Client) -> None:
    user = new_user()
    shown = ids(recommend(client, user_id=user, count=3))
    post_events(
        client,
        [
            event("like", shown[0], user_id=user),
            event("dislike", shown[1], user_id=user),
            event("rating", shown[2], user_id=user, value=5),
        ],
    )
    session_id = client.post("/v1/sessions", json={"user_id": user}).json()["session_id"]
    with client.stream(
        "POST", f"/v1/sessions/{session_id}/messages", json={"message": "I love westerns"}
    ) as stream:
        assert stream.status_code == 200
        assert events_of(read_sse(stream))[-1]["type"] == "run_finished"
    before = client.get(f"/v1/users/{user}/memories").json()
    assert len(before["memories"]) >= 4  # three opinions and the stated preference
    assert before["excluded_item_ids"] == [shown[1]] and before["events"] == 3

    deleted = client.delete(f"/v1/users/{user}")
    assert deleted.status_code == 200
    body = deleted.json()
    assert body["user_id"] == user
    assert body["deleted"]["memories"] == len(before["memories"])
    assert body["deleted"]["sessions"] == 1

    after = client.get(f"/v1/users/{user}/memories").json()
    assert after["memories"] == [] and after["excluded_item_ids"] == []
    assert after["feedback_item_ids"] == [] and after["events"] == 0 and after["profile"] == {}
    gone = client.get(f"/v1/sessions/{session_id}")
    assert gone.status_code == 404
    assert shown[1] in ids(recommend(client, user_id=user, count=3))  # the dislike is gone too
