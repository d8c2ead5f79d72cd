"""Model names and token usage out of whatever shape a provider integration reports them in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.usage import Usage


def is_mapping(value: Any) -> bool:
    """`isinstance(value, Mapping)`, without the ABC machinery for the dicts LangChain passes (this runs per event)."""
    return type(value) is dict or isinstance(value, Mapping)


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
            usage = _from_usage_metadata(getattr(getattr(generation, "message", None), "usage_metadata", None))
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


def _int(value: Any) -> int:
    """A token count as reported, or 0 for anything that is not a count (missing, negative, NaN, a bool)."""
    if type(value) is int:  # nearly always: first, and without the isinstance chain
        return value if value > 0 else 0
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value == value and value >= 0:
        return int(value)
    return 0


def _from_usage_metadata(metadata: Any) -> Usage | None:
    """LangChain's standard `UsageMetadata` (a TypedDict: plain dict at runtime), in every shape integrations fill it.

    - langchain-openai with `service_tier` flex or priority names the details `flex_cache_read`, `priority_reasoning`...
    - langchain-anthropic and langchain-aws split cache writes by TTL (`ephemeral_5m_input_tokens`,
      `ephemeral_1h_input_tokens`) and then report `cache_creation` as 0.
    - langchain-google-vertexai leaves thinking tokens out of `output_tokens` (its `total_tokens` has them): they are
      completion tokens all the same, billed at the output price.
    """
    if not is_mapping(metadata) or ("input_tokens" not in metadata and "output_tokens" not in metadata):
        return None
    usage = Usage(_int(metadata.get("input_tokens")), _int(metadata.get("output_tokens")))
    input_details = metadata.get("input_token_details")
    if input_details and is_mapping(input_details):  # most calls report no details: skip them without a lookup
        usage.cache_read = _tiered(input_details, "cache_read")
        by_ttl = _int(input_details.get("ephemeral_5m_input_tokens")) + _int(
            input_details.get("ephemeral_1h_input_tokens")
        )
        usage.cache_creation = by_ttl or _tiered(input_details, "cache_creation")
    output_details = metadata.get("output_token_details")
    if output_details and is_mapping(output_details):
        usage.reasoning = _tiered(output_details, "reasoning")
        if usage.reasoning and _reasoning_outside_output(metadata, usage):
            usage.completion += usage.reasoning
    return usage


_SERVICE_TIERS = ("flex_", "priority_")  # the prefixes langchain-openai puts on details of non-default tiers


def _tiered(details: Mapping[str, Any], key: str) -> int:
    """A detail count under its plain name or a service-tier prefix (only one of them is ever set)."""
    count = _int(details.get(key))
    for tier in _SERVICE_TIERS:
        count += _int(details.get(tier + key))
    return count


def _reasoning_outside_output(metadata: Mapping[str, Any], usage: Usage) -> bool:
    """True when the integration counted reasoning apart from `output_tokens`: the total says so, or nothing else can."""
    if usage.reasoning > usage.completion:
        return True
    total = _int(metadata.get("total_tokens"))
    return total != usage.prompt + usage.completion and total == usage.prompt + usage.completion + usage.reasoning


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
            prompt=_int(usage.get("prompt_tokens")),
            completion=_int(usage.get("completion_tokens")),
            cache_read=_int(prompt_details.get("cached_tokens")),
            reasoning=_int(completion_details.get("reasoning_tokens")),
        )
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        cache_read = _int(usage.get("cache_read_input_tokens"))
        cache_creation = _int(usage.get("cache_creation_input_tokens"))
        return Usage(
            prompt=_int(usage.get("input_tokens")) + cache_read + cache_creation,
            completion=_int(usage.get("output_tokens")),
            cache_read=cache_read,
            cache_creation=cache_creation,
        )
    return _from_usage_metadata(usage)


def _from_generation_info(info: Mapping[str, Any]) -> Usage | None:
    for key in ("usage_metadata", "usage", "token_usage"):
        usage = _from_provider_usage(info.get(key))
        if usage is not None:
            return usage
    if "prompt_eval_count" in info or "eval_count" in info:  # Ollama
        return Usage(prompt=_int(info.get("prompt_eval_count")), completion=_int(info.get("eval_count")))
    return None
