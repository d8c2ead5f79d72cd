"""`llmmonitor demo`: the whole monitoring loop on an offline chain, with a readable summary at the end."""

from __future__ import annotations

import math
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from prometheus_client.parser import text_string_to_metric_families

from .demo_app import DemoChatModel, build_chain, drive
from .exposition import serve_metrics
from .monitor import Monitor


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    requests: int = 300
    error_rate: float = 0.03
    latency_seconds: float = 0.12
    port: int = 9464
    out_dir: Path = Path("llmmonitor-out")
    seed: int = 7
    keep_serving: bool = False


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's `histogram_quantile` over (upper bound, cumulative count) pairs: linear within a bucket."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0.0
    if total == 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper_bound, count in buckets:
        if count >= rank:
            if math.isinf(upper_bound):
                return lower_bound
            return lower_bound + (upper_bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-12)
        lower_bound, lower_count = upper_bound, count
    return lower_bound


def scrape(url: str) -> dict[str, list[Any]]:
    """Samples by name from a `/metrics` endpoint, parsed with prometheus-client's own parser."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode("utf-8")
    samples: dict[str, list[Any]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append(sample)
    return samples


def _summary(samples: dict[str, list[Any]]) -> str:
    def total(name: str, **match: str) -> float:
        return sum(s.value for s in samples.get(name, ()) if all(s.labels.get(k) == v for k, v in match.items()))

    def quantiles(name: str) -> str:
        buckets: dict[float, float] = defaultdict(float)
        for s in samples.get(f"{name}_bucket", ()):
            buckets[float(s.labels["le"])] += s.value
        pairs = list(buckets.items())
        return "p50 {:.0f} ms, p99 {:.0f} ms".format(*(1000 * histogram_quantile(q, pairs) for q in (0.5, 0.99)))

    errors = defaultdict(float)
    for s in samples.get("llm_errors_total", ()):
        errors[s.labels["error_type"]] += s.value
    tokens = {kind: total("llm_tokens_total", type=kind) for kind in ("prompt", "completion", "cache_read", "reasoning")}
    lines = [
        f"  invocations   {total('llm_invocations_total'):.0f} "
        f"({total('llm_invocations_total', status='success'):.0f} ok, {total('llm_invocations_total', status='error'):.0f} failed)"
        f"  latency {quantiles('llm_invocation_duration_seconds')}",
        f"  LLM calls     {total('llm_requests_total'):.0f} "
        f"({total('llm_requests_total', status='error'):.0f} errors)  latency {quantiles('llm_request_duration_seconds')}",
        f"  streaming     {total('llm_time_to_first_token_seconds_count'):.0f} calls, "
        f"time to first token {quantiles('llm_time_to_first_token_seconds')}",
        "  tokens        " + ", ".join(f"{value:.0f} {kind}" for kind, value in tokens.items() if value),
        f"  cost          ${total('llm_cost_usd_total'):.4f} (unpriced calls: {total('llm_unpriced_requests_total'):.0f})",
        "  errors        " + (", ".join(f"{n:.0f} {kind}" for kind, n in errors.items()) or "none"),
        f"  retrieval     {total('llm_retriever_requests_total'):.0f} calls, "
        f"{total('llm_retriever_documents_sum') / max(total('llm_retriever_documents_count'), 1):.1f} documents each",
        f"  in flight     {total('llm_active_requests'):.0f} LLM calls; monitor errors {total('llm_monitor_handler_errors_total'):.0f}",
    ]
    return "\n".join(lines)


def run_demo(options: DemoOptions = DemoOptions(), *, echo: Any = print) -> dict[str, Any]:
    """Run the demo end to end; returns what was measured (also used by the tests)."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    log_path = options.out_dir / "demo-log.jsonl"
    with log_path.open("w", encoding="utf-8") as log_file:
        logger = structlog.wrap_logger(
            structlog.WriteLogger(log_file),
            processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), structlog.processors.JSONRenderer()],
        )
        monitor = Monitor(logger=logger)
        try:
            server = serve_metrics(monitor, port=options.port)
        except OSError:
            server = serve_metrics(monitor, port=0)  # the default port is taken: any free one will do
        echo(f"Serving metrics at {server.url}")
        model = DemoChatModel(latency_seconds=options.latency_seconds, error_rate=options.error_rate, seed=options.seed)
        chain = build_chain(model)
        echo(f"Sending {options.requests} questions through invoke, stream, batch, ainvoke and astream ...")
        started = time.perf_counter()
        counts = drive(chain, requests=options.requests, callbacks=[monitor], seed=options.seed)
        elapsed = time.perf_counter() - started
        samples = scrape(server.url)
        echo(f"Done in {elapsed:.1f} s. Scraped {server.url}:")
        echo(_summary(samples))
        echo(f"Structured logs: {log_path}")
        if options.keep_serving:
            echo("Still serving /metrics; Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        server.stop()
    return {"counts": counts, "samples": samples, "metrics_url": server.url, "log_path": log_path, "monitor": monitor}

