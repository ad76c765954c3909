"""LangGraph's own checkpointer conformance suite against RedisSaver on a real redis-server.

The capability report is printed in the normal pytest output (not only with -s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport

from memory.checkpointer import RedisSaver
from memory.redis_server import EmbeddedRedis


def _run_suite(url: str) -> CapabilityReport:
    @checkpointer_test(name="RedisSaver (plain Redis)")
    async def redis_saver() -> AsyncIterator[RedisSaver]:
        saver = RedisSaver.from_url(url, prefix="conformance")
        try:
            yield saver
        finally:
            await saver.aclose()
            saver.close()

    return asyncio.run(validate(redis_saver))


def test_conformance_base_capabilities(
    redis_server: EmbeddedRedis, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _run_suite(redis_server.url)
    with capsys.disabled():
        report.print_report()
        for name, result in sorted(report.results.items()):
            if result.detected:
                print(f"  {name}: {result.tests_passed} passed, {result.tests_failed} failed")
            for failure in result.failures:
                print(f"    FAILED {failure}")
    for capability in BASE_CAPABILITIES:
        result = report.results[capability.value]
        assert result.passed is True, (capability.value, result.failures)
        assert result.tests_passed > 0
    assert report.passed_all_base()
