"""The monitor's fast metric children record exactly what prometheus-client's own methods would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from langchain_llmmonitor.telemetry.metrics import LATENCY_BUCKETS, MonitorMetrics, _Counting, _Observing


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed-{seed}") for seed in range(3)])
def test_fast_children_match_the_public_api(seed: int):
    """Random latencies (bucket edges included), counts and gauge moves: both registries expose the same samples."""
    rng = random.Random(seed)
    fast_registry, public_registry = CollectorRegistry(), CollectorRegistry()
    fast = MonitorMetrics(fast_registry)
    requests = Counter("llm_requests_total", "x", ("model", "status"), registry=public_registry)
    duration = Histogram(
        "llm_request_duration_seconds", "x", ("model",), registry=public_registry, buckets=LATENCY_BUCKETS
    )
    active = Gauge("llm_active_requests", "x", registry=public_registry, multiprocess_mode="livesum")
    edges = [bound for bound in LATENCY_BUCKETS if bound != float("inf")]
    for _ in range(2_000):
        model = rng.choice(["gpt-4o-mini", "claude-sonnet-4-5"])
        latency = rng.choice([rng.random() * 150, rng.choice(edges), 0.0])
        fast.requests(model, "success").inc()
        requests.labels(model, "success").inc()
        fast.request_duration(model).observe(latency)
        duration.labels(model).observe(latency)
        step = rng.choice([1, -1])
        (fast.active.inc if step > 0 else fast.active.dec)()
        active.inc(step)
    wanted = samples(public_registry)
    seen = {key: value for key, value in samples(fast_registry).items() if key in wanted}
    assert seen == pytest.approx(wanted)
    assert len(seen) == len(wanted)


def test_the_fast_forms_are_in_use():
    """Labelled counters and histograms, and the in-flight gauge, skip the public methods' checks."""
    metrics = MonitorMetrics(CollectorRegistry())
    assert isinstance(metrics.requests("m", "success"), _Counting)
    assert isinstance(metrics.request_duration("m"), _Observing)
    assert isinstance(metrics.active, _Counting)


def test_a_gauge_set_through_the_fast_form_is_exposed():
    """`set` (the prices-as-of gauge) works on the fast gauge."""
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    metrics.prices("genai-prices 1.0").inc(3)
    metrics.prices("genai-prices 1.0").set(1)
    assert registry.get_sample_value("llm_monitor_prices_info", {"source": "genai-prices 1.0"}) == 1
