"""Token usage of one LLM call, in the shape LangChain's `usage_metadata` reports it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    """Tokens of one LLM call. `prompt` includes `cache_read` and `cache_creation`; `completion` includes `reasoning`."""

    prompt: int = 0
    completion: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0

    def add(self, other: Usage) -> None:
        self.prompt += other.prompt
        self.completion += other.completion
        self.cache_read += other.cache_read
        self.cache_creation += other.cache_creation
        self.reasoning += other.reasoning

    @property
    def total(self) -> int:
        return self.prompt + self.completion
