"""Load on the HTTP service: recommendations throughput and latency, streaming time to first
event, and feedback events recorded exactly once under concurrent duplicates.

    .venv/bin/python -m benchmarks.load
    .venv/bin/python -m benchmarks.load --clients 32 --duration 30 --client httpx
    .venv/bin/python -m benchmarks.load --url http://127.0.0.1:8000 --redis-url redis://...

Without `--url` it starts the real service (`agentrec serve`, offline preset, no API keys,
no rate limit) in a temporary data folder, on a redis-server it starts itself (so the event
log can be counted in Redis afterwards) and embedded Chroma, and stops both at the end.
The load client runs on the same machine: the raw asyncio client (`benchmarks.loadgen`) is
the default because it takes far less CPU per request than httpx (0.26 vs 1.3 ms per request).
The service runs this working tree's code: the JSON records the commit and whether service
code has uncommitted changes. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.loadgen import (
    Connection,
    CpuMeter,
    PhaseResult,
    SseParser,
    StatusError,
    Target,
    closed_loop,
    encode_request,
    error_kind,
    latency_figures,
    plan_batches,
)
from benchmarks.report import machine_info, write_json
from benchmarks.service import agentrec_serve, clean_env, tail

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "load.json"
DEMO_USERS = [f"u{n:03d}" for n in range(1, 301)]
EVENT_TYPES = ("like", "click", "view", "rating")
GOALS = {"requests_per_s": 100.0, "p99_ms": 500.0, "errors": 0}


class RunIncomplete(Exception):
    """A stream ended without `run_finished`, or `run_started` was not its first event."""


class RunFailed(Exception):
    """`run_finished` reported a status other than success."""


# -- the service under test ----------------------------------------------------------------


@contextmanager
def local_service(
    workdir: Path,
    workers: int = 1,
    chroma_server: bool = False,
    ready_timeout_s: float = 180.0,
    settings: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """`agentrec serve` on a free loopback port with its own redis-server (and a Chroma
    server when asked or when `workers` > 1; else Chroma is embedded); yields the URL, the
    Redis URL and the pids to meter. `settings` are extra environment variables of the
    service. Stops everything on exit (terminate, then kill)."""
    import redis

    from memory.chroma_server import EmbeddedChromaServer
    from memory.redis_server import EmbeddedRedis

    with contextlib.ExitStack() as stack:
        redis_server = stack.enter_context(EmbeddedRedis(workdir / "redis-external"))
        settings = {**(settings or {}), "REDIS_URL": redis_server.url}
        pids: dict[str, int] = {}
        if chroma_server or workers > 1:
            chroma = stack.enter_context(EmbeddedChromaServer(workdir / "chroma"))
            settings.update(CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(chroma.port))
            pids["chroma"] = chroma.pid
        env = clean_env(workdir / "data", **settings)
        service = stack.enter_context(agentrec_serve(workdir, env, workers, ready_timeout_s))
        client = redis.Redis.from_url(redis_server.url)
        pids.update(server=service.process.pid, redis=int(client.info("server")["process_id"]))
        client.close()
        yield {
            "url": service.url,
            "redis_url": redis_server.url,
            "pids": pids,
            "startup_s": service.startup_s,
            "log": service.log,
            "chroma": "server" if "chroma" in pids else "embedded",
        }


# -- recommendations -----------------------------------------------------------------------


def recommendation_body(user_id: str, count: int = 10) -> bytes:
    return json.dumps({"user_id": user_id, "count": count}).encode()


async def recommendations_load(
    target: Target,
    *,
    clients: int,
    duration_s: float,
    warmup_s: float,
    client_kind: str,
    pids: dict[str, int],
    seed: int,
    users: list[str] | None = None,
) -> tuple[dict[str, Any], set[str]]:
    """`clients` closed-loop clients on POST /v1/recommendations for `users` (the demo's by
    default). Returns the figures and the item ids seen in the answers."""
    users = users or DEMO_USERS
    path = "/v1/recommendations"
    rngs = [random.Random(seed + c) for c in range(clients)]
    item_ids: set[str] = set()
    checks: Counter[str] = Counter()

    def check(payload: dict[str, Any]) -> None:
        items = payload["items"]
        item_ids.update(item["item_id"] for item in items)
        if len(items) != 10:
            checks["answers with fewer than 10 items"] += 1
        if payload.get("fallback_used"):
            checks["fallback used"] += 1
        for name in payload.get("degraded") or []:
            checks[f"degraded: {name}"] += 1

    call: Callable[[int, int], Awaitable[None]]
    if client_kind == "raw":
        raw = [encode_request("POST", target, path, recommendation_body(u)) for u in users]
        connections = [Connection(target) for _ in range(clients)]

        async def raw_call(c: int, n: int) -> None:
            response = await connections[c].request(rngs[c].choice(raw))
            if response.status != 200:
                raise StatusError(response.status, response.body)
            check(json.loads(response.body))

        call = raw_call
        http: httpx.AsyncClient | None = None
    else:
        bodies = [recommendation_body(u) for u in users]
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        http = httpx.AsyncClient(base_url=target.url, limits=limits, timeout=60)
        headers = {"Content-Type": "application/json"}

        async def httpx_call(c: int, n: int) -> None:
            assert http is not None
            response = await http.post(path, content=rngs[c].choice(bodies), headers=headers)
            if response.status_code != 200:
                raise StatusError(response.status_code, response.content)
            check(response.json())

        call = httpx_call
    meter = CpuMeter(pids)

    async def meter_after_warmup() -> None:
        await asyncio.sleep(warmup_s)
        meter.start()

    metering = asyncio.create_task(meter_after_warmup())
    try:
        result = await closed_loop(clients, duration_s, call, warmup_s=warmup_s)
    finally:
        if http is not None:
            await http.aclose()
    await metering
    meter.stop()
    if client_kind == "raw":
        reconnects = sum(c.opened for c in connections) - clients
        checks["reconnects"] = max(reconnects, 0)
    figures = phase_figures(result)
    figures.update(
        clients=clients,
        duration_s=duration_s,
        warmup_s=warmup_s,
        client=client_kind,
        checks=dict(checks),
        cpu=meter.figures,
        client_cpu_ms_per_request=round(
            1e3 * meter.figures["load client"]["cpu_s"] / max(result.calls, 1), 3
        ),
        goals={
            "requests_per_s >= 100": figures["requests_per_s"] >= GOALS["requests_per_s"],
            "p99 <= 500 ms": figures["latency"].get("p99_ms", 1e9) <= GOALS["p99_ms"],
            "zero errors": not result.errors,
        },
    )
    return figures, item_ids


def phase_figures(result: PhaseResult) -> dict[str, Any]:
    return {
        "requests": result.calls,
        "requests_per_s": round(result.throughput, 1),
        "latency": latency_figures(result.latencies),
        "errors": dict(result.errors),
    }


# -- streams -------------------------------------------------------------------------------


async def one_stream(connection: Connection, raw: bytes) -> tuple[float, float, int]:
    """Seconds to the `run_started` frame and to `run_finished`, and the number of events."""
    start = time.perf_counter()
    parser = SseParser()
    first: float | None = None
    finished: float | None = None
    count = 0
    async for chunk in connection.stream(raw):
        for event in parser.feed(chunk):
            count += 1
            if count == 1:
                if event.event != "run_started":
                    raise RunIncomplete(f"first event is {event.event!r}, not run_started")
                first = time.perf_counter() - start
            if event.event == "run_finished":
                finished = time.perf_counter() - start
                status = json.loads(event.data).get("status")
                if status != "success":
                    raise RunFailed(f"run_finished with status {status!r}")
    if first is None or finished is None:
        raise RunIncomplete(f"the stream ended after {count} events without run_finished")
    return first, finished, count


async def streams(target: Target, total: int, clients: int, seed: int) -> dict[str, Any]:
    """`total` streams on POST /v1/recommendations/stream shared by `clients` clients."""
    rng = random.Random(seed)
    path = "/v1/recommendations/stream"
    raw = [encode_request("POST", target, path, recommendation_body(u)) for u in DEMO_USERS]
    first: list[float] = []
    finished: list[float] = []
    events: list[int] = []
    errors: Counter[str] = Counter()
    remaining = total

    async def client() -> None:
        nonlocal remaining
        connection = Connection(target)
        while remaining > 0:
            remaining -= 1
            try:
                async with asyncio.timeout(60):
                    to_first, to_finished, count = await one_stream(connection, rng.choice(raw))
            except Exception as exc:
                errors[error_kind(exc)] += 1
                continue
            first.append(to_first)
            finished.append(to_finished)
            events.append(count)
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    return {
        "streams": total,
        "clients": clients,
        "streams_per_s": round(total / wall, 1),
        "to_run_started": latency_figures(first),
        "to_run_finished": latency_figures(finished),
        "events_per_stream": round(sum(events) / len(events), 1) if events else 0,
        "errors": dict(errors),
    }


# -- feedback events -----------------------------------------------------------------------


def make_events(
    count: int, item_ids: list[str], rng: random.Random, tag: str
) -> list[dict[str, Any]]:
    """`count` distinct feedback events of the demo users; ids start with `tag`."""
    events = []
    for n in range(count):
        kind = rng.choice(EVENT_TYPES)
        event: dict[str, Any] = {
            "event_id": f"{tag}-{n:06d}",
            "type": kind,
            "user_id": rng.choice(DEMO_USERS),
            "item_id": rng.choice(item_ids),
        }
        if kind == "rating":
            event["value"] = rng.randint(1, 5)
        events.append(event)
    return events


async def send_events(
    target: Target,
    *,
    count: int,
    repeat_share: float,
    batch_size: int,
    clients: int,
    item_ids: list[str],
    pids: dict[str, int],
    seed: int,
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """POST /v1/events: `count` distinct events, `repeat_share` of them sent a second time
    in another batch, by `clients` concurrent clients. Returns figures, events and tag."""
    rng = random.Random(seed)
    tag = f"load-{uuid.uuid4().hex[:8]}"
    events = make_events(count, item_ids, rng, tag)
    repeated = rng.sample(range(count), round(count * repeat_share))
    batches = plan_batches(events, repeated, batch_size, rng)
    raw = [
        encode_request("POST", target, "/v1/events", json.dumps({"events": b}).encode())
        for b in batches
    ]
    statuses: dict[str, list[str]] = {e["event_id"]: [] for e in events}
    totals: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    inconsistent = 0
    latencies: list[float] = []
    queue = list(range(len(raw)))

    async def client() -> None:
        nonlocal inconsistent
        connection = Connection(target)
        while queue:
            index = queue.pop()
            start = time.perf_counter()
            try:
                async with asyncio.timeout(120):
                    response = await connection.request(raw[index])
                if response.status != 202:
                    raise StatusError(response.status, response.body)
            except Exception as exc:
                errors[error_kind(exc)] += 1
                continue
            latencies.append(time.perf_counter() - start)
            answer = json.loads(response.body)
            for result in answer["results"]:
                statuses[result["event_id"]].append(result["status"])
            for field in ("stored", "duplicates", "rejected"):
                totals[field] += int(answer[field])
            listed = Counter(r["status"] for r in answer["results"])
            if (listed["stored"], listed["duplicate"], listed["rejected"]) != (
                answer["stored"],
                answer["duplicates"],
                answer["rejected"],
            ):
                inconsistent += 1
        connection.close()

    with CpuMeter(pids) as meter:
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - started
    sends = sum(len(b) for b in batches)
    stored_once = sum(1 for s in statuses.values() if s.count("stored") == 1)
    repeats_ok = sum(
        1 for i in repeated if sorted(statuses[events[i]["event_id"]]) == ["duplicate", "stored"]
    )
    figures = {
        "distinct_events": count,
        "sent_twice": len(repeated),
        "sends": sends,
        "batches": len(batches),
        "batch_size": batch_size,
        "clients": clients,
        "wall_s": round(wall, 2),
        "events_per_s": round(sends / wall, 1),
        "distinct_events_per_s": round(count / wall, 1),
        "batch_latency": latency_figures(latencies),
        "errors": dict(errors),
        "answered": {
            "stored": totals["stored"],
            "duplicates": totals["duplicates"],
            "rejected": totals["rejected"],
            "batches whose counts disagree with their results": inconsistent,
        },
        "events stored exactly once": stored_once,
        "repeated events answered stored + duplicate": repeats_ok,
        "cpu": meter.figures,
    }
    figures["exactly_once_answers"] = (
        totals["stored"] == count
        and totals["duplicates"] == len(repeated)
        and totals["rejected"] == 0
        and stored_once == count
        and repeats_ok == len(repeated)
        and not errors
        and not inconsistent
    )
    return figures, events, tag


def count_logged_events(redis_url: str, events: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    """The events of this run in every demo user's Redis event log, against what was sent."""
    import redis

    from memory.short_term import ShortTermMemory

    client = redis.Redis.from_url(redis_url)
    memory = ShortTermMemory(client)
    expected = Counter(e["user_id"] for e in events)
    logged_ids: list[str] = []
    users_off = 0
    for user in DEMO_USERS:
        ids = [
            str(e.get("event_id"))
            for e in memory.user_events(user)
            if str(e.get("event_id", "")).startswith(tag)
        ]
        logged_ids += ids
        users_off += len(ids) != expected[user]
    client.close()
    return {
        "logged": len(logged_ids),
        "distinct_logged": len(set(logged_ids)),
        "users whose count differs": users_off,
        "exactly_once_in_redis": len(logged_ids) == len(set(logged_ids)) == len(events)
        and users_off == 0,
    }


