"""Every Prometheus metric the monitor exports, created once per registry.

The names here are a contract with the shipped alert rules and Grafana dashboard;
the tests fail when one side changes without the other.
"""

from __future__ import annotations

import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

# LLM latencies: dense below 10 s, exactly 10, and finite buckets above it so that
# histogram_quantile can report a p99 beyond the 10 s alert threshold.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 12.5, 15, 20, 30, 45, 60, 120, float("inf"))
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, float("inf"))
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))
DOCUMENT_BUCKETS = (0, 1, 2, 3, 4, 5, 8, 10, 15, 20, 30, 50, float("inf"))
SCORE_BUCKETS = (1, 2, 3, 4, 5, float("inf"))

_MAX_LABEL_CHARS = 120


class _Counting:
    """A counter or gauge child whose `inc` goes straight to its value.

    prometheus-client's own `inc` first runs two checks in Python (observability, sign) that cannot fail for the
    children built here, on a path that runs a dozen times per invocation. The value object is prometheus-client's
    (`MutexValue`, or `MmapedValue` in multiprocess mode), so exposition is unchanged.
    """

    __slots__ = ("_inc", "_value")

    def __init__(self, value: Any) -> None:
        self._value = value
        self._inc: Callable[[float], None] = value.inc

    def inc(self, amount: float = 1) -> None:
        self._inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._inc(-amount)

    def set(self, amount: float) -> None:
        self._value.set(float(amount))


class _Observing:
    """A histogram child whose `observe` finds its bucket by bisection and updates two values, no more."""

    __slots__ = ("_bounds", "_bucket_incs", "_sum_inc")

    def __init__(self, child: Any) -> None:
        self._sum_inc = child._sum.inc
        self._bucket_incs = tuple(bucket.inc for bucket in child._buckets)
        self._bounds = tuple(child._upper_bounds)

    def observe(self, amount: float) -> None:
        self._sum_inc(amount)
        self._bucket_incs[bisect_left(self._bounds, amount)](1)


def _direct(child: Any) -> Any:
    """The fast form of a metric child when prometheus-client's internals are as expected, else the child itself."""
    try:
        if isinstance(child, Histogram):
            return _Observing(child)
        if isinstance(child, (Counter, Gauge)) and not getattr(child, "_is_most_recent", False):
            return _Counting(child._value)
    except AttributeError:  # another prometheus-client layout: its public methods are always right
        pass
    return child


