"""`llmmonitor demo`: the whole monitoring loop on an offline chain, with a readable summary at the end.

Metrics served and scraped, the offline judge on a share of traces, simulated users rating answers, everything written
to a store, and a weekly review over simulated weeks of history. No API key, no network.
"""

from __future__ import annotations

import functools
import math
import random
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog
from langchain_core.callbacks import BaseCallbackHandler
from prometheus_client.parser import text_string_to_metric_families

from ..config import LangSmithConfig, MonitorConfig
from ..monitor import Monitor
from ..ops.exposition import serve_metrics
from ..quality.judges.offline import OfflineJudge
from .app import INVENTED_FACTS, DemoChatModel, build_chain, drive


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    requests: int = 300
    error_rate: float = 0.03
    latency_seconds: float = 0.12
    hallucination_rate: float = 0.1
    sample_rate: float = 0.2
    feedback_rate: float = 0.15
    history_weeks: int = 6
    scenario: str = "degradation"
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


def _total(samples: dict[str, list[Any]], name: str, **match: str) -> float:
    """The sum of a metric's scraped samples whose labels match."""
    return sum(s.value for s in samples.get(name, ()) if all(s.labels.get(k) == v for k, v in match.items()))


def _summary(samples: dict[str, list[Any]]) -> str:
    total = functools.partial(_total, samples)

    def quantiles(name: str) -> str:
        buckets: dict[float, float] = defaultdict(float)
        for s in samples.get(f"{name}_bucket", ()):
            buckets[float(s.labels["le"])] += s.value
        pairs = list(buckets.items())
        return "p50 {:.0f} ms, p99 {:.0f} ms".format(*(1000 * histogram_quantile(q, pairs) for q in (0.5, 0.99)))

    errors = defaultdict(float)
    for s in samples.get("llm_errors_total", ()):
        errors[s.labels["error_type"]] += s.value
    tokens = {
        kind: total("llm_tokens_total", type=kind) for kind in ("prompt", "completion", "cache_read", "reasoning")
    }
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


class _Users(BaseCallbackHandler):
    """The demo's users: they read each answer, and some rate it (down when it states something the shop never said)."""

    run_inline = True

    def __init__(self) -> None:
        self.answers: dict[UUID, str] = {}
        self._lock = threading.Lock()

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is None and isinstance(outputs, str):
            with self._lock:
                self.answers[run_id] = outputs

    def rate(self, monitor: Monitor, *, share: float, seed: int) -> dict[str, int]:
        rng = random.Random(seed)
        ratings = {"up": 0, "down": 0}
        for run_id, answer in sorted(self.answers.items(), key=lambda item: str(item[0])):
            if rng.random() >= share:
                continue
            wrong = any(fact in answer for fact in INVENTED_FACTS)
            if wrong or rng.random() < 0.05:  # a few users are unhappy with right answers too
                monitor.feedback(run_id, score=-1, comment="That is not what your policy page says." if wrong else None)
                ratings["down"] += 1
            else:
                monitor.feedback(run_id, score=1)
                ratings["up"] += 1
        return ratings


def _quality_summary(samples: dict[str, list[Any]], ratings: dict[str, int]) -> str:
    total = functools.partial(_total, samples)

    def mean(criterion: str, sampling: str) -> str:
        count = total("llm_quality_score_count", criterion=criterion, sampling=sampling)
        return f"{total('llm_quality_score_sum', criterion=criterion, sampling=sampling) / count:.2f}" if count else "-"

    random_judged = total("llm_quality_score_count", criterion="faithfulness", sampling="random")
    forced_judged = total("llm_quality_score_count", criterion="faithfulness", sampling="forced")
    flagged = total("llm_quality_hallucination_verdicts_total", sampling="random", verdict="yes")
    reasons = defaultdict(float)
    for s in samples.get("llm_quality_samples_total", ()):
        reasons[s.labels["reason"]] += s.value
    return "\n".join(
        [
            f"  judged        {random_judged:.0f} random sample, {forced_judged:.0f} forced "
            f"({', '.join(f'{n:.0f} {reason}' for reason, n in sorted(reasons.items()) if reason != 'rate') or 'none'})",
            f"  quality       faithfulness {mean('faithfulness', 'random')}, relevance {mean('relevance', 'random')}, "
            f"completeness {mean('completeness', 'random')} (random sample, 1-5); "
            f"hallucinations {flagged:.0f}/{random_judged:.0f}",
            f"  feedback      {ratings['up']} thumbs up, {ratings['down']} thumbs down",
        ]
    )


