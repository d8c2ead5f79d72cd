"""The handler never raises into the chain: a failing field loses that field only, and a failure that repeats on every
event is counted every time but logged at most once a minute."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_llmmonitor import Monitor

from .conftest import value

MODEL = {"kwargs": {"model_name": "gpt-4o-mini"}}


class ExplodingUsage(dict):
    """A usage mapping from a misbehaving integration: reading it raises."""

    def get(self, key: Any, default: Any = None) -> Any:
        raise RuntimeError("usage exploded")

    def __contains__(self, key: object) -> bool:
        return True


def response_with_broken_usage() -> LLMResult:
    message = AIMessage(content="hi")
    object.__setattr__(message, "usage_metadata", ExplodingUsage())
    return LLMResult(generations=[[ChatGeneration(message=message)]])


def llm_call(monitor: Monitor, response: Any) -> None:
    run_id = uuid.uuid4()
    monitor.on_chat_model_start(MODEL, [[]], run_id=run_id, parent_run_id=None)
    monitor.on_llm_end(response, run_id=run_id)


def test_a_broken_field_loses_that_field_not_the_event(monitor: Monitor, registry, logs):
    """Usage that cannot be read: the call is still counted, timed and logged; only its tokens are missing."""
    llm_call(monitor, response_with_broken_usage())
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 1
    assert value(registry, "llm_request_duration_seconds_count", model="gpt-4o-mini") == 1
    assert value(registry, "llm_usage_missing_total", model="gpt-4o-mini") == 1
    assert value(registry, "llm_invocations_total", name="llm", status="success") == 1
    assert value(registry, "llm_monitor_handler_errors_total", event="on_llm_end") == 1
    [failure] = logs.named("monitor_handler_error")
    assert (failure["callback"], failure["field"]) == ("on_llm_end", "usage_of")
    assert "usage exploded" in failure["error"]
    assert value(registry, "llm_active_requests") == 0


class UncountableDocuments(list):
    """A retriever result that is a list but cannot say its length."""

    def __len__(self) -> int:
        raise RuntimeError("no length")


def test_documents_that_cannot_be_read_lose_only_themselves(monitor: Monitor, registry, logs):
    """A root retriever whose documents raise: the call is still counted, timed and finished as an invocation."""
    run_id = uuid.uuid4()
    monitor.on_retriever_start({"name": "docs"}, "q", run_id=run_id)
    monitor.on_retriever_end(UncountableDocuments(), run_id=run_id)
    assert value(registry, "llm_retriever_requests_total", retriever="docs", status="success") == 1
    assert value(registry, "llm_retriever_duration_seconds_count", retriever="docs") == 1
    assert value(registry, "llm_invocations_total", name="docs", status="success") == 1
    [failure] = logs.named("monitor_handler_error")
    assert (failure["callback"], failure["field"]) == ("on_retriever_end", "_keep_documents")
    assert monitor.runs_in_flight == 0


def test_a_repeating_failure_is_counted_every_time_and_logged_once(monitor: Monitor, registry, logs):
    """A hundred identical failures: the metric says 100, the log has one line."""
    for _ in range(100):
        llm_call(monitor, response_with_broken_usage())
    assert value(registry, "llm_monitor_handler_errors_total", event="on_llm_end") == 100
    assert len(logs.named("monitor_handler_error")) == 1
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 100


def test_the_held_back_count_is_reported_with_the_next_line(monitor: Monitor, logs):
    """Once the interval has passed, the next line says how many were held back."""
    guard = monitor._error_log
    now = [0.0]
    guard._clock = lambda: now[0]
    for _ in range(5):
        llm_call(monitor, response_with_broken_usage())
    now[0] = 61.0
    llm_call(monitor, response_with_broken_usage())
    lines = logs.named("monitor_handler_error")
    assert [line.get("suppressed", 0) for line in lines] == [0, 4]


@pytest.mark.parametrize(
    ("event", "args", "kwargs"),
    [
        pytest.param("on_chain_end", (object(),), {"run_id": "not-a-uuid"}, id="chain-end-unknown"),
        pytest.param("on_llm_end", ("not a result",), {"run_id": uuid.uuid4()}, id="llm-end-unknown"),
        pytest.param("on_retriever_end", (None,), {"run_id": None}, id="retriever-end-none"),
        pytest.param("on_llm_new_token", (None,), {"run_id": [1, 2]}, id="unhashable-run-id"),
    ],
)
def test_any_payload_never_raises(monitor: Monitor, event: str, args: tuple, kwargs: dict):
    """Whatever a callback receives, it returns normally."""
    getattr(monitor, event)(*args, **kwargs)


@pytest.mark.parametrize(
    ("callback", "args"),
    [
        pytest.param("on_chain_start", ({}, {}), id="chain_start"),
        pytest.param("on_chain_end", ({},), id="chain_end"),
        pytest.param("on_chain_error", (RuntimeError("x"),), id="chain_error"),
        pytest.param("on_chat_model_start", (MODEL, [[]]), id="chat_model_start"),
        pytest.param("on_llm_start", (MODEL, ["hi"]), id="llm_start"),
        pytest.param("on_llm_new_token", ("tok",), id="llm_new_token"),
        pytest.param("on_llm_end", (LLMResult(generations=[]),), id="llm_end"),
        pytest.param("on_llm_error", (RuntimeError("x"),), id="llm_error"),
        pytest.param("on_retriever_start", ({}, "query"), id="retriever_start"),
        pytest.param("on_retriever_end", ([],), id="retriever_end"),
        pytest.param("on_retriever_error", (RuntimeError("x"),), id="retriever_error"),
        pytest.param("on_tool_start", ({}, "input"), id="tool_start"),
        pytest.param("on_tool_end", ("output",), id="tool_end"),
        pytest.param("on_tool_error", (RuntimeError("x"),), id="tool_error"),
    ],
)
def test_every_callback_counts_its_own_failure_under_its_own_name(monitor: Monitor, registry, callback, args):
    """A run id that is not a UUID makes any callback fail inside: it returns normally and counts under its name."""
    getattr(monitor, callback)(*args, run_id="not-a-uuid", parent_run_id=None)
    assert value(registry, "llm_monitor_handler_errors_total", event=callback) == 1
