"""The OpenAI-compatible fake LLM server, under the name the tests import it by.

It lives in `benchmarks.fake_openai` (a module outside the tests: `benchmarks.llm_cost`
runs it too); see that module's docstring.
"""

from benchmarks.fake_openai import (
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    Responder,
    _pieces,
    answer_by_schema,
    answer_schema_with,
    count_tokens,
)

__all__ = [
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "Responder",
    "_pieces",
    "answer_by_schema",
    "answer_schema_with",
    "count_tokens",
]
