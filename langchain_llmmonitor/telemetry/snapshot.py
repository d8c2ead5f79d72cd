"""`Monitor.snapshot()`: the monitor's metrics as numbers, read from its registry, for a notebook, a test or a script.

It reads `registry.collect()`, the objects Prometheus' exposition is written from, so nothing is scraped or parsed and
a snapshot costs about what one scrape of the registry does. It shows this process only (what this registry counted
since it was created), not a fleet: for that, query Prometheus.

Latency percentiles are estimates: the histograms keep counts per bucket, not the latencies, so a percentile is
interpolated linearly inside the bucket that holds it, as PromQL's `histogram_quantile` does (a p99 in the 5-7.5 s
bucket is somewhere in 5-7.5 s). Counts, sums, means, tokens and cost are exact.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from ..core.plain import to_plain
from ..core.vocabulary import CRITERIA, ERROR, RANDOM
from ..frames import require_pandas
from . import _snapshot_view

Labels = Mapping[str, str]
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds. `count` and `mean` are exact; p50, p95 and p99 are estimated from the histogram's buckets (linear
    inside the bucket that holds them, like `histogram_quantile`). None when nothing was observed."""

    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class ModelStats:
    """The LLM calls of one model: outcomes, latency, time to first token (streamed calls), tokens and cost."""

    model: str
    calls: Mapping[str, int]
    """By status: success, error, cancelled."""
    errors: Mapping[str, int]
    """Failed calls by exception type."""
    latency: Latency
    time_to_first_token: Latency
    tokens: Mapping[str, int]
    """By type: prompt, completion, cache_read, cache_creation, reasoning."""
    cost_usd: float
    unpriced_calls: int
    """Calls of a model missing from the price table: their cost is unknown, not zero."""

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def error_rate(self) -> float | None:
        return _share(self.calls.get(ERROR, 0), self.total)


@dataclass(frozen=True, slots=True)
class ChainStats:
    """The root invocations of one name (a chain, graph or agent): outcomes and end-to-end latency."""

    name: str
    runs: Mapping[str, int]
    """By status: success, error, cancelled, interrupted."""
    latency: Latency

    @property
    def total(self) -> int:
        return sum(self.runs.values())

    @property
    def error_rate(self) -> float | None:
        return _share(self.runs.get(ERROR, 0), self.total)


@dataclass(frozen=True, slots=True)
class QualityStats:
    """One judge's verdicts on one kind of sample: "random" (what trends and alerts use) or "forced" (judged because
    something already looked wrong, so lower by construction)."""

    judge: str
    sampling: str
    evaluations: int
    """Successful evaluations, counted by their hallucination verdicts."""
    mean_scores: Mapping[str, float | None]
    """Mean 1-5 score per criterion."""
    hallucination_rate: float | None


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """What one monitor has counted so far, in numbers: LLM calls, invocations, latency, tokens, cost, judge scores,
    user feedback and the monitor's own health. Shown as a table in Jupyter; `to_dict()` for scripts."""

    taken_at: datetime
    models: tuple[ModelStats, ...]
    chains: tuple[ChainStats, ...]
    llm_latency: Latency
    """All models' calls together."""
    time_to_first_token: Latency
    invocation_latency: Latency
    quality: tuple[QualityStats, ...]
    mean_scores: Mapping[str, float | None]
    """Random samples of every judge: mean 1-5 score per criterion."""
    hallucination_rate: float | None
    """Random samples of every judge: the share judged hallucinated."""
    judge_evaluations: Mapping[str, int]
    """By status: success, error, cached."""
    judge_errors: Mapping[str, int]
    judge_cost_usd: float
    quality_samples: Mapping[str, int]
    """Traces chosen for judging, by reason (rate, metadata, tag, error, feedback)."""
    user_feedback: Mapping[str, int]
    """Ratings received, by rating."""
    active_requests: int
    judge_queue_depth: int
    dropped: Mapping[str, int]
    """Records that never reached the store ("invocation/queue_full") and evaluations not run ("judge/budget")."""
    handler_errors: int
    outbox_pending: int | None
    """Feedback stored but not yet delivered to LangSmith (None without a store)."""
    judge_jobs_pending: int | None

    @property
    def llm_calls(self) -> dict[str, int]:
        """All models' calls by status."""
        return _merged(model.calls for model in self.models)

    @property
    def llm_error_rate(self) -> float | None:
        calls = self.llm_calls
        return _share(calls.get(ERROR, 0), sum(calls.values()))

    @property
    def invocations(self) -> dict[str, int]:
        """All root invocations by status."""
        return _merged(chain.runs for chain in self.chains)

    @property
    def invocation_error_rate(self) -> float | None:
        runs = self.invocations
        return _share(runs.get(ERROR, 0), sum(runs.values()))

    @property
    def tokens(self) -> dict[str, int]:
        """All models' tokens by type."""
        return _merged(model.tokens for model in self.models)

    @property
    def cost_usd(self) -> float:
        """The priced calls' cost; `unpriced_calls` says how many calls it leaves out."""
        return sum(model.cost_usd for model in self.models)

    @property
    def unpriced_calls(self) -> int:
        return sum(model.unpriced_calls for model in self.models)

    def to_dict(self) -> dict[str, Any]:
        """JSON types: datetimes as ISO 8601, the totals above included."""
        plain = to_plain(self)
        for name in ("llm_calls", "llm_error_rate", "invocations", "invocation_error_rate", "tokens", "cost_usd"):
            plain[name] = getattr(self, name)
        plain["unpriced_calls"] = self.unpriced_calls
        return plain

    def to_frame(self) -> Any:
        """A pandas DataFrame with one row per model (the `frames` extra)."""
        pd = require_pandas()
        rows = _snapshot_view.model_rows(self)
        return pd.DataFrame(rows, columns=list(_snapshot_view.MODEL_COLUMNS)).set_index("model")

    def __str__(self) -> str:
        return _snapshot_view.to_text(self)

    def _repr_html_(self) -> str:
        return _snapshot_view.to_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(_snapshot_view.to_text(self))


