"""Shared fixtures: a monitor on its own registry with captured logs, and offline chains to drive through it."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import Monitor
from langchain_llmmonitor.testing import LogCapture, metric_value

USAGE = {
    "input_tokens": 120,
    "output_tokens": 30,
    "total_tokens": 150,
    "input_token_details": {"cache_read": 20},
    "output_token_details": {"reasoning": 10},
}

# The names the suite imports from here, kept since the helpers moved to `langchain_llmmonitor.testing`.
LogRecorder = LogCapture
value = metric_value


class UsageFakeChatModel(GenericFakeChatModel):
    """LangChain's generic fake chat model, named like a real model, reporting usage also when streaming."""

    model_name: str = "gpt-4o-mini"

    def _stream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(messages, stop=stop, run_manager=run_manager, **kwargs)
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=USAGE, chunk_position="last"))


def fake_model(answer: str = "Paris is the capital of France.", **kwargs: Any) -> UsageFakeChatModel:
    return UsageFakeChatModel(messages=cycle([AIMessage(content=answer, usage_metadata=USAGE)]), **kwargs)


@pytest.fixture(autouse=True)
def _no_real_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real OpenAI or LangSmith with a developer's own keys; those that need one start a local fake."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "LANGSMITH_API_KEY",
        "LANGCHAIN_API_KEY",
        "LANGSMITH_TRACING",
        "LANGCHAIN_TRACING_V2",
        "LANGSMITH_ENDPOINT",
        "LANGCHAIN_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def logs() -> LogCapture:
    return LogCapture()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def monitor(registry: CollectorRegistry, logs: LogCapture) -> Monitor:
    return Monitor(registry=registry, logger=logs.logger)
