"""Structured log events: what they carry, whose configuration they follow, and what they never contain."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.prompts import ChatPromptTemplate

from langchain_llmmonitor import Monitor
from langchain_llmmonitor.core.text import scrub

from .conftest import fake_model, value

PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])
SECRET = "sk-proj-Abc123Def456Ghi789Jkl012"


def test_llm_call_and_invocation_events_carry_ids_latency_tokens_and_cost(monitor, logs):
    """Each LLM call and each root invocation is one event with run id, trace id, model, latency, tokens and cost."""
    (PROMPT | fake_model()).with_config(run_name="qa").invoke({"question": "x"}, config={"callbacks": [monitor]})
    (call,) = logs.named("llm_call")
    (invocation,) = logs.named("invocation")
    assert call["model"] == "gpt-4o-mini" and call["status"] == "success"
    assert call["prompt_tokens"] == 120 and call["completion_tokens"] == 30
    assert call["cost_usd"] > 0 and call["latency_s"] >= 0
    assert call["trace_id"] == invocation["run_id"] == invocation["trace_id"]
    assert invocation["name"] == "qa" and invocation["llm_calls"] == 1
    assert invocation["cost_usd"] == call["cost_usd"]


def test_default_logger_follows_the_applications_structlog_configuration():
    """Without a logger argument, events go wherever the application configured structlog."""
    monitor = Monitor()
    with structlog.testing.capture_logs() as captured:
        fake_model().invoke("x", config={"callbacks": [monitor]})
    assert [event["event"] for event in captured] == ["llm_call", "invocation"]


def test_logger_filtering_out_info_still_gets_every_warning(registry):
    """With a structlog logger set to WARNING, successes log nothing (and build nothing) while failures still log."""
    import io

    sink = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.WriteLogger(sink),
        wrapper_class=structlog.make_filtering_bound_logger(30),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    )
    monitor = Monitor(registry=registry, logger=logger, sample_rate=0.0)
    fake_model().invoke("fine", config={"callbacks": [monitor]})
    with pytest.raises(PermissionError):
        LeakyModel(messages=iter([])).invoke("broken", config={"callbacks": [monitor]})
    fake_model().invoke("fine again", config={"callbacks": [monitor]})
    events = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [(event["event"], event["level"]) for event in events] == [
        ("llm_call", "warning"),
        ("invocation", "warning"),
    ]
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 2


class LeakyModel(GenericFakeChatModel):
    """A model whose parameters and error message contain an API key, as careless integrations do."""

    model_name: str = "gpt-4o"
    api_key: str = SECRET

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(f"Incorrect API key provided: {SECRET}. Authorization: Bearer {SECRET}; api_key={SECRET}")

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "api_key": self.api_key}


def test_no_api_key_ever_reaches_the_logs(monitor, logs):
    """Keys in invocation params and in provider error messages are never logged."""
    with pytest.raises(PermissionError):
        (PROMPT | LeakyModel(messages=iter(()))).invoke({"question": "x"}, config={"callbacks": [monitor]})
    rendered = json.dumps(logs.events, default=str)
    assert "Abc123Def456" not in rendered
    assert "[REDACTED]" in rendered
    assert logs.named("llm_call")[0]["error"].startswith("PermissionError: Incorrect API key provided")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"key {SECRET} here", id="openai-key"),
        pytest.param("lsv2_pt_0123456789abcdef0123", id="langsmith-key"),
        pytest.param("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", id="bearer"),
        pytest.param('{"api_key": "abcd1234secret"}', id="json-api_key"),
        pytest.param("password=hunter22", id="password"),
        pytest.param("AIzaSyA-0123456789abcdefghijklmnopqrs", id="google-key"),
    ],
)
def test_scrub_removes_credentials(text):
    """Anything shaped like a credential is replaced."""
    scrubbed = scrub(text)
    assert "[REDACTED]" in scrubbed
    assert not any(
        part in scrubbed for part in ("Abc123", "0123456789abcdef", "eyJhbGci", "abcd1234", "hunter22", "AIzaSy")
    )


@pytest.mark.parametrize(
    "text", [pytest.param("max_tokens=100 exceeded", id="max_tokens"), pytest.param("rate limit: 600 rpm", id="plain")]
)
def test_scrub_keeps_ordinary_text(text):
    """Ordinary diagnostic text is left alone."""
    assert scrub(text) == text


def test_a_broken_logger_never_breaks_the_chain(registry):
    """If logging itself fails, the chain still answers and the failure is counted."""

    class BrokenLogger:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> None:
                raise OSError("disk full")

            return fail

    monitor = Monitor(registry=registry, logger=BrokenLogger())
    assert (PROMPT | fake_model()).invoke({"question": "x"}, config={"callbacks": [monitor]}).content
    assert value(registry, "llm_monitor_handler_errors_total", event="on_llm_end") == 1
    assert value(registry, "llm_monitor_handler_errors_total", event="on_chain_end") == 1
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 1
    assert value(registry, "llm_active_requests") == 0