def read_snapshot(registry: CollectorRegistry) -> MetricsSnapshot:
    """The monitor metrics on `registry` now; metrics that are absent (never created or never touched) read as zero."""
    samples = _Samples(registry)
    models = sorted({labels["model"] for labels, _ in samples.named("llm_requests_total")})
    chains = sorted({labels["name"] for labels, _ in samples.named("llm_invocations_total")})
    return MetricsSnapshot(
        taken_at=datetime.now(UTC),
        models=tuple(_model_stats(samples, model) for model in models),
        chains=tuple(
            ChainStats(
                name=name,
                runs=samples.counts("llm_invocations_total", "status", name=name),
                latency=samples.latency("llm_invocation_duration_seconds", name=name),
            )
            for name in chains
        ),
        llm_latency=samples.latency("llm_request_duration_seconds"),
        time_to_first_token=samples.latency("llm_time_to_first_token_seconds"),
        invocation_latency=samples.latency("llm_invocation_duration_seconds"),
        quality=_quality_stats(samples),
        mean_scores=_mean_scores(samples, sampling=RANDOM),
        hallucination_rate=_hallucination_rate(samples, sampling=RANDOM),
        judge_evaluations=samples.counts("llm_judge_evaluations_total", "status"),
        judge_errors=samples.counts("llm_judge_errors_total", "error_type"),
        judge_cost_usd=samples.total("llm_judge_cost_usd_total"),
        quality_samples=samples.counts("llm_quality_samples_total", "reason"),
        user_feedback=samples.counts("llm_user_feedback_total", "rating"),
        active_requests=int(samples.total("llm_active_requests")),
        judge_queue_depth=int(samples.total("llm_judge_queue_depth")),
        dropped=_dropped(samples),
        handler_errors=int(samples.total("llm_monitor_handler_errors_total")),
        outbox_pending=samples.optional_count("llm_feedback_outbox_pending"),
        judge_jobs_pending=samples.optional_count("llm_judge_jobs_pending"),
    )


def _model_stats(samples: _Samples, model: str) -> ModelStats:
    return ModelStats(
        model=model,
        calls=samples.counts("llm_requests_total", "status", model=model),
        errors=samples.counts("llm_errors_total", "error_type", model=model),
        latency=samples.latency("llm_request_duration_seconds", model=model),
        time_to_first_token=samples.latency("llm_time_to_first_token_seconds", model=model),
        tokens=samples.counts("llm_tokens_total", "type", model=model),
        cost_usd=samples.total("llm_cost_usd_total", model=model),
        unpriced_calls=int(samples.total("llm_unpriced_requests_total", model=model)),
    )


