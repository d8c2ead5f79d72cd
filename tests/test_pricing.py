"""Prices: resolved from genai-prices once per model, equal to its own arithmetic, layered under your overrides."""

from __future__ import annotations

import datetime as dt
import json
import random

import genai_prices
import pytest
from genai_prices import data_snapshot

from langchain_llmmonitor import ModelPrice, PriceTable
from langchain_llmmonitor.core.usage import Usage

TABLE = PriceTable.default()


def source_cost(usage: Usage, model: str, provider: str | None, tier: str | None = None) -> float:
    """What genai-prices itself charges for `usage` (the oracle)."""
    counts = dict(
        input_tokens=usage.prompt,
        output_tokens=usage.completion,
        cache_read_tokens=usage.cache_read,
        cache_write_tokens=usage.cache_creation,
        cache_write_1h_tokens=usage.cache_creation_1h,
        input_audio_tokens=usage.input_audio,
        output_audio_tokens=usage.output_audio,
        output_reasoning_tokens=usage.reasoning,
    )
    calculation = genai_prices.calc_price(
        genai_prices.Usage(**{key: value for key, value in counts.items() if value}),
        model,
        provider_id=provider,
        price_context={"service_tier": tier} if tier else None,
    )
    return float(calculation.total_price)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        pytest.param("gpt-5.1", "openai", id="gpt-5.1"),
        pytest.param("gpt-4.1-mini-2025-04-14", "openai", id="dated-gpt-4.1-mini"),
        pytest.param("claude-opus-4-5", "anthropic", id="claude-opus-4-5"),
        pytest.param("claude-sonnet-4-5-20250929", "anthropic", id="dated-claude-sonnet-4-5"),
        pytest.param("gemini-2.5-pro", "google_vertexai", id="vertex-gemini"),
        pytest.param("models/gemini-2.5-flash", "google_genai", id="genai-models-prefix"),
        pytest.param("mistral-large-latest", "mistralai", id="mistral"),
        pytest.param("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "amazon_bedrock", id="bedrock-global-profile"),
        pytest.param("apac.anthropic.claude-3-5-sonnet-20240620-v1:0", "amazon_bedrock", id="bedrock-apac-profile"),
        pytest.param(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
            "amazon_bedrock",
            id="bedrock-arn",
        ),
        pytest.param("gpt-4o-2024-08-06", "azure", id="azure"),
        pytest.param("gpt-4o-mini", None, id="no-provider"),
    ],
)
def test_current_models_are_priced_as_the_source_prices_them(model, provider):
    """Current models of every main provider resolve, and a call costs exactly what genai-prices says."""
    price = TABLE.lookup(model, provider)
    assert price is not None
    usage = Usage(prompt=12_000, completion=800, cache_read=3_000)
    reference = model.rsplit("/", 1)[-1]
    source_provider = {"google_vertexai": "google", "google_genai": "google", "mistralai": "mistral"}.get(
        provider, provider
    )
    source_provider = "aws" if provider == "amazon_bedrock" else source_provider
    assert price.cost(usage) == pytest.approx(source_cost(usage, reference, source_provider), rel=1e-9)


def test_dated_snapshots_keep_their_own_price():
    """gpt-4o-2024-05-13 is charged its own $5/$15, not the gpt-4o alias's $2.5/$10."""
    assert TABLE.lookup("gpt-4o-2024-05-13", "openai").input == pytest.approx(5.0)
    assert TABLE.lookup("gpt-4o", "openai").input == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        pytest.param("my-local-llama", None, id="unknown"),
        pytest.param("llama3", "ollama", id="self-hosted-provider"),
        pytest.param("meta-llama/Llama-3.1-8B-Instruct", "openai", id="vllm-behind-the-openai-client"),
        pytest.param("unknown", None, id="unknown-label"),
    ],
)
def test_models_no_source_knows_are_unpriced(model, provider):
    """A model nobody prices is unpriced (None), never 0 and never another model's price."""
    assert TABLE.lookup(model, provider) is None


def test_every_token_model_costs_what_the_source_says():
    """For every token-priced model in the snapshot and random usages, the resolved rates equal calc_price."""
    rng = random.Random(7)
    snapshot = data_snapshot.get_snapshot()
    now = dt.datetime.now(dt.UTC)
    checked = 0
    for provider in snapshot.providers:
        for model in provider.models:
            if model.get_prices(now).input_mtok is None or not _resolves(snapshot, model.id, provider.id):
                continue
            price = TABLE.lookup(model.id, provider.id)
            assert price is not None, (provider.id, model.id)
            for _ in range(3):
                usage = _random_usage(rng)
                expected = source_cost(usage, model.id, provider.id)
                assert price.cost(usage) == pytest.approx(expected, rel=1e-9, abs=1e-12), (provider.id, model.id, usage)
            checked += 1
    assert checked > 1500


def _resolves(snapshot, model: str, provider: str) -> bool:
    try:
        snapshot.find_provider_model(model, None, provider, None)
    except LookupError:  # an id that is not itself a name any API uses ("regional.amazon.nova-...")
        return False
    return True


