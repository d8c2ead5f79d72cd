"""Model names and token usage out of whatever shape a provider integration reports them in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.usage import Usage, count, from_usage_metadata, is_mapping


def is_sequence(value: Any) -> bool:
    """`isinstance(value, Sequence)`, likewise fast for lists and tuples."""
    return type(value) is list or type(value) is tuple or isinstance(value, Sequence)


_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name", "azure_deployment")


def model_at_start(serialized: Any, metadata: Any, invocation_params: Any) -> str | None:
    """The model named by LangChain's tracing metadata, the call's parameters, or the model's constructor arguments."""
    if is_mapping(metadata):
        name = metadata.get("ls_model_name")
        if isinstance(name, str) and name:
            return name
    name = _first_model_key(invocation_params)
    if name is None and is_mapping(serialized):
        name = _first_model_key(serialized.get("kwargs"))
    return name


def model_at_end(response: Any) -> str | None:
    """The model the provider says answered (used when nothing was known at start)."""
    name = _first_model_key(getattr(response, "llm_output", None))
    if name is not None:
        return name
    for generation in _first_generations(response):
        message = getattr(generation, "message", None)
        name = _first_model_key(getattr(message, "response_metadata", None)) or _first_model_key(
            getattr(generation, "generation_info", None)
        )
        if name is not None:
            return name
    return None


def _first_model_key(mapping: Any) -> str | None:
    if is_mapping(mapping):
        for key in _MODEL_KEYS:
            value = mapping.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def usage_of(response: Any) -> Usage | None:
    """Token usage of an `LLMResult`, or None when the provider reported none.

    Order: each prompt's `AIMessage.usage_metadata` (also what streaming aggregates into the final message), then the
    provider's `llm_output`, then per-generation `generation_info`. Within one prompt only the first generation's usage
    counts: with n > 1 choices integrations attach the same call-level usage to every choice.
    """
    generations = getattr(response, "generations", None) or ()
    total: Usage | None = None
    for choices in generations:
        for generation in choices or ():
            usage = from_usage_metadata(getattr(getattr(generation, "message", None), "usage_metadata", None))
            if usage is not None:
                total = usage if total is None else _sum(total, usage)
                break
    if total is not None:
        return total
    llm_output = getattr(response, "llm_output", None)
    if is_mapping(llm_output):
        for key in ("token_usage", "usage", "usage_metadata"):
            usage = _from_provider_usage(llm_output.get(key))
            if usage is not None:
                return usage
    for choices in generations:
        for generation in choices or ():
            info = getattr(generation, "generation_info", None)
            if is_mapping(info):
                usage = _from_generation_info(info)
                if usage is not None:
                    total = usage if total is None else _sum(total, usage)
                    break
    return total


def _sum(a: Usage, b: Usage) -> Usage:
    a.add(b)
    return a


def _first_generations(response: Any) -> tuple[Any, ...]:
    generations = getattr(response, "generations", None)
    if generations and generations[0]:
        return tuple(generations[0])
    return ()


def _from_provider_usage(usage: Any) -> Usage | None:
    """OpenAI-style (prompt/completion + details), Anthropic-style (input/output + cache counts, exclusive) or standard."""
    if not is_mapping(usage):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        prompt_details = prompt_details if is_mapping(prompt_details) else {}
        completion_details = completion_details if is_mapping(completion_details) else {}
        return Usage(
            prompt=count(usage.get("prompt_tokens")),
            completion=count(usage.get("completion_tokens")),
            cache_read=count(prompt_details.get("cached_tokens")),
            reasoning=count(completion_details.get("reasoning_tokens")),
            input_audio=count(prompt_details.get("audio_tokens")),
            output_audio=count(completion_details.get("audio_tokens")),
        )
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        cache_read = count(usage.get("cache_read_input_tokens"))
        cache_creation = count(usage.get("cache_creation_input_tokens"))
        by_ttl = usage.get("cache_creation")
        return Usage(
            prompt=count(usage.get("input_tokens")) + cache_read + cache_creation,
            completion=count(usage.get("output_tokens")),
            cache_read=cache_read,
            cache_creation=cache_creation,
            cache_creation_1h=count(by_ttl.get("ephemeral_1h_input_tokens")) if is_mapping(by_ttl) else 0,
        )
    return from_usage_metadata(usage)


def _from_generation_info(info: Mapping[str, Any]) -> Usage | None:
    for key in ("usage_metadata", "usage", "token_usage"):
        usage = _from_provider_usage(info.get(key))
        if usage is not None:
            return usage
    if "prompt_eval_count" in info or "eval_count" in info:  # Ollama
        return Usage(prompt=count(info.get("prompt_eval_count")), completion=count(info.get("eval_count")))
    return None
