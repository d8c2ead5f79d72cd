"""Token usage of one LLM call, in the shape LangChain's `usage_metadata` reports it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Usage:
    """Tokens of one LLM call, by type.

    `prompt` includes `cache_read`, `cache_creation` and `input_audio`; `cache_creation` includes `cache_creation_1h`
    (writes kept for an hour, priced higher); `completion` includes `reasoning` and `output_audio`. `service_tier` is
    the OpenAI tier that served a flex or priority call (priced apart), None otherwise.
    """

    prompt: int = 0
    completion: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0
    cache_creation_1h: int = 0
    input_audio: int = 0
    output_audio: int = 0
    service_tier: str | None = None

    def add(self, other: Usage) -> None:
        """Sum the counts (a trace's total over its calls; the tier is per call and not summed)."""
        self.prompt += other.prompt
        self.completion += other.completion
        self.cache_read += other.cache_read
        self.cache_creation += other.cache_creation
        self.reasoning += other.reasoning
        self.cache_creation_1h += other.cache_creation_1h
        self.input_audio += other.input_audio
        self.output_audio += other.output_audio

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def is_mapping(value: Any) -> bool:
    """`isinstance(value, Mapping)`, without the ABC machinery for the dicts LangChain passes (this runs per event)."""
    return type(value) is dict or isinstance(value, Mapping)


def count(value: Any) -> int:
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


def from_usage_metadata(metadata: Any) -> Usage | None:
    """LangChain's standard `UsageMetadata` (a TypedDict: plain dict at runtime), in every shape integrations fill it.

    - langchain-openai with `service_tier` flex or priority names the details `flex_cache_read`, `priority_reasoning`...
    - langchain-anthropic and langchain-aws split cache writes by TTL (`ephemeral_5m_input_tokens`,
      `ephemeral_1h_input_tokens`) and then report `cache_creation` as 0.
    - langchain-google-vertexai leaves thinking tokens out of `output_tokens` (its `total_tokens` has them): they are
      completion tokens all the same, billed at the output price.
    """
    if not is_mapping(metadata) or ("input_tokens" not in metadata and "output_tokens" not in metadata):
        return None
    usage = Usage(count(metadata.get("input_tokens")), count(metadata.get("output_tokens")))
    input_details = metadata.get("input_token_details")
    if input_details and is_mapping(input_details):  # most calls report no details: skip them without a lookup
        usage.cache_read = _tiered(input_details, "cache_read")
        written_1h = count(input_details.get("ephemeral_1h_input_tokens"))
        by_ttl = count(input_details.get("ephemeral_5m_input_tokens")) + written_1h
        usage.cache_creation = by_ttl or _tiered(input_details, "cache_creation")
        usage.cache_creation_1h = written_1h
        usage.input_audio = count(input_details.get("audio"))
        usage.service_tier = _service_tier(input_details)
    output_details = metadata.get("output_token_details")
    if output_details and is_mapping(output_details):
        usage.reasoning = _tiered(output_details, "reasoning")
        usage.output_audio = count(output_details.get("audio"))
        if usage.reasoning and _reasoning_outside_output(metadata, usage):
            usage.completion += usage.reasoning
    return usage


_SERVICE_TIERS = ("flex_", "priority_")  # the prefixes langchain-openai puts on details of non-default tiers


def _tiered(details: Mapping[str, Any], key: str) -> int:
    """A detail count under its plain name or a service-tier prefix (only one of them is ever set)."""
    total = count(details.get(key))
    for tier in _SERVICE_TIERS:
        total += count(details.get(tier + key))
    return total


def _service_tier(input_details: Mapping[str, Any]) -> str | None:
    """The tier langchain-openai names among the details of a flex or priority call (its count is set even when 0)."""
    for tier in _SERVICE_TIERS:
        if tier[:-1] in input_details:
            return tier[:-1]
    return None


def _reasoning_outside_output(metadata: Mapping[str, Any], usage: Usage) -> bool:
    """True when the integration counted reasoning apart from `output_tokens`: the total says so, or nothing else can."""
    if usage.reasoning > usage.completion:
        return True
    total = count(metadata.get("total_tokens"))
    return total != usage.prompt + usage.completion and total == usage.prompt + usage.completion + usage.reasoning
