"""Token prices per model, so cost is a metric rather than a monthly surprise.

The shipped table (`pricing/prices.json`) is versioned and dated; providers change prices, so it is meant to be checked and
overridden. A model the table does not know is *unpriced*: its cost is reported as unknown, never as zero.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

_PER_TOKEN = 1e-6  # prices are per million tokens
# "openai/gpt-4o", "models/gemini-2.5-pro", Bedrock's "us.anthropic.claude-sonnet-4-20250514-v1:0"
_PROVIDER_PREFIX = re.compile(r"^(?:[a-z0-9_.-]+/)+|^(?:[a-z]{2}\.)?(?:anthropic|meta|mistral|amazon|cohere|ai21)\.")
# Only dated snapshots and version tags resolve to a base model: "gpt-5-pro" must not be priced as "gpt-5".
_SNAPSHOT_SUFFIX = re.compile(
    r"^(?:[-@](?:\d{8}|\d{4}-\d{2}-\d{2}|\d{4}|latest|preview(?:-\d{2}-\d{2})?))?(?:-v\d+(?::\d+)?)?$"
)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens. Cached input and cache writes default to the input price when the provider has no discount."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "cache_write"):
            value = getattr(self, name)
            if value is None and name in ("cached_input", "cache_write"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"ModelPrice.{name} must be a finite number >= 0, got {value!r}")

    def cost(self, *, prompt: int, completion: int, cache_read: int = 0, cache_creation: int = 0) -> float:
        """Cost in USD. `prompt` includes cached and cache-creation tokens, as LangChain's usage_metadata reports them."""
        uncached = max(prompt - cache_read - cache_creation, 0)
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write is None else self.cache_write
        return (
            uncached * self.input + cache_read * cached_price + cache_creation * write_price + completion * self.output
        ) * _PER_TOKEN


class PriceTable:
    """Maps model names to prices; dated snapshots and provider prefixes resolve to their base model."""

    def __init__(self, prices: Mapping[str, ModelPrice], *, version: str) -> None:
        self._prices = {name.lower(): price for name, price in prices.items()}
        self.version = version
        self._resolved: dict[str, ModelPrice | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> PriceTable:
        """The table shipped with the package."""
        text = resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8")
        return cls._from_document(json.loads(text), source="the shipped price table")

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        """A table in the shipped format: {"version": ..., "models": {name: {"input": ..., "output": ...}}}."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        return cls._from_document(document, source=str(path))

    @classmethod
    def _from_document(cls, document: Any, *, source: str) -> PriceTable:
        if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
            raise ValueError(f"{source}: expected an object with a 'models' mapping")
        prices = {}
        for name, fields in document["models"].items():
            try:
                prices[name] = ModelPrice(**fields)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{source}: bad price for model {name!r}: {error}") from error
        return cls(prices, version=str(document.get("version", "unversioned")))

    def with_overrides(self, prices: Mapping[str, ModelPrice], *, version: str | None = None) -> PriceTable:
        """A copy with some models added or re-priced (your negotiated rates, a fine-tune, a local model at 0)."""
        merged = {**self._prices, **{name.lower(): price for name, price in prices.items()}}
        return PriceTable(merged, version=version or f"{self.version}+overrides")

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of `model`, or None when the table does not know it."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        price = self._resolve(model.lower())
        with self._lock:
            if len(self._resolved) < 4096:  # bounded: model names come from outside
                self._resolved[model] = price
        return price

    def _resolve(self, name: str) -> ModelPrice | None:
        for candidate in dict.fromkeys((name, _PROVIDER_PREFIX.sub("", name))):
            if candidate in self._prices:
                return self._prices[candidate]
            best = max(
                (
                    known
                    for known in self._prices
                    if candidate.startswith(known) and _SNAPSHOT_SUFFIX.match(candidate[len(known) :])
                ),
                key=len,
                default=None,
            )
            if best is not None:
                return self._prices[best]
        return None

    def __contains__(self, model: str) -> bool:
        return self.lookup(model) is not None

    def __len__(self) -> int:
        return len(self._prices)