# -- the whole benchmark -------------------------------------------------------------------


async def fill_item_ids(target: Target, item_ids: set[str], wanted: int = 100) -> None:
    """More catalog ids, from count-50 recommendations, if the load saw fewer than `wanted`."""
    connection = Connection(target)
    for user in DEMO_USERS:
        if len(item_ids) >= wanted:
            break
        raw = encode_request("POST", target, "/v1/recommendations", recommendation_body(user, 50))
        response = await connection.request(raw)
        if response.status == 200:
            item_ids.update(i["item_id"] for i in json.loads(response.body)["items"])
    connection.close()


async def smoke(target: Target) -> None:
    """Fail fast, with the answer, if the API is not there yet."""
    connection = Connection(target)
    raw = encode_request("POST", target, "/v1/recommendations", recommendation_body("u001"))
    response = await connection.request(raw)
    connection.close()
    if response.status != 200:
        raise SystemExit(f"POST /v1/recommendations answered {response.status}: {response.body!r}")


async def run_all(
    args: argparse.Namespace, url: str, redis_url: str | None, pids: dict[str, int]
) -> dict[str, Any]:
    target = Target.from_url(url)
    await smoke(target)
    figures: dict[str, Any] = {}
    item_ids: set[str] = set()
    if "recommendations" in args.phases:
        print(f"recommendations: {args.clients} clients, {args.duration:.0f} s ({args.client})")
        figures["recommendations"], item_ids = await recommendations_load(
            target,
            clients=args.clients,
            duration_s=args.duration,
            warmup_s=args.warmup,
            client_kind=args.client,
            pids=pids,
            seed=args.seed,
        )
    if "streams" in args.phases:
        print(f"streams: {args.streams} sequential, {args.streams} by {args.stream_clients}")
        figures["streams"] = {
            "sequential": await streams(target, args.streams, 1, args.seed),
            "concurrent": await streams(target, args.streams, args.stream_clients, args.seed + 1),
        }
    if "events" in args.phases:
        await fill_item_ids(target, item_ids)
        print(f"events: {args.events} distinct on {len(item_ids)} items, {args.clients} clients")
        events_figures, events, tag = await send_events(
            target,
            count=args.events,
            repeat_share=args.repeat_share,
            batch_size=args.batch,
            clients=args.clients,
            item_ids=sorted(item_ids),
            pids=pids,
            seed=args.seed,
        )
        if redis_url:
            events_figures["redis_event_log"] = count_logged_events(redis_url, events, tag)
        else:
            events_figures["redis_event_log"] = "not checked (give --redis-url)"
        figures["events"] = events_figures
    return figures


