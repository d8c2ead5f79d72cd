"""The feedback API fuzzed against its own OpenAPI schema with schemathesis: valid and invalid bodies, odd
headers, every documented route; whatever comes in, no answer is a 5xx."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from langchain_llmmonitor.core.records import InvocationRecord
from langchain_llmmonitor.feedback import FeedbackRecorder, api
from langchain_llmmonitor.feedback.tokens import FeedbackTokens
from langchain_llmmonitor.storage.store import Store

RUN = "6f1c5d3e-8a4b-4c2d-9e0f-1a2b3c4d5e6f"
_directory = tempfile.TemporaryDirectory(prefix="llmmonitor-fuzz-")


def _app(*, tokens: FeedbackTokens | None) -> object:
    """The app over a store holding one run, so that some generated ids are found and their ratings stored."""
    store = Store(Path(_directory.name) / f"fuzz-{tokens is not None}.db")
    run = InvocationRecord(
        run_id=RUN,
        trace_id=RUN,
        request_id="req-1",
        name="rag",
        status="success",
        started_at=datetime(2026, 11, 30, tzinfo=UTC),
        latency_s=1.0,
    )
    store.add_invocations([run])
    recorder = FeedbackRecorder(store, registry=CollectorRegistry())
    return api.create_app(recorder=recorder, registry=CollectorRegistry(), tokens=tokens, require_token=False)


anonymous = schemathesis.openapi.from_asgi("/openapi.json", _app(tokens=None))
tokened = schemathesis.openapi.from_asgi("/openapi.json", _app(tokens=FeedbackTokens("k" * 32)))
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@anonymous.parametrize()
@FUZZ
def test_no_input_makes_the_anonymous_api_fail(case: schemathesis.Case) -> None:
    """Any body or header the schema's fuzzer makes, its ids pointed at the stored run so that ratings are recorded
    (with any comment, source and feedback id): the answer is below 500."""
    if isinstance(case.body, dict):
        for key, known in (("run_id", RUN), ("request_id", "req-1")):
            if isinstance(case.body.get(key), str):
                case.body[key] = known
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])


@pytest.mark.slow
@tokened.parametrize()
@FUZZ
def test_no_input_makes_the_tokened_api_fail(case: schemathesis.Case) -> None:
    """The same with token checks on: forged and malformed tokens are refused, never a 5xx."""
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])