def run_demo(options: DemoOptions = DemoOptions(), *, echo: Any = print) -> dict[str, Any]:
    """Run the demo end to end; returns what was measured (also used by the tests)."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    log_path = options.out_dir / "demo-log.jsonl"
    store_path = _fresh(options.out_dir / "llmmonitor.db")
    result: dict[str, Any] = {"log_path": log_path, "store_path": store_path}
    with log_path.open("w", encoding="utf-8") as log_file:
        logger = structlog.wrap_logger(
            structlog.WriteLogger(log_file),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(),
            ],
        )
        # The offline judge and no forwarding, even where OPENAI_API_KEY or LANGSMITH_API_KEY are set: a demo spends nothing.
        config = MonitorConfig(langsmith=LangSmithConfig(forward=False))
        monitor = Monitor(
            config, logger=logger, judge=OfflineJudge(), sample_rate=options.sample_rate, store=store_path
        )
        try:
            server = serve_metrics(monitor, port=options.port)
        except OSError:
            server = serve_metrics(monitor, port=0)  # the default port is taken: any free one will do
        echo(f"Serving metrics at {server.url}")
        model = DemoChatModel(
            latency_seconds=options.latency_seconds,
            error_rate=options.error_rate,
            hallucination_rate=options.hallucination_rate,
            seed=options.seed,
        )
        chain = build_chain(model)
        users = _Users()
        echo(
            f"Sending {options.requests} questions through invoke, stream, batch, ainvoke and astream; "
            f"the offline judge scores {options.sample_rate:.0%} of them in the background ..."
        )
        started = time.perf_counter()
        counts = drive(chain, requests=options.requests, callbacks=[monitor, users], seed=options.seed)
        ratings = users.rate(monitor, share=options.feedback_rate, seed=options.seed)
        monitor.flush(60)
        elapsed = time.perf_counter() - started
        samples = scrape(server.url)
        echo(f"Done in {elapsed:.1f} s. Scraped {server.url}:")
        echo(_summary(samples))
        echo(_quality_summary(samples, ratings))
        echo(f"Structured logs: {log_path}")
        echo(f"Store (invocations, judge scores, ratings, LangSmith outbox): {store_path}")
        result.update(counts=counts, samples=samples, metrics_url=server.url, monitor=monitor, ratings=ratings)
        if options.history_weeks:
            result["review"] = _review_of_simulated_history(options, echo)
        if options.keep_serving:
            echo("Still serving /metrics; Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        server.stop()
        monitor.close()
    return result


def _fresh(path: Path) -> Path:
    """A demo starts from an empty store: the previous run's database (and SQLite's side files) are removed."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return path


def _review_of_simulated_history(options: DemoOptions, echo: Any) -> Any:
    """Weeks of simulated traffic (with a slow degradation, by default) in their own store, and their weekly review."""
    from ..review import build_review, generate_history, write_report
    from ..storage.store import Store

    path = _fresh(options.out_dir / "history.db")
    store = Store(path)
    try:
        # generate_history's own seed: a history whose degradation the review catches (as it does ~90% of the time).
        history = generate_history(store, weeks=options.history_weeks, scenario=options.scenario)
        echo(
            f"\nSimulated {options.history_weeks} weeks of history ({options.scenario} scenario): {history.invocations} "
            f"invocations, {history.evaluations} judge evaluations, {history.user_feedback} ratings in {path}"
        )
        review = build_review(store, until=history.end)
        paths = write_report(review, options.out_dir)
    finally:
        store.close()
    echo(f"Weekly review: {review.status.upper()}")
    shown = list(review.highlights[:4])
    shown += [line for line in review.highlights[4:] if line.startswith(review.agreement.reading)]  # judge vs users
    for line in shown:
        echo(f"  - {line}")
    echo(f"Report: {paths.html} (and {paths.markdown.name})")
    return {"review": review, "paths": paths, "history": history}