class _Family:
    """A labelled metric whose children are cached, because `.labels()` costs a lock and a dict build."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = _direct(self.metric.labels(*(v[:_MAX_LABEL_CHARS] for v in values)))
            self._children[values] = child
        return child


class SegmentLabels:
    """Segment keys a user opted in to as labels of the invocation and quality metrics, each holding at most
    `max_values` distinct values in this process: later ones are counted under "other", so the series stay bounded
    whatever the application puts in its metadata. A trace without the key gets "" (Prometheus' "no label")."""

    OTHER = "other"

    def __init__(self, keys: tuple[str, ...] = (), max_values: int = 20) -> None:
        self.keys = keys
        self._max_values = max_values
        self._seen: dict[str, set[str]] = {key: set() for key in keys}
        self._lock = threading.Lock()

    def values(self, segments: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(self._admitted(key, segments.get(key, "")) for key in self.keys)

    def _admitted(self, key: str, value: str) -> str:
        seen = self._seen[key]
        if not value or value in seen:
            return value
        with self._lock:  # a new value: rare, and the bound must hold across threads
            if value in seen or len(seen) < self._max_values:
                seen.add(value)
                return value
        return self.OTHER


class MonitorMetrics:
    """The metric families on one registry; `segment_labels` adds the opted-in segment keys as the last labels of the
    invocation and quality metrics."""

    def __init__(self, registry: CollectorRegistry, segment_labels: SegmentLabels | None = None) -> None:
        self._registry = registry
        self.segment_labels = segment_labels if segment_labels is not None else SegmentLabels()
        self._families: list[Counter | Gauge | Histogram] = []
        self._llm_calls()
        self._invocations_and_steps()
        self._quality()
        self._feedback()
        self._health()

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
        metric = self._register(Counter(name, doc, labels, registry=self._registry))
        return _Family(metric) if labels else _direct(metric)

    def _histogram(self, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> _Family:
        return _Family(self._register(Histogram(name, doc, labels, registry=self._registry, buckets=buckets)))

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] = (), mode: str = "livesum") -> Any:
        metric = self._register(Gauge(name, doc, labels, registry=self._registry, multiprocess_mode=mode))
        return _Family(metric) if labels else _direct(metric)

    def _register(self, metric: Any) -> Any:
        self._families.append(metric)
        return metric

    def families(self) -> tuple[Counter | Gauge | Histogram, ...]:
        """The prometheus-client metrics created here, for checking rules and dashboards against them."""
        return tuple(self._families)

    def _llm_calls(self) -> None:
        """Infrastructure: one LLM or chat-model call."""
        counter, histogram, gauge = self._counter, self._histogram, self._gauge
        self.requests = counter(
            "llm_requests_total", "LLM calls by model and outcome (success, error, cancelled).", ("model", "status")
        )
        self.request_duration = histogram(
            "llm_request_duration_seconds", "LLM call latency.", ("model",), LATENCY_BUCKETS
        )
        self.time_to_first_token = histogram(
            "llm_time_to_first_token_seconds", "Streaming LLM calls: time to the first token.", ("model",), TTFT_BUCKETS
        )
        self.tokens = counter(
            "llm_tokens_total",
            "Tokens by model and type (prompt, completion, cache_read, cache_creation, reasoning).",
            ("model", "type"),
        )
        self.cost = counter("llm_cost_usd_total", "Cost of LLM calls in USD, from the price table.", ("model",))
        self.unpriced = counter(
            "llm_unpriced_requests_total",
            "LLM calls whose model is missing from the price table (cost unknown, not zero).",
            ("model",),
        )
        self.usage_missing = counter(
            "llm_usage_missing_total", "LLM calls for which the provider reported no token usage.", ("model",)
        )
        self.errors = counter("llm_errors_total", "Failed LLM calls by exception type.", ("model", "error_type"))
        self.active = gauge("llm_active_requests", "LLM calls in flight.")
        self.prices = gauge(
            "llm_monitor_prices_info",
            "The prices costs are computed with (1 for the source in use).",
            ("source",),
            "max",
        )

    def _invocations_and_steps(self) -> None:
        """Whole invocations (the root run of each trace), retrievers and tools."""
        counter, histogram, segments = self._counter, self._histogram, self.segment_labels.keys
        self.invocations = counter(
            "llm_invocations_total",
            "Root invocations by name and outcome (success, error, cancelled, interrupted).",
            ("name", "status", *segments),
        )
        self.invocation_duration = histogram(
            "llm_invocation_duration_seconds",
            "End-to-end latency of root invocations.",
            ("name", *segments),
            LATENCY_BUCKETS,
        )

        self.retriever_requests = counter(
            "llm_retriever_requests_total", "Retriever calls by retriever and outcome.", ("retriever", "status")
        )
        self.retriever_duration = histogram(
            "llm_retriever_duration_seconds", "Retriever latency.", ("retriever",), FAST_BUCKETS
        )
        self.retriever_documents = histogram(
            "llm_retriever_documents", "Documents returned per retriever call.", ("retriever",), DOCUMENT_BUCKETS
        )
        self.tool_calls = counter("llm_tool_calls_total", "Tool calls by tool and outcome.", ("tool", "status"))
        self.tool_duration = histogram("llm_tool_duration_seconds", "Tool latency.", ("tool",), FAST_BUCKETS)

    def _quality(self) -> None:
        """Sampled traces scored by a judge off the request path. `sampling` is "random" for the rate-based sample
        (what trends and alerts use) and "forced" for always-evaluate rules."""
        counter, histogram, gauge, segments = self._counter, self._histogram, self._gauge, self.segment_labels.keys
        self.quality_samples = counter(
            "llm_quality_samples_total",
            "Traces chosen for evaluation, by reason (rate, metadata, tag, error, feedback).",
            ("reason",),
        )
        self.quality_score = histogram(
            "llm_quality_score",
            "Judge scores (1-5) by criterion.",
            ("criterion", "judge", "sampling", *segments),
            SCORE_BUCKETS,
        )
        self.hallucination_verdicts = counter(
            "llm_quality_hallucination_verdicts_total",
            "Judge hallucination verdicts (yes, no).",
            ("judge", "sampling", "verdict", *segments),
        )
        self.judge_evaluations = counter(
            "llm_judge_evaluations_total", "Judge evaluations by outcome (success, error, cached).", ("judge", "status")
        )
        self.judge_errors = counter(
            "llm_judge_errors_total",
            "Judge failures by kind (timeout, parse, refusal, rate_limit, api, other).",
            ("judge", "error_type"),
        )
        self.judge_duration = histogram(
            "llm_judge_duration_seconds", "Judge latency per evaluation.", ("judge",), LATENCY_BUCKETS
        )
        self.judge_queue_depth = gauge("llm_judge_queue_depth", "Evaluations waiting for a judge worker.")
        self.judge_dropped = counter(
            "llm_judge_dropped_total", "Evaluations not run, by reason (queue_full, budget, shutdown).", ("reason",)
        )
        self.judge_tokens = counter(
            "llm_judge_tokens_total", "Tokens spent by the judge (not the application).", ("judge", "type")
        )
        self.judge_cost = counter(
            "llm_judge_cost_usd_total", "Cost of the judge in USD (not the application).", ("judge",)
        )

    def _feedback(self) -> None:
        """User feedback and its delivery to LangSmith."""
        counter = self._counter
        self.user_feedback = counter("llm_user_feedback_total", "User feedback received, by rating.", ("rating",))
        self.feedback_delivered = counter(
            "llm_feedback_delivered_total", "Feedback items delivered to LangSmith, by kind (judge, user).", ("kind",)
        )
        self.feedback_delivery_failures = counter(
            "llm_feedback_delivery_failures_total",
            "Failed delivery attempts to LangSmith (retried), by reason.",
            ("reason",),
        )

    def _health(self) -> None:
        """The monitor's own health: its failures, runs it gave up on, records that never reached the store."""
        counter = self._counter
        self.handler_errors = counter(
            "llm_monitor_handler_errors_total",
            "Callback events the monitor failed to process (the chain was not affected).",
            ("event",),
        )
        self.runs_expired = counter(
            "llm_monitor_runs_expired_total",
            "Runs that never ended (cancelled streams, killed tasks) and were aged out.",
            ("kind",),
        )
        self.runs_evicted = counter(
            "llm_monitor_runs_evicted_total",
            "Runs forgotten before they were old enough to expire: the table was full (capacity) or the monitor closed (closed).",
            ("kind", "reason"),
        )
        self.dropped = counter(
            "llm_monitor_dropped_total",
            "Records that never reached the store, by what (invocation, evaluation) and why (queue_full, shutdown, store_error).",
            ("what", "reason"),
        )


_lock = threading.Lock()
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, MonitorMetrics] = weakref.WeakKeyDictionary()