def _random_usage(rng: random.Random) -> Usage:
    prompt = rng.choice((10, 5_000, 150_000, 260_000, 1_200_000))  # across prompt-size tiers
    cache_read = rng.randrange(prompt // 3 + 1)
    cache_creation = rng.randrange(prompt // 3 + 1)
    completion = rng.randrange(1, 20_000)
    return Usage(
        prompt=prompt,
        completion=completion,
        cache_read=cache_read,
        cache_creation=cache_creation,
        cache_creation_1h=rng.randrange(cache_creation + 1),
        reasoning=rng.randrange(completion + 1),
    )


@pytest.mark.parametrize(
    ("tier", "cheaper"),
    [pytest.param("flex", True, id="flex-half-price"), pytest.param("priority", False, id="priority-premium")],
)
def test_service_tiers_have_their_own_price(tier, cheaper):
    """Flex and priority calls are priced at their tier's rates, as the source prices them."""
    usage = Usage(prompt=10_000, completion=2_000, cache_read=4_000, service_tier=tier)
    standard = TABLE.lookup("gpt-5.1", "openai").cost(usage)
    tiered = TABLE.lookup("gpt-5.1", "openai", tier).cost(usage)
    assert (tiered < standard) is cheaper and tiered != standard
    assert tiered == pytest.approx(source_cost(usage, "gpt-5.1", "openai", tier), rel=1e-9)


def test_one_hour_cache_writes_cost_more_than_five_minute_ones():
    """Anthropic's 1h cache writes are charged at their own rate ($10 vs $6.25 per 1M on claude-opus-4-5)."""
    price = TABLE.lookup("claude-opus-4-5", "anthropic")
    five_minutes = price.cost(Usage(prompt=1_000_000, cache_creation=1_000_000))
    one_hour = price.cost(Usage(prompt=1_000_000, cache_creation=1_000_000, cache_creation_1h=1_000_000))
    assert (five_minutes, one_hour) == (pytest.approx(6.25), pytest.approx(10.0))


def test_long_prompts_are_priced_at_their_tier():
    """A prompt above a model's long-context threshold pays the higher rate on every token (gemini-2.5-pro)."""
    price = TABLE.lookup("gemini-2.5-pro", "google_vertexai")
    short, long = Usage(prompt=200_000, completion=1_000), Usage(prompt=200_001, completion=1_000)
    assert price.cost(long) / long.prompt > price.cost(short) / short.prompt * 1.5
    assert price.cost(long) == pytest.approx(source_cost(long, "gemini-2.5-pro", "google"), rel=1e-9)


def test_token_types_without_a_price_fall_back_to_their_parent():
    """A price with no cache, audio or reasoning rates charges those tokens as input or output."""
    price = ModelPrice(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    usage = Usage(
        prompt=1_000_000,
        completion=100_000,
        cache_read=500_000,
        cache_creation=100_000,
        cache_creation_1h=40_000,
        input_audio=50_000,
        reasoning=30_000,
    )
    expected = 0.35 * 3.0 + 0.5 * 0.3 + 0.1 * 3.75 + 0.05 * 3.0 + 0.1 * 15.0
    assert price.cost(usage) == pytest.approx(expected)


def test_overrides_layer_over_the_source():
    """Overrides add and re-price models by name; every other model keeps its source price."""
    custom = TABLE.with_overrides(
        {"my-local-llama": ModelPrice(input=0, output=0), "gpt-4o": ModelPrice(input=1, output=2)}
    )
    assert custom.lookup("my-local-llama") == ModelPrice(input=0, output=0)
    assert custom.lookup("gpt-4o-2024-08-06", "openai") == ModelPrice(input=1, output=2)
    assert custom.lookup("claude-opus-4-5", "anthropic") == TABLE.lookup("claude-opus-4-5", "anthropic")
    assert TABLE.lookup("gpt-4o", "openai").input == pytest.approx(2.5)
    assert custom.version == f"genai-prices {genai_prices.__version__}+2 overrides"


def test_from_file_layers_its_models_over_the_default(tmp_path):
    """A price file adds its models; the source's models stay priced."""
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"house-model": {"input": 1, "output": 2, "cache_write_1h": 4}}}))
    table = PriceTable.from_file(path)
    assert table.lookup("house-model") == ModelPrice(input=1, output=2, cache_write_1h=4)
    assert table.lookup("gpt-5.1", "openai") is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("{not json", "not valid JSON", id="bad-json"),
        pytest.param(json.dumps({"models": []}), "'models' mapping", id="models-not-a-mapping"),
        pytest.param(
            json.dumps({"models": {"m": {"input": -1, "output": 1}}}), "bad price for model 'm'.*input", id="negative"
        ),
        pytest.param(json.dumps({"models": {"m": {"input": 1}}}), "bad price for model 'm'", id="missing-output"),
        pytest.param(
            json.dumps({"models": {"m": {"input": 1, "output": 1, "per": 3}}}),
            "bad price for model 'm'",
            id="unknown-field",
        ),
        pytest.param(
            json.dumps({"models": {"m": {"input": "1", "output": 1}}}), "bad price for model 'm'", id="string-price"
        ),
        pytest.param(
            json.dumps({"models": {"m": {"input": 1, "output": 1, "above": [[10, 3]]}}}),
            "bad price for model 'm'.*above",
            id="bad-tier",
        ),
    ],
)
def test_bad_price_files_fail_with_a_clear_error(tmp_path, content, message):
    """A malformed price file is rejected with an error naming the file and the problem."""
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        PriceTable.from_file(path)


def test_audio_tokens_are_priced_at_their_own_rate():
    """Audio input and output tokens cost what the source charges for audio, not text (OpenAI realtime, Gemini)."""
    usage = Usage(prompt=10_000, completion=2_000, input_audio=6_000, output_audio=1_500)
    for model, provider in (("gpt-4o-mini-realtime-preview", "openai"), ("gemini-2.5-flash", "google")):
        price = TABLE.lookup(model, provider)
        assert price.input_audio > price.input
        assert price.cost(usage) == pytest.approx(source_cost(usage, model, provider), rel=1e-9)
