"""Shared fixtures: a monitor on its own registry with captured logs, and offline chains to drive through it."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle
from typing import Any

import pytest
import structlog
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import Monitor

USAGE = {
    "input_tokens": 120,
    "output_tokens": 30,
    "total_tokens": 150,
    "input_token_details": {"cache_read": 20},
    "output_token_details": {"reasoning": 10},
}


class UsageFakeChatModel(GenericFakeChatModel):
    """LangChain's generic fake chat model, named like a real model, reporting usage also when streaming."""

    model_name: str = "gpt-4o-mini"

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=USAGE, chunk_position="last"))


def fake_model(answer: str = "Paris is the capital of France.", **kwargs: Any) -> UsageFakeChatModel:
    return UsageFakeChatModel(messages=cycle([AIMessage(content=answer, usage_metadata=USAGE)]), **kwargs)


class LogRecorder:
    """A structlog logger whose events are kept in a list."""

    def __init__(self) -> None:
        self.capture = structlog.testing.LogCapture()
        self.logger = structlog.wrap_logger(structlog.ReturnLogger(), processors=[self.capture])

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.capture.entries

    def named(self, event: str) -> list[dict[str, Any]]:
        return [entry for entry in self.events if entry["event"] == event]


@pytest.fixture(autouse=True)
def _no_real_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real OpenAI or LangSmith with a developer's own keys; those that need one start a local fake."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_TRACING",
                 "LANGCHAIN_TRACING_V2", "LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def logs() -> LogRecorder:
    return LogRecorder()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def monitor(registry: CollectorRegistry, logs: LogRecorder) -> Monitor:
    return Monitor(registry=registry, logger=logs.logger)


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float:
    """A sample's value, 0 when absent (a counter never incremented)."""
    return registry.get_sample_value(metric, labels) or 0.0
