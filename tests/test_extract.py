"""Model names and token usage across the shapes providers report them in."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult

from langchain_llmmonitor.core.usage import Usage
from langchain_llmmonitor.handler.extract import model_at_end, model_at_start, usage_of


@pytest.mark.parametrize(
    ("serialized", "metadata", "params", "expected"),
    [
        pytest.param({}, {"ls_model_name": "gpt-4o"}, {"model": "other"}, "gpt-4o", id="ls_model_name-wins"),
        pytest.param({}, {}, {"model": "claude-sonnet-4-5"}, "claude-sonnet-4-5", id="invocation-model"),
        pytest.param({}, {}, {"model_name": "gpt-4.1"}, "gpt-4.1", id="invocation-model_name"),
        pytest.param(
            {},
            {},
            {"model_id": "anthropic.claude-3-5-sonnet-20240620-v1:0"},
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            id="bedrock-model_id",
        ),
        pytest.param({"kwargs": {"model_name": "gpt-3.5-turbo"}}, None, None, "gpt-3.5-turbo", id="serialized-kwargs"),
        pytest.param({"kwargs": {"model": 42}}, {"ls_model_name": ""}, {"model": None}, None, id="nothing-usable"),
        pytest.param(None, None, None, None, id="all-missing"),
    ],
)
def test_model_at_start(serialized, metadata, params, expected):
    """The model comes from ls_model_name, then invocation params, then serialized kwargs."""
    assert model_at_start(serialized, metadata, params) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(
            LLMResult(generations=[[]], llm_output={"model_name": "gpt-4o-2024-08-06"}),
            "gpt-4o-2024-08-06",
            id="llm_output",
        ),
        pytest.param(
            LLMResult(
                generations=[[ChatGeneration(message=AIMessage(content="x", response_metadata={"model": "llama3.1"}))]]
            ),
            "llama3.1",
            id="response_metadata",
        ),
        pytest.param(
            LLMResult(generations=[[Generation(text="x", generation_info={"model": "mistral"})]]),
            "mistral",
            id="generation_info",
        ),
        pytest.param(LLMResult(generations=[]), None, id="empty"),
        pytest.param("not a result", None, id="garbage"),
    ],
)
def test_model_at_end(response, expected):
    """The provider's own model name is found in llm_output or the message metadata."""
    assert model_at_end(response) == expected


def chat(usage_metadata=None, **message_kwargs) -> ChatGeneration:
    return ChatGeneration(message=AIMessage(content="x", usage_metadata=usage_metadata, **message_kwargs))


STANDARD = {"input_tokens": 100, "output_tokens": 40, "total_tokens": 140}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(LLMResult(generations=[[chat(STANDARD)]]), Usage(prompt=100, completion=40), id="usage_metadata"),
        pytest.param(
            LLMResult(
                generations=[
                    [
                        chat(
                            {
                                **STANDARD,
                                "input_token_details": {"cache_read": 60, "cache_creation": 10},
                                "output_token_details": {"reasoning": 25},
                            }
                        )
                    ]
                ]
            ),
            Usage(prompt=100, completion=40, cache_read=60, cache_creation=10, reasoning=25),
            id="usage_metadata-details",
        ),
        pytest.param(
            LLMResult(
                generations=[
                    [
                        chat(
                            {
                                "input_tokens": 300,
                                "output_tokens": 90,
                                "total_tokens": 390,
                                "input_token_details": {"audio": 200, "cache_read": 50},
                                "output_token_details": {"audio": 60},
                            }
                        )
                    ]
                ]
            ),
            Usage(prompt=300, completion=90, cache_read=50, input_audio=200, output_audio=60),
            id="openai-audio",
        ),
        pytest.param(
            LLMResult(
                generations=[
                    [
                        chat(
                            {
                                "input_tokens": 100,
                                "output_tokens": 40,
                                "total_tokens": 140,
                                "input_token_details": {"flex_cache_read": 30, "flex": 70},
                                "output_token_details": {"flex_reasoning": 10, "flex": 30},
                            }
                        )
                    ]
                ]
            ),
            Usage(prompt=100, completion=40, cache_read=30, reasoning=10, service_tier="flex"),
            id="openai-flex-tier-named",
        ),
        pytest.param(
            LLMResult(generations=[[chat(STANDARD), chat(STANDARD)]]),
            Usage(prompt=100, completion=40),
            id="n-choices-not-double-counted",
        ),
        pytest.param(
            LLMResult(generations=[[chat(STANDARD)], [chat(STANDARD)]]),
            Usage(prompt=200, completion=80),
            id="two-prompts-summed",
        ),
        pytest.param(
            LLMResult(
                generations=[[Generation(text="x")]],
                llm_output={
                    "token_usage": {
                        "prompt_tokens": 50,
                        "completion_tokens": 7,
                        "prompt_tokens_details": {"cached_tokens": 32},
                        "completion_tokens_details": {"reasoning_tokens": 3},
                    }
                },
            ),
            Usage(prompt=50, completion=7, cache_read=32, reasoning=3),
            id="openai-llm_output",
        ),
        pytest.param(
            LLMResult(
                generations=[[Generation(text="x")]],
                llm_output={
                    "usage": {
                        "input_tokens": 10,
                        "output_tokens": 5,
                        "cache_read_input_tokens": 200,
                        "cache_creation_input_tokens": 30,
                    }
                },
            ),
            Usage(prompt=240, completion=5, cache_read=200, cache_creation=30),
            id="anthropic-raw-usage-made-inclusive",
        ),
        pytest.param(
            LLMResult(
                generations=[[Generation(text="x", generation_info={"prompt_eval_count": 26, "eval_count": 298})]]
            ),
            Usage(prompt=26, completion=298),
            id="ollama-generation_info",
        ),
        pytest.param(
            LLMResult(
                generations=[[Generation(text="x")]],
                llm_output={"usage": {"input_tokens": -5, "output_tokens": "many"}},
            ),
            Usage(prompt=0, completion=0),
            id="nonsense-numbers-clamped",
        ),
        pytest.param(
            LLMResult(
                generations=[[Generation(text="x")]],
                llm_output={"usage": {"input_tokens": True, "output_tokens": float("nan")}},
            ),
            Usage(prompt=0, completion=0),
            id="bool-and-nan-are-not-counts",
        ),
        pytest.param(
            LLMResult(
                generations=[[Generation(text="x")]],
                llm_output={"usage": {"input_tokens": 12.0, "output_tokens": 3}},
            ),
            Usage(prompt=12, completion=3),
            id="whole-float-counts",
        ),
        pytest.param(LLMResult(generations=[[Generation(text="x")]]), None, id="nothing-reported"),
        pytest.param(object(), None, id="garbage"),
    ],
)
def test_usage_of(response, expected):
    """Usage is read from usage_metadata, then llm_output, then generation_info, normalised to inclusive prompt counts."""
    assert usage_of(response) == expected