def print_table(result: dict[str, Any]) -> None:
    print()
    if "recommendations" in result:
        print_recommendations(result["recommendations"])
    for name, figures in result.get("streams", {}).items():
        first, finished = figures["to_run_started"], figures["to_run_finished"]
        print(
            f"{'stream, ' + name + ' (' + str(figures['clients']) + ' clients)':40} "
            f"run_started p50 {first.get('p50_ms', 0):.1f} p99 {first.get('p99_ms', 0):.1f} ms; "
            f"run_finished p50 {finished.get('p50_ms', 0):.1f} p99 "
            f"{finished.get('p99_ms', 0):.1f} ms; errors {figures['errors'] or 'none'}"
        )
    if "events" in result:
        ev = result["events"]
        print(
            f"{'POST /v1/events':40} {ev['events_per_s']:8.1f} events/s "
            f"(batch p50 {ev['batch_latency'].get('p50_ms', 0):.1f} ms, "
            f"p99 {ev['batch_latency'].get('p99_ms', 0):.1f} ms)"
        )
        print(f"{'  answers':40} {ev['answered']}; exactly once: {ev['exactly_once_answers']}")
        print(f"{'  Redis event log':40} {ev['redis_event_log']}")


def print_recommendations(rec: dict[str, Any]) -> None:
    lat = rec["latency"]
    print(f"{'POST /v1/recommendations':40} {rec['requests_per_s']:8.1f} req/s")
    print(
        f"{'  latency ms p50 / p90 / p99 / max':40} {lat.get('p50_ms', 0):8.1f} "
        f"{lat.get('p90_ms', 0):8.1f} {lat.get('p99_ms', 0):8.1f} {lat.get('max_ms', 0):8.1f}"
    )
    print(f"{'  errors':40} {rec['errors'] or 'none'}")
    print(f"{'  goals':40} {rec['goals']}")
    cpu = ", ".join(f"{k} {v['cores']:.2f}" for k, v in rec["cpu"].items() if " child " not in k)
    print(f"{'  CPU (cores busy)':40} {cpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Target a running service instead of starting one.")
    parser.add_argument("--redis-url", help="With --url: the service's Redis, to count events.")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="Measured seconds.")
    parser.add_argument("--warmup", type=float, default=5.0, help="Seconds not counted.")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--stream-clients", type=int, default=8)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat-share", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--phases",
        type=lambda text: set(text.split(",")),
        default={"recommendations", "streams", "events"},
        help="Comma-separated subset of recommendations,streams,events (default: all).",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of the started service."
    )
    parser.add_argument(
        "--chroma-server",
        action="store_true",
        help="Run Chroma as a server (`chroma run`), not embedded (implied by --workers > 1).",
    )
    parser.add_argument("--server-pid", type=int, help="With --url: the server's pid, to meter.")
    parser.add_argument(
        "--code-note", help="Where the service code comes from, if not this git checkout."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    _use_uvloop()
    load_before = [round(x, 2) for x in os.getloadavg()]
    code = args.code_note or code_version()
    service: dict[str, Any] = {"url": args.url, "started_here": args.url is None}
    if args.url:
        pids = {"server": args.server_pid} if args.server_pid else {}
        figures = asyncio.run(run_all(args, args.url, args.redis_url, pids))
    else:
        with (
            tempfile.TemporaryDirectory(prefix="agentrec-load-") as tmp,
            local_service(Path(tmp), args.workers, args.chroma_server) as local,
        ):
            service.update(
                url=local["url"],
                startup_s=local["startup_s"],
                workers=args.workers,
                chroma=local["chroma"],
            )
            try:
                figures = asyncio.run(
                    run_all(args, local["url"], local["redis_url"], local["pids"])
                )
            except BaseException:
                print(tail(local["log"]), file=sys.stderr)
                raise
    result = {
        "machine": {
            **machine_info(),
            "load_average_1_5_15_min": {
                "before": load_before,
                "after": [round(x, 2) for x in os.getloadavg()],
            },
        },
        "command": " ".join(["python -m benchmarks.load", *sys.argv[1:]]),
        "code": code,
        "service": service,
        "load_client": "raw asyncio HTTP/1.1 keep-alive (benchmarks.loadgen)"
        if args.client == "raw"
        else "one shared httpx.AsyncClient",
        "event_loop": asyncio.get_event_loop_policy().__class__.__module__.split(".")[0],
        **figures,
    }
    print_table(result)
    write_json(args.out, result)


def code_version() -> dict[str, Any] | str:
    """The commit the service code comes from, and whether the working tree changes it (the
    service runs the working tree, not the commit)."""
    service_code = ["app", "agents", "graphs", "tools", "memory", "core", "recdata", "configs"]
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "diff", "--quiet", "HEAD", "--", *service_code],
            capture_output=True,
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return {"commit": commit, "uncommitted_service_changes": dirty != 0}


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


if __name__ == "__main__":
    main()
