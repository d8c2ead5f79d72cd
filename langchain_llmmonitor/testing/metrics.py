"""Read a Monitor's Prometheus metrics in a test without scraping `/metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ..monitor import Monitor


def metric_value(source: Monitor | CollectorRegistry, name: str, /, **labels: str) -> float:
    """The value of sample `name` with exactly these labels, 0 when absent (a counter never incremented).

    `name` is the sample's name, so counters take their `_total` suffix and histograms `_count`/`_sum`/`_bucket`:
    `metric_value(monitor, "llm_requests_total", model="gpt-4o-mini", status="success")`.
    """
    registry = source if isinstance(source, CollectorRegistry) else source.registry
    return registry.get_sample_value(name, labels) or 0.0