def _quality_stats(samples: _Samples) -> tuple[QualityStats, ...]:
    verdicts = samples.counts_by("llm_quality_hallucination_verdicts_total", "judge", "sampling")
    scored = {(labels["judge"], labels["sampling"]) for labels, _ in samples.named("llm_quality_score_count")}
    return tuple(
        QualityStats(
            judge=judge,
            sampling=sampling,
            evaluations=verdicts.get((judge, sampling), 0),
            mean_scores=_mean_scores(samples, judge=judge, sampling=sampling),
            hallucination_rate=_hallucination_rate(samples, judge=judge, sampling=sampling),
        )
        for judge, sampling in sorted(set(verdicts) | scored)
    )


def _mean_scores(samples: _Samples, **labels: str) -> dict[str, float | None]:
    return {criterion: samples.mean("llm_quality_score", criterion=criterion, **labels) for criterion in CRITERIA}


def _dropped(samples: _Samples) -> dict[str, int]:
    """Records the store never got ("what/reason") and evaluations never run ("judge/reason")."""
    stored = samples.counts_by("llm_monitor_dropped_total", "what", "reason")
    judged = samples.counts("llm_judge_dropped_total", "reason")
    return {**{"/".join(key): n for key, n in stored.items()}, **{f"judge/{reason}": n for reason, n in judged.items()}}


def _hallucination_rate(samples: _Samples, **labels: str) -> float | None:
    verdicts = samples.counts("llm_quality_hallucination_verdicts_total", "verdict", **labels)
    return _share(verdicts.get("yes", 0), sum(verdicts.values()))


class _Samples:
    """Every sample the registry yields, by sample name, read once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._by_name: defaultdict[str, list[tuple[Labels, float]]] = defaultdict(list)
        for family in registry.collect():
            for sample in family.samples:
                self._by_name[sample.name].append((sample.labels, sample.value))

    def named(self, name: str, /, **labels: str) -> list[tuple[Labels, float]]:
        """The samples of `name` whose labels include `labels` (positional-only names: a label may be called `name`)."""
        return [(have, value) for have, value in self._by_name.get(name, ()) if _matches(have, labels)]

    def total(self, name: str, /, **labels: str) -> float:
        return sum(value for _, value in self.named(name, **labels))

    def counts(self, name: str, by: str, /, **labels: str) -> dict[str, int]:
        """Counts summed by one label's values, in `_ORDER` (success and error first), zeros left out."""
        summed = {key[0]: n for key, n in self.counts_by(name, by, **labels).items()}
        return dict(sorted(summed.items(), key=lambda item: _order(item[0])))

    def counts_by(self, name: str, /, *by: str, **labels: str) -> dict[tuple[str, ...], int]:
        summed: defaultdict[tuple[str, ...], float] = defaultdict(float)
        for have, value in self.named(name, **labels):
            summed[tuple(have.get(label, "") for label in by)] += value
        return {key: round(value) for key, value in sorted(summed.items()) if value}

    def optional_count(self, name: str) -> int | None:
        found = self.named(name)
        return int(sum(value for _, value in found)) if found else None

    def mean(self, histogram: str, /, **labels: str) -> float | None:
        count = self.total(f"{histogram}_count", **labels)
        return self.total(f"{histogram}_sum", **labels) / count if count else None

    def latency(self, histogram: str, /, **labels: str) -> Latency:
        """The histogram's children matching `labels`, buckets summed, as a `Latency`."""
        cumulative: defaultdict[float, float] = defaultdict(float)
        for have, value in self.named(f"{histogram}_bucket", **labels):
            cumulative[float(have["le"])] += value
        buckets = sorted(cumulative.items())
        count = round(self.total(f"{histogram}_count", **labels))
        quantiles = [histogram_quantile(q, buckets) for q in QUANTILES]
        return Latency(count, self.mean(histogram, **labels), *quantiles)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile (0 < q < 1) of cumulative `(upper bound, count)` buckets ending at +Inf, like PromQL's
    `histogram_quantile`: linear inside the bucket that holds it (the first one from 0), and the highest finite bound
    when it falls into +Inf. None for an empty histogram."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            if bound <= 0:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower


_ORDER = ("success", "error", "cancelled", "interrupted", "cached", "positive", "negative", "prompt", "completion")


def _order(value: str) -> tuple[int, str]:
    return (_ORDER.index(value) if value in _ORDER else len(_ORDER), value)


def _matches(have: Labels, want: Mapping[str, str]) -> bool:
    return all(have.get(name) == value for name, value in want.items())


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _merged(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    merged: defaultdict[str, int] = defaultdict(int)
    for mapping in counts:
        for key, n in mapping.items():
            merged[key] += n
    return dict(sorted(merged.items(), key=lambda item: _order(item[0])))
