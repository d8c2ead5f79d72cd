"""Token counts through the real provider packages, over real HTTP to local servers, as the provider reported them.

Each case is a usage shape a provider really returns and an integration really reshapes: OpenAI's flex and priority
tiers (langchain-openai prefixes the detail keys), Anthropic's cache writes split by TTL (langchain-anthropic then
reports `cache_creation` 0), and Vertex's thinking tokens reported outside `output_tokens`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_openai import ChatOpenAI

from .conftest import value
from .fakes.anthropic_server import FakeAnthropic
from .fakes.openai_server import FakeOpenAI, Reply, completion_body


def tokens(registry: Any, model: str) -> dict[str, float]:
    kinds = ("prompt", "completion", "cache_read", "cache_creation", "reasoning")
    return {kind: value(registry, "llm_tokens_total", model=model, type=kind) or 0 for kind in kinds}


# An o4-mini answer that read 40 cached prompt tokens and reasoned for 12 tokens.
O4_MINI_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 30,
    "total_tokens": 130,
    "prompt_tokens_details": {"cached_tokens": 40, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0},
}


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.mark.parametrize("tier", [pytest.param(t, id=t) for t in ("default", "flex", "priority")])
def test_openai_service_tiers_keep_cache_reads_and_reasoning(monitor, registry, openai_server, tier):
    """langchain-openai names flex/priority details `flex_cache_read`, `priority_reasoning`: counted all the same."""
    openai_server.enqueue(Reply(body=completion_body("o4-mini", O4_MINI_USAGE, service_tier=tier)))
    model = ChatOpenAI(
        model="o4-mini", base_url=openai_server.base_url, api_key="test", max_retries=0, service_tier=tier
    )
    model.invoke("Capital of France?", config={"callbacks": [monitor]})
    assert tokens(registry, "o4-mini") == {
        "prompt": 100,
        "completion": 30,
        "cache_read": 40,
        "cache_creation": 0,
        "reasoning": 12,
    }


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 64},
            {"prompt": 94, "completion": 5, "cache_read": 20, "cache_creation": 64, "reasoning": 0},
            id="cache-write-total-only",
        ),
        pytest.param(
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 20,
                "cache_creation_input_tokens": 64,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 64},
            },
            {"prompt": 94, "completion": 5, "cache_read": 20, "cache_creation": 64, "reasoning": 0},
            id="cache-write-1h",
        ),
        pytest.param(
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 400,
                "cache_creation": {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 100},
            },
            {"prompt": 410, "completion": 5, "cache_read": 0, "cache_creation": 400, "reasoning": 0},
            id="cache-write-both-ttls",
        ),
    ],
)
def test_anthropic_cache_writes_split_by_ttl_are_counted(monitor, registry, anthropic_server, usage, expected):
    """Cache writes reported per TTL (langchain-anthropic then sets `cache_creation` to 0) are still cache writes."""
    anthropic_server.enqueue(usage)
    model = ChatAnthropic(model="claude-sonnet-4-5", base_url=anthropic_server.base_url, api_key="test", max_retries=0)
    model.invoke("Capital of France?", config={"callbacks": [monitor]})
    assert tokens(registry, "claude-sonnet-4-5") == expected


@pytest.mark.parametrize(
    ("usage", "completion"),
    [
        pytest.param(
            {"input_tokens": 50, "output_tokens": 200, "total_tokens": 550, "output_token_details": {"reasoning": 300}},
            500,
            id="vertex-thinking-outside-output",
        ),
        pytest.param(
            {"input_tokens": 50, "output_tokens": 500, "total_tokens": 550, "output_token_details": {"reasoning": 300}},
            500,
            id="genai-thinking-inside-output",
        ),
        pytest.param(
            {"input_tokens": 50, "output_tokens": 20, "total_tokens": 70, "output_token_details": {"reasoning": 300}},
            320,
            id="more-reasoning-than-output",
        ),
    ],
)
def test_thinking_tokens_are_completion_tokens_once(monitor, registry, usage, completion):
    """langchain-google-vertexai leaves thoughts out of `output_tokens` (its total has them); genai puts them in."""
    run_id = uuid.uuid4()
    monitor.on_chat_model_start({"kwargs": {"model": "gemini-2.5-pro"}}, [[]], run_id=run_id, parent_run_id=None)
    message = AIMessage(content="Paris.", usage_metadata=usage)
    monitor.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]), run_id=run_id)
    counted = tokens(registry, "gemini-2.5-pro")
    assert (counted["completion"], counted["reasoning"]) == (completion, 300)