def metrics_for(registry: CollectorRegistry, segment_labels: SegmentLabels | None = None) -> MonitorMetrics:
    """The metrics on `registry`, created on first use so that several monitors can share one registry.

    `segment_labels`: the opted-in segment labels the metrics must have (None: whatever they were created with). A
    registry's metrics have one set of label names, so a monitor asking for other ones is refused.
    """
    with _lock:
        metrics = _by_registry.get(registry)
        if metrics is None:
            metrics = _by_registry[registry] = MonitorMetrics(registry, segment_labels)
        elif segment_labels is not None and segment_labels.keys != metrics.segment_labels.keys:
            raise ValueError(
                f"this registry's metrics have the segment labels {list(metrics.segment_labels.keys)}, not "
                f"{list(segment_labels.keys)}: monitors sharing a registry need the same segments.metric_labels"
            )
        return metrics


class StoreGauges:
    """Backlogs counted in the store when Prometheus scrapes, so every process (and `/readyz`) reports the same number:
    feedback not yet delivered to LangSmith, and judge jobs not yet judged. Counts are reused for `max_age` seconds; a
    store that cannot be read yields no sample rather than a stale one."""

    def __init__(
        self, *, outbox_pending: Callable[[], int], jobs_pending: Callable[[], int], max_age: float = 1.0
    ) -> None:
        self._counts = {
            "llm_feedback_outbox_pending": (
                "Feedback items stored but not yet delivered to LangSmith.",
                outbox_pending,
            ),
            "llm_judge_jobs_pending": ("Judge jobs stored but not yet judged, in every process.", jobs_pending),
        }
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, int]] | None = None

    def register(self, registry: CollectorRegistry) -> None:
        """Expose the counts on `registry`; a registry that already has them (another store) keeps those."""
        try:
            registry.register(self)
        except ValueError:  # duplicated timeseries
            pass

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, help_text) for name, (help_text, _) in self._counts.items()]

    def collect(self) -> list[GaugeMetricFamily]:
        families = []
        for name, count in self._read().items():
            family = GaugeMetricFamily(name, self._counts[name][0])
            family.add_metric([], count)
            families.append(family)
        return families

    def _read(self) -> dict[str, int]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self._max_age:
                return self._cached[1]
            counts = {}
            for name, (_, count) in self._counts.items():
                try:
                    counts[name] = count()
                except Exception:  # noqa: BLE001 - an unreachable store shows as a gap, not as a stale number
                    continue
            self._cached = (now, counts)
            return counts
