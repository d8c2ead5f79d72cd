"""Prices from Pydantic's `genai-prices` database: thousands of models, dated price changes, tiers, cache TTLs.

Only the snapshot bundled with the installed package is read: no network at runtime. A user who wants fresher prices
opts in with genai-prices' own `UpdatePrices`, which this module then follows (it asks the library for its current
snapshot at every resolution).

`genai_prices.calc_price` costs a few hundred microseconds per call, far too slow for a callback, so a price is
*resolved* once per (model, provider, service tier): each token type's rate is read off the library by pricing probe
usages, which makes the handler's float arithmetic agree with the library to the last digit without re-implementing its
unit hierarchy. A prompt-size tier gets its own set of rates.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from importlib.metadata import version
from typing import Any

from genai_prices import Usage, data_snapshot
from genai_prices.types import TieredPrices

from .table import ModelPrice

# LangChain's `ls_provider` (the integration's name) to genai-prices' provider id, where they differ.
_PROVIDERS = {
    "amazon_bedrock": "aws",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "google_genai": "google",
    "google_vertexai": "google",
    "google_anthropic_vertex": "anthropic",
    "azure_openai": "azure",
    "mistralai": "mistral",
    "xai": "x-ai",
}
# Integrations that run models on your own hardware: their models are never priced by name, even when a cloud
# provider sells the same weights.
_SELF_HOSTED = frozenset(
    {"ollama", "vllm", "llamacpp", "llama_cpp", "lmstudio", "localai", "gpt4all", "mlx", "huggingface"}
)
_MILLION = Decimal(1_000_000)


class GenaiPrices:
    """Resolves (model, provider, service tier) to a `ModelPrice` from the installed genai-prices snapshot."""

    def __init__(self) -> None:
        self.version = f"genai-prices {version('genai-prices')}"

    def resolve(self, model: str, provider: str | None, service_tier: str | None) -> ModelPrice | None:
        """The price, or None when the source does not know the model (or knows no token price for it)."""
        snapshot = data_snapshot.get_snapshot()
        provider_id = self._provider_id(snapshot, provider)
        if provider_id == "":
            return None
        for reference in _references(model):
            try:
                _, info = snapshot.find_provider_model(reference, None, provider_id, None)
            except LookupError:
                continue
            context = {"service_tier": service_tier} if service_tier else None
            return _rates(info.get_prices(dt.datetime.now(dt.UTC), context))
        return None

    @staticmethod
    def _provider_id(snapshot: Any, provider: str | None) -> str | None:
        """The source's id of `provider`; None (match by model name) for a wrapper it does not know; "" for none."""
        if not provider:
            return None
        provider_id = _PROVIDERS.get(provider, provider)
        try:
            snapshot.find_provider(None, provider_id, None)
        except LookupError:
            return "" if provider in _SELF_HOSTED else None
        return provider_id


def _references(model: str) -> tuple[str, ...]:
    """The model as named, then without an ARN or path ("arn:aws:bedrock:...:inference-profile/us.x", "models/x")."""
    bare = model.rsplit("/", 1)[-1]
    return (model, bare) if bare != model else (model,)


def _rates(price: Any) -> ModelPrice | None:
    """Each token type's rate, read off the library's own arithmetic; one set per prompt-size tier."""
    if price.input_mtok is None and price.output_mtok is None:
        return None  # priced per character, second or image: not a token model
    starts = sorted(
        {tier.start for value in vars(price).values() if isinstance(value, TieredPrices) for tier in value.tiers}
    )
    above = tuple((start, _probe(price, start + 1)) for start in starts)
    return _probe(price, 1, above)


def _probe(price: Any, prompt: int, above: tuple[tuple[int, ModelPrice], ...] = ()) -> ModelPrice:
    """The rates at a prompt of `prompt` tokens (which picks the tier), per million tokens."""

    def total(**usage: int) -> Decimal:
        return price.calc_price(Usage(input_tokens=prompt, **usage))["total_price"]

    base = total()
    per_input = price.calc_price(Usage(input_tokens=prompt + 1))["total_price"] - base
    per_request = base - prompt * per_input

    def input_rate(**usage: int) -> float:  # all `prompt` input tokens of one kind
        return float((total(**usage) - per_request) / prompt * _MILLION)

    def output_rate(**usage: int) -> float:  # a million output tokens of one kind
        return float(total(output_tokens=1_000_000, **usage) - base)

    return ModelPrice(
        input=float(per_input * _MILLION),
        output=output_rate(),
        cached_input=input_rate(cache_read_tokens=prompt),
        cache_write=input_rate(cache_write_tokens=prompt),
        cache_write_1h=input_rate(cache_write_tokens=prompt, cache_write_1h_tokens=prompt),
        input_audio=input_rate(input_audio_tokens=prompt),
        output_audio=output_rate(output_audio_tokens=1_000_000),
        reasoning=output_rate(output_reasoning_tokens=1_000_000),
        per_request=float(per_request),
        above=above,
    )
