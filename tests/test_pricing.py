"""The price table: lookups, cost arithmetic, overrides and bad input."""

from __future__ import annotations

import json

import pytest

from langchain_llmmonitor import ModelPrice, PriceTable


@pytest.mark.parametrize(
    ("model", "base"),
    [
        pytest.param("gpt-4o-mini", "gpt-4o-mini", id="exact"),
        pytest.param("GPT-4o-Mini", "gpt-4o-mini", id="case-insensitive"),
        pytest.param("gpt-4o-mini-2024-07-18", "gpt-4o-mini", id="dated-snapshot-longest-prefix"),
        pytest.param("openai/gpt-4.1-mini", "gpt-4.1-mini", id="provider-prefix"),
        pytest.param("us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4", id="bedrock-id"),
        pytest.param("claude-3-5-haiku-latest", "claude-3-5-haiku", id="latest-alias"),
    ],
)
def test_lookup_resolves_snapshots_to_their_base_model(model, base):
    """Dated snapshots, aliases and provider prefixes are priced as their base model."""
    table = PriceTable.default()
    assert table.lookup(model) == table.lookup(base) is not None


@pytest.mark.parametrize(
    "model",
    [
        pytest.param("gpt-5-pro", id="different-model-sharing-a-prefix"),
        pytest.param("ft:gpt-4o-mini-2024-07-18:acme::abc", id="fine-tune"),
        pytest.param("my-local-llama", id="unknown"),
        pytest.param("unknown", id="unknown-label"),
    ],
)
def test_models_not_in_the_table_are_unpriced(model):
    """A model the table does not know is unpriced (None), never silently priced as another model or as zero."""
    assert PriceTable.default().lookup(model) is None


def test_cost_splits_cached_and_cache_creation_tokens():
    """Cached input, cache writes, fresh input and output are each charged at their own price."""
    price = ModelPrice(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
    cost = price.cost(prompt=1_000_000, completion=100_000, cache_read=500_000, cache_creation=100_000)
    assert cost == pytest.approx(0.4 * 3.0 + 0.5 * 0.3 + 0.1 * 3.75 + 0.1 * 15.0)


def test_cost_without_cache_prices_uses_input_price():
    """A provider without a cache discount charges cached tokens at the input price."""
    assert ModelPrice(input=2.0, output=6.0).cost(prompt=1_000_000, completion=0, cache_read=400_000) == pytest.approx(
        2.0
    )


def test_overrides_add_and_reprice_models():
    """Overrides add unknown models and re-price known ones, without touching the original table."""
    table = PriceTable.default()
    custom = table.with_overrides(
        {"my-local-llama": ModelPrice(input=0, output=0), "gpt-4o": ModelPrice(input=1, output=2)}
    )
    assert custom.lookup("my-local-llama") == ModelPrice(input=0, output=0)
    assert custom.lookup("gpt-4o-2024-08-06") == ModelPrice(input=1, output=2)
    assert table.lookup("gpt-4o").input == 2.5
    assert custom.version.endswith("+overrides")


def test_shipped_table_is_versioned():
    """The shipped table carries its version date."""
    table = PriceTable.default()
    assert table.version[:4].isdigit() and len(table) > 10


def test_from_file_round_trip(tmp_path):
    """A table file in the shipped format loads with its version."""
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"version": "2026-01-01", "models": {"house-model": {"input": 1, "output": 2}}}))
    table = PriceTable.from_file(path)
    assert table.version == "2026-01-01"
    assert table.lookup("house-model") == ModelPrice(input=1, output=2)


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
    ],
)
def test_bad_price_files_fail_with_a_clear_error(tmp_path, content, message):
    """A malformed price file is rejected with an error naming the file and the problem."""
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        PriceTable.from_file(path)
