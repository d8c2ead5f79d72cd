"""Token prices per model, so cost is a metric rather than a monthly surprise.

The default source is Pydantic's `genai-prices` database (`pricing/source.py`), read from the snapshot installed with
it. Your own prices (negotiated rates, fine-tunes, a self-hosted model) layer on top by model name and win; every
other model keeps its source price. A model nobody knows is *unpriced*: its cost is reported as unknown, never as 0.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..core.usage import Usage

_PER_TOKEN = 1e-6  # prices are per million tokens
# "openai/gpt-4o", "models/gemini-2.5-pro", Bedrock's "us.anthropic.claude-sonnet-4-20250514-v1:0"
_PROVIDER_PREFIX = re.compile(r"^(?:[a-z0-9_.:-]+/)+|^(?:[a-z]{2,6}\.)?(?:anthropic|meta|mistral|amazon|cohere|ai21)\.")
# Only dated snapshots and version tags resolve to a base model: "gpt-5-pro" must not be priced as "gpt-5".
_SNAPSHOT_SUFFIX = re.compile(
    r"^(?:[-@](?:\d{8}|\d{4}-\d{2}-\d{2}|\d{4}|latest|preview(?:-\d{2}-\d{2})?))?(?:-v\d+(?::\d+)?)?$"
)
_OPTIONAL_RATES = ("cached_input", "cache_write", "cache_write_1h", "input_audio", "output_audio", "reasoning")
_MAX_RESOLVED = 4096  # bounded: model names come from outside


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens of each type. A type without its own price is charged like the type it belongs to.

    `cache_write_1h` falls back to `cache_write`, which (like `cached_input` and `input_audio`) falls back to `input`;
    `reasoning` and `output_audio` fall back to `output`. `per_request` is USD per call; `above` holds the prices that
    apply to every token of a call whose prompt is larger than a threshold, as `((threshold, price), ...)`.
    """

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None
    input_audio: float | None = None
    output_audio: float | None = None
    reasoning: float | None = None
    per_request: float = 0.0
    above: tuple[tuple[int, ModelPrice], ...] = ()
    _rates: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("input", "output", "per_request", *_OPTIONAL_RATES):
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_RATES:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"ModelPrice.{name} must be a finite number >= 0, got {value!r}")
        if not all(type(start) is int and isinstance(price, ModelPrice) for start, price in self.above):
            raise ValueError(f"ModelPrice.above must be ((prompt tokens, ModelPrice), ...), got {self.above!r}")
        object.__setattr__(self, "above", tuple(sorted(self.above, key=lambda tier: -tier[0])))
        write = _first(self.cache_write, self.input)
        rates = (
            _first(self.cached_input, self.input),
            write,
            _first(self.cache_write_1h, write),
            _first(self.input_audio, self.input),
            _first(self.reasoning, self.output),
            _first(self.output_audio, self.output),
        )
        object.__setattr__(self, "_rates", rates)

    def cost(self, usage: Usage) -> float:
        """Cost in USD of one call's tokens (`prompt` includes cached, cache-write and audio input, as LangChain counts)."""
        price = self
        for start, tier in self.above:
            if usage.prompt > start:
                price = tier
                break
        read, write, write_1h, audio_in, reasoning, audio_out = price._rates
        created_1h = min(usage.cache_creation_1h, usage.cache_creation)
        fresh = max(usage.prompt - usage.cache_read - usage.cache_creation - usage.input_audio, 0)
        text_out = max(usage.completion - usage.reasoning - usage.output_audio, 0)
        per_million = (
            fresh * price.input
            + usage.cache_read * read
            + (usage.cache_creation - created_1h) * write
            + created_1h * write_1h
            + usage.input_audio * audio_in
            + text_out * price.output
            + usage.reasoning * reasoning
            + usage.output_audio * audio_out
        )
        return per_million * _PER_TOKEN + price.per_request


def _first(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


class PriceSource(Protocol):
    """Where prices come from when no override names the model (genai-prices by default)."""

    version: str

    def resolve(self, model: str, provider: str | None, service_tier: str | None) -> ModelPrice | None: ...


class PriceTable:
    """Your prices by model name, layered over a price source; each (model, provider, tier) is resolved once."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None, *, source: PriceSource | None = None) -> None:
        self._prices = {name.lower(): price for name, price in (prices or {}).items()}
        for name, price in self._prices.items():
            if not isinstance(price, ModelPrice):
                raise TypeError(f"price of {name!r} must be a ModelPrice, got {price!r}")
        self._source = source
        self._resolved: dict[tuple[str, str | None, str | None], ModelPrice | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> PriceTable:
        """Prices from the genai-prices snapshot installed with the package (no network)."""
        from .source import GenaiPrices

        return cls(source=GenaiPrices())

    @classmethod
    def from_file(cls, path: str | Path, *, over: PriceTable | None = None) -> PriceTable:
        """`over` (the default table) with the models of a JSON file added or re-priced.

        The file: {"models": {"my-fine-tune": {"input": 0.3, "output": 1.2, "cached_input": 0.15}, ...}}.
        """
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        return (over or cls.default()).with_overrides(_models_of(document, str(path)))

    def with_overrides(self, prices: Mapping[str, ModelPrice]) -> PriceTable:
        """A copy with some models added or re-priced (your negotiated rates, a fine-tune, a local model at 0)."""
        return PriceTable(
            {**self._prices, **{name.lower(): price for name, price in prices.items()}}, source=self._source
        )

    @property
    def version(self) -> str:
        """Which prices are in use, e.g. "genai-prices 0.2.3+2 overrides" (exported as an info metric)."""
        base = self._source.version if self._source is not None else "overrides only"
        return f"{base}+{len(self._prices)} overrides" if self._prices and self._source is not None else base

    def lookup(self, model: str, provider: str | None = None, service_tier: str | None = None) -> ModelPrice | None:
        """The price of `model` as served by `provider` (LangChain's `ls_provider`), or None when nobody knows it."""
        key = (model, provider, service_tier)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        price = self._resolve(model, provider, service_tier)
        with self._lock:
            if len(self._resolved) < _MAX_RESOLVED:
                self._resolved[key] = price
        return price

    def _resolve(self, model: str, provider: str | None, service_tier: str | None) -> ModelPrice | None:
        override = self._override(model.lower())
        if override is not None or self._source is None:
            return override
        return self._source.resolve(model, provider, service_tier)

    def _override(self, name: str) -> ModelPrice | None:
        if not self._prices:
            return None
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


def _models_of(document: Any, source: str) -> dict[str, ModelPrice]:
    if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
        raise ValueError(f"{source}: expected an object with a 'models' mapping")
    prices = {}
    for name, fields in document["models"].items():
        try:
            prices[name] = ModelPrice(**fields)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: bad price for model {name!r}: {error}") from error
    return prices
