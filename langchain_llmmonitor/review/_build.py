"""Assemble a weekly review from the store (and optionally LangSmith): verdicts, trends, feedback, worst answers, usage.

Choices, and why:
* One family of verdicts. Faithfulness, relevance, completeness and the hallucination rate are each tested at
  `alpha / 4`, so a stable week gets *any* "degraded" with probability <= `alpha` (Bonferroni; the criteria are
  correlated in practice, which makes it conservative). Four verdicts at 5% each would cry wolf in ~1 week in 5;
  measured on whole simulated reviews: 4.5% of stable weeks get any "degraded". The price, at 150 random samples a
  week (benchmarks/review_false_alarms.py): a 4.2 -> 3.9 faithfulness drop is caught in its first week 86% of the
  time instead of 96% (94% / 99% within two weeks), a 5% -> 10% hallucination rate 48% instead of 69%.
* Segments (`_segments`): the same verdicts per value of each stored dimension (app_version, model, ...) that has
  two values or more with enough samples this period, so a regression in one release is not diluted by the rest of the traffic. When any
  is tested, half of `alpha` goes to the segment verdicts (split evenly) and half to the overall four; otherwise the
  overall four keep all of it.
* History: the baseline is the `baseline_weeks` periods before the window, but twice that many periods are loaded so
  that the verdict procedure can skip earlier periods that were already degraded (see `_drift`).
* User ratings are described (rate and 95% Wilson interval, this period and baseline), not tested: raters are
  self-selected and volumes small, so a verdict would mostly say "not enough samples" and cost the quality verdicts
  power if it shared their alpha.
* Judge-human agreement (`_agreement`): on runs both judged and rated, how often the judge's flag (hallucination or
  faithfulness <= 2) matches the user's thumbs-down, this period against the baseline; descriptive too, so a reader can
  tell a drifting app (judge and users agree it got worse) from a drifting judge (they stop agreeing).
* Worst samples: the period's evaluations (random and forced) ranked by the mean of their 1-5 scores, a
  hallucination counting one point off.
* Usage (traffic, errors, tokens, cost, latency percentiles) comes from the local store's invocations only; LangSmith
  contributes judge scores and ratings, not traffic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.feedback import judge_feedback_id
from ..core.records import EvaluationRecord, UserFeedbackRecord, utcnow
from ..core.vocabulary import SCORE_KEYS
from ..storage.store import Store
from ._agreement import judge_human_agreement
from ._drift import DEFAULT_MIN_SAMPLES, DriftAssessment, JudgeChange, Sample, _mean_and_interval, daily_trend
from ._model import (
    CRITERIA,
    CriterionReview,
    CriterionSpec,
    Distribution,
    FeedbackComment,
    ForcedSummary,
    Review,
    SegmentCriterion,
    SegmentReview,
    Sources,
    Status,
    UsageStats,
    UsageSummary,
    UserFeedbackSummary,
    WorstSample,
)
from ._records import (
    Judged,
    Rating,
    RunLinker,
    judged_from_store,
    rating_from_store,
)
from ._segments import SEGMENT_SHARE_OF_ALPHA, assess_judged, find_releases, plan_segments, review_segments

if TYPE_CHECKING:
    from ._langsmith import RemoteData

HISTORY_FACTOR = 2
MAX_COMMENTS = 10
_SCORE_NAMES = tuple(spec.name for spec in CRITERIA if spec.kind == "score")


def build_review(
    store: Store | str | Path,
    *,
    since: timedelta = timedelta(days=7),
    until: datetime | None = None,
    baseline_weeks: int = 4,
    langsmith_client: Any = None,
    project: str | None = None,
    alpha: float = 0.05,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    worst: int = 10,
    langsmith_url: str | None = None,
    run_url_template: str | None = None,
    progress: bool | None = None,
    seed: int = 0,
) -> Review:
    """Review [until - since, until) against the `baseline_weeks` periods of the same length before it.

    `store` is a Store, or a path / URL opened and closed here. With `langsmith_client` (and `project`), scores and
    ratings found only in LangSmith are merged and runs are linked, at `langsmith_url` (default: the client's web
    URL); without, runs are shown by id unless `run_url_template` says where they are. `progress`: tqdm bars on stderr for the
    LangSmith reads (None: only on a terminal). The result depends only on the data and `seed`.
    """
    until = until or utcnow()
    _check_arguments(until, since, baseline_weeks, alpha, langsmith_client, project)
    window_start = until - since
    display_start = window_start - baseline_weeks * since
    history_start = window_start - HISTORY_FACTOR * baseline_weeks * since
    local = _read_store(store, history_start, window_start, display_start, until, since)
    remote = _read_langsmith(langsmith_client, project, history_start, until, local, progress)
    judged = local.judged + (remote.judged if remote is not None else [])
    ratings = local.ratings + (remote.ratings if remote is not None else [])
    linker = _run_linker(langsmith_client, langsmith_url, run_url_template, project, remote)

    verdicts = _verdicts(judged, window_start, display_start, until, baseline_weeks, alpha, min_samples, seed)
    criteria, segments = verdicts.criteria, verdicts.segments
    in_window = [j for j in judged if window_start <= j.at < until]
    feedback = _user_feedback(ratings, window_start, display_start, until, linker)
    agreement = judge_human_agreement(
        judged,
        ratings,
        window_start=window_start,
        display_start=display_start,
        until=until,
        criteria=criteria,
        linker=linker,
    )
    worst_samples = _worst(in_window, worst, linker)
    review = Review(
        generated_at=utcnow(),
        window_start=window_start,
        window_end=until,
        display_start=display_start,
        baseline_weeks=baseline_weeks,
        alpha=alpha,
        verdict_alpha=verdicts.verdict_alpha,
        status=_status(criteria, segments),
        highlights=(),
        criteria=criteria,
        segments=segments,
        segment_alpha=verdicts.segment_alpha,
        releases=find_releases(judged, display_start=display_start, until=until),
        judge_changes=_judge_changes(criteria),
        forced=_forced(in_window, criteria),
        user_feedback=feedback,
        agreement=agreement,
        worst_samples=worst_samples,
        usage=local.usage,
        sources=_sources(local, display_start, project, remote, linker),
    )
    return replace(review, highlights=tuple(_highlights(review)))


def _check_arguments(
    until: datetime, since: timedelta, baseline_weeks: int, alpha: float, langsmith_client: Any, project: str | None
) -> None:
    """Fail before reading anything, rather than after a long LangSmith read."""
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware")
    if since <= timedelta(0) or baseline_weeks < 1 or not 0 < alpha < 1:
        raise ValueError("since must be positive, baseline_weeks >= 1 and alpha in (0, 1)")
    if langsmith_client is not None and not project:
        raise ValueError("reading LangSmith needs the project name")


@dataclass(frozen=True)
class _Verdicts:
    criteria: tuple[CriterionReview, ...]
    segments: tuple[SegmentReview, ...]
    verdict_alpha: float
    segment_alpha: float | None


def _verdicts(
    judged: Sequence[Judged],
    window_start: datetime,
    display_start: datetime,
    until: datetime,
    baseline_weeks: int,
    alpha: float,
    min_samples: int,
    seed: int,
) -> _Verdicts:
    """The overall verdicts and each tested segment's, sharing `alpha` (half to the segments when there are any)."""
    plan = plan_segments(
        judged, baseline_start=display_start, window_start=window_start, until=until, min_samples=min_samples
    )
    segment_alpha = alpha * SEGMENT_SHARE_OF_ALPHA / (len(plan) * len(CRITERIA)) if plan else None
    verdict_alpha = alpha * (1 - SEGMENT_SHARE_OF_ALPHA if plan else 1) / len(CRITERIA)
    criteria = tuple(
        _criterion(spec, judged, window_start, display_start, until, baseline_weeks, verdict_alpha, min_samples, seed)
        for spec in CRITERIA
    )
    segments = review_segments(
        plan,
        judged,
        CRITERIA,
        window_start=window_start,
        until=until,
        baseline_weeks=baseline_weeks,
        alpha=segment_alpha or alpha,
        min_samples=min_samples,
        seed=seed,
    )
    return _Verdicts(criteria, segments, verdict_alpha, segment_alpha)


@dataclass(frozen=True)
class _StoreRecords:
    """What the review needs from the local store: raw records (for counts and LangSmith dedup) and their views."""

    location: str
    evaluations: list[EvaluationRecord]
    user_feedback: list[UserFeedbackRecord]
    judged: list[Judged]
    ratings: list[Rating]
    usage: UsageSummary
    invocations: int


def _read_store(
    store: Store | str | Path,
    history_start: datetime,
    window_start: datetime,
    display_start: datetime,
    until: datetime,
    period: timedelta,
) -> _StoreRecords:
    """Read everything in one go, so that a store opened from a path or URL is closed before the analysis."""
    with _opened(store) as db:
        evaluations = list(db.evaluations(history_start, until))
        user_feedback = list(db.user_feedback(history_start, until))
        usage, invocations = _usage(db, evaluations, window_start, display_start, until, period)
        location = db.location
    return _StoreRecords(
        location=location,
        evaluations=evaluations,
        user_feedback=user_feedback,
        judged=[judged_from_store(record) for record in evaluations if record.status == "success"],
        ratings=[rating_from_store(record) for record in user_feedback],
        usage=usage,
        invocations=invocations,
    )


def _read_langsmith(
    client: Any,
    project: str | None,
    history_start: datetime,
    until: datetime,
    local: _StoreRecords,
    progress: bool | None,
) -> RemoteData | None:
    """Scores and ratings only LangSmith has (None without a client); ids the store holds are skipped, not doubled."""
    if client is None:
        return None
    from ._langsmith import fetch

    known = {judge_feedback_id(record.id, key) for record in local.evaluations for key in SCORE_KEYS}
    known |= {record.id for record in local.user_feedback}
    return fetch(client, project, history_start, until, known_ids=known, progress=progress)


def _run_linker(
    client: Any, langsmith_url: str | None, template: str | None, project: str | None, remote: RemoteData | None
) -> RunLinker:
    """Links need the tenant and project ids that only a LangSmith read returns, and the web app of that LangSmith:
    the caller's `langsmith_url`, else the client's (`Client._host_url`, what `Client.get_run_url` links with)."""
    if remote is None:
        return RunLinker(template=template, default_project=project)
    return RunLinker(
        langsmith_url or getattr(client, "_host_url", None),
        template=template,
        tenant_id=remote.tenant_id,
        project_ids={project: remote.project_id} if remote.project_id else None,
        default_project=project,
    )


def _status(criteria: Sequence[CriterionReview], segments: Sequence[SegmentReview]) -> Status:
    """One word for the whole review: degraded if any criterion is, overall or in a segment; unknown only if every
    overall criterion lacks samples."""
    verdicts = [criterion.verdict for criterion in criteria]
    if "degraded" in verdicts or any(segment.status == "degraded" for segment in segments):
        return "degraded"
    if all(verdict == "not_enough_samples" for verdict in verdicts):
        return "not_enough_samples"
    return "ok"


def _judge_changes(criteria: Sequence[CriterionReview]) -> tuple[JudgeChange, ...]:
    """Every criterion sees the same judge switch; list each switch once, oldest first."""
    unique_changes = {(c.at, c.previous_key, c.judge_key): c for r in criteria for c in r.assessment.judge_changes}
    return tuple(sorted(unique_changes.values(), key=lambda change: change.at))


def _sources(
    local: _StoreRecords,
    display_start: datetime,
    project: str | None,
    remote: RemoteData | None,
    linker: RunLinker,
) -> Sources:
    """Where the numbers came from. Call it after every run link is made: one left unlinked makes them partial."""
    return Sources(
        store=local.location,
        evaluations=sum(1 for record in local.evaluations if record.created_at >= display_start),
        user_feedback=sum(1 for record in local.user_feedback if record.created_at >= display_start),
        invocations=local.invocations,
        langsmith_project=project if remote is not None else None,
        langsmith_runs=remote.runs if remote else 0,
        langsmith_feedback_merged=remote.merged if remote else 0,
        langsmith_feedback_already_local=remote.already_local if remote else 0,
        langsmith_feedback_other_keys=remote.other_keys if remote else 0,
        run_links=linker.quality,
    )


@contextmanager
def _opened(store: Store | str | Path) -> Iterator[Store]:
    """The caller's store as it is, or one opened from a path or URL and closed afterwards."""
    if isinstance(store, Store):
        yield store
        return
    opened = Store(store)
    try:
        yield opened
    finally:
        opened.close()


def _criterion(
    spec: CriterionSpec,
    judged: Sequence[Judged],
    window_start: datetime,
    display_start: datetime,
    until: datetime,
    baseline_weeks: int,
    alpha: float,
    min_samples: int,
    seed: int,
) -> CriterionReview:
    samples, assessment = assess_judged(
        spec,
        judged,
        window_start=window_start,
        until=until,
        baseline_weeks=baseline_weeks,
        alpha=alpha,
        min_samples=min_samples,
        seed=seed,
    )
    forced_as_plain = [replace(s, forced=False) for s in samples if s.forced]
    return CriterionReview(
        name=spec.name,
        label=spec.label,
        kind=spec.kind,
        direction=spec.direction,
        assessment=assessment,
        trend=tuple(daily_trend(samples, start=display_start, end=until, kind=spec.kind)),
        forced_trend=tuple(daily_trend(forced_as_plain, start=display_start, end=until, kind=spec.kind)),
        distribution=_distribution(samples, assessment, spec, window_start, until),
    )


def _distribution(
    samples: Sequence[Sample], assessment: DriftAssessment, spec: CriterionSpec, window_start: datetime, until: datetime
) -> Distribution:
    """The values the verdict compared: random samples of the current judge, this period and in the baseline used."""
    compared = [s for s in samples if not s.forced and s.judge_key == assessment.judge_key]
    current = [s.value for s in compared if window_start <= s.timestamp < until]
    baseline = [s.value for s in compared if any(a <= s.timestamp < b for a, b in assessment.baseline_periods)]
    values = (1.0, 2.0, 3.0, 4.0, 5.0) if spec.kind == "score" else (0.0, 1.0)
    labels = ("1", "2", "3", "4", "5") if spec.kind == "score" else ("no", "yes")
    current_counts, baseline_counts = Counter(current), Counter(baseline)
    return Distribution(
        levels=labels,
        current=tuple(current_counts[v] for v in values),
        baseline=tuple(baseline_counts[v] for v in values),
    )


def _forced(in_window: Sequence[Judged], criteria: Sequence[CriterionReview]) -> ForcedSummary:
    forced = [j for j in in_window if j.forced]
    by_name = {criterion.name: criterion.assessment for criterion in criteria}
    return ForcedSummary(
        n=len(forced),
        by_reason=dict(sorted(Counter(j.sample_reason for j in forced).items())),
        mean_scores={name: by_name[name].forced_mean for name in _SCORE_NAMES},
        hallucination_rate=by_name["hallucination"].forced_mean,
    )


def _rate(ratings: Sequence[Rating]) -> tuple[float | None, float | None, float | None]:
    return _mean_and_interval(np.array([float(r.negative) for r in ratings]), "rate")


def _user_feedback(
    ratings: Sequence[Rating], window_start: datetime, display_start: datetime, until: datetime, linker: RunLinker
) -> UserFeedbackSummary:
    current = [r for r in ratings if window_start <= r.at < until]
    baseline = [r for r in ratings if display_start <= r.at < window_start]
    rate, low, high = _rate(current)
    baseline_rate, baseline_low, baseline_high = _rate(baseline)
    with_comment = sorted((r for r in current if r.comment), key=lambda r: (not r.negative, -r.at.timestamp()))
    comments = tuple(
        FeedbackComment(
            at=r.at,
            rating=r.rating,
            negative=r.negative,
            comment=r.comment or "",
            run_id=r.run_id,
            trace_id=r.trace_id,
            url=linker.url(r.run_id, r.trace_id, r.project),
            source=r.source,
        )
        for r in with_comment[:MAX_COMMENTS]
    )
    as_samples = [Sample(r.at, float(r.negative), "user") for r in ratings]
    return UserFeedbackSummary(
        n=len(current),
        negative=sum(r.negative for r in current),
        rate=rate,
        ci_low=low,
        ci_high=high,
        baseline_n=len(baseline),
        baseline_negative=sum(r.negative for r in baseline),
        baseline_rate=baseline_rate,
        baseline_ci_low=baseline_low,
        baseline_ci_high=baseline_high,
        trend=tuple(daily_trend(as_samples, start=display_start, end=until, kind="rate")),
        comments=comments,
        from_langsmith=sum(1 for r in ratings if r.source == "langsmith" and display_start <= r.at < until),
    )


def _worst(in_window: Sequence[Judged], limit: int, linker: RunLinker) -> tuple[WorstSample, ...]:
    def badness(j: Judged) -> tuple[float, float]:
        scores = [j.scores[name] for name in _SCORE_NAMES if name in j.scores]
        mean = sum(scores) / len(scores) if scores else 5.0
        return mean - j.scores.get("hallucination", 0.0), -j.at.timestamp()

    ranked = sorted((j for j in in_window if j.scores), key=badness)[:limit]
    return tuple(
        WorstSample(
            at=j.at,
            run_id=j.run_id,
            trace_id=j.trace_id,
            project=j.project,
            sampling=j.sampling,
            sample_reason=j.sample_reason,
            judge_key=j.judge_key,
            faithfulness=j.scores.get("faithfulness"),
            relevance=j.scores.get("relevance"),
            completeness=j.scores.get("completeness"),
            hallucination=None if "hallucination" not in j.scores else bool(j.scores["hallucination"]),
            reason=j.reason,
            question=j.question,
            answer=j.answer,
            url=linker.url(j.run_id, j.trace_id, j.project),
            source=j.source,
            segments=j.segments,
        )
        for j in ranked
    )


class _Usage:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.invocations = self.errors = self.prompt_tokens = self.completion_tokens = self.unpriced = 0
        self.cost = 0.0
        self.judge_evaluations = self.judge_errors = 0
        self.judge_cost = 0.0

    def stats(self, periods: int = 1) -> UsageStats:
        percentiles: Iterable[float | None] = (
            np.percentile(self.latencies, [50, 90, 95, 99]).tolist() if self.latencies else (None,) * 4
        )
        p50, p90, p95, p99 = percentiles
        return UsageStats(
            invocations=self.invocations / periods,
            errors=self.errors / periods,
            error_rate=self.errors / self.invocations if self.invocations else None,
            prompt_tokens=self.prompt_tokens / periods,
            completion_tokens=self.completion_tokens / periods,
            cost_usd=self.cost / periods,
            unpriced=self.unpriced / periods,
            latency_p50=p50,
            latency_p90=p90,
            latency_p95=p95,
            latency_p99=p99,
            judge_evaluations=self.judge_evaluations / periods,
            judge_errors=self.judge_errors / periods,
            judge_cost_usd=self.judge_cost / periods,
        )


def _usage(
    store: Store,
    evaluations: Sequence[Any],
    window_start: datetime,
    display_start: datetime,
    until: datetime,
    period: timedelta,
) -> tuple[UsageSummary, int]:
    """This period's totals; the baseline's as averages over the baseline periods that saw any traffic."""
    current, baseline = _Usage(), _Usage()
    busy_periods: set[int] = set()
    for record in store.invocations(display_start, until):
        usage = current if record.started_at >= window_start else baseline
        if usage is baseline:
            busy_periods.add((window_start - record.started_at) // period)
        usage.invocations += 1
        usage.errors += record.status == "error"
        usage.prompt_tokens += record.prompt_tokens
        usage.completion_tokens += record.completion_tokens
        if record.cost_usd is None:
            usage.unpriced += 1
        else:
            usage.cost += record.cost_usd
        usage.latencies.append(record.latency_s)
    for record in evaluations:
        if record.created_at < display_start:
            continue
        usage = current if record.created_at >= window_start else baseline
        usage.judge_evaluations += 1
        usage.judge_errors += record.status == "error"
        usage.judge_cost += record.judge_cost_usd or 0.0
    periods = len(busy_periods)
    summary = UsageSummary(
        current=current.stats(), baseline=baseline.stats(periods) if periods else None, baseline_periods=periods
    )
    return summary, current.invocations + baseline.invocations


def _day(moment: datetime) -> str:
    return f"{moment:%b} {moment.day}"


def _highlights(review: Review) -> list[str]:
    """What changed and what to look at, most urgent first."""
    word = review.period_word
    lines: list[str] = []
    by_verdict: dict[str, list[CriterionReview]] = {}
    for criterion in review.criteria:
        by_verdict.setdefault(criterion.verdict, []).append(criterion)
    for criterion in by_verdict.get("degraded", []):
        signal = criterion.assessment.chart_signal_at
        focus = f", especially from {_day(signal)} on" if signal else ""
        lines.append(
            f"{criterion.label} DEGRADED: {criterion.summary}. Look at the lowest-scored answers below{focus}."
        )
    lines += _segment_lines(review)
    for release in review.releases:
        if review.window_start <= release.at < review.window_end:
            lines.append(
                f"New {release.key} {release.value} first seen on {_day(release.at)} ({release.at:%H:%M} UTC)."
            )
    shown = [c for c in review.judge_changes if review.display_start <= c.at < review.window_end]
    for change in shown:
        lines.append(
            f"Judge changed on {_day(change.at)} ({change.at:%H:%M} UTC) from {change.previous_key} to "
            f"{change.judge_key}: scores of different judges are never compared, so baselines restart there."
        )
    for criterion in review.criteria:
        for note in criterion.assessment.notes:
            if note.startswith("left out of the baseline"):
                lines.append(f"{criterion.label}: {note}.")
    for criterion in by_verdict.get("improved", []):
        lines.append(f"{criterion.label} improved: {criterion.summary}.")
    for criterion in by_verdict.get("not_enough_samples", []):
        lines.append(f"{criterion.label}: {criterion.summary}.")
    stable = by_verdict.get("stable", [])
    if stable:
        parts = [_level_change(c) for c in stable]
        lines.append(
            f"No significant change: {', '.join(parts)} (each tested at alpha {review.verdict_alpha:.4g}, "
            f"{review.alpha:g} across all {_verdict_count(review)} verdicts)."
        )
    lines.append(_feedback_line(review.user_feedback, word))
    lines.append(" ".join(filter(None, (review.agreement.reading, review.agreement.hint))))
    if review.forced.n:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in review.forced.by_reason.items())
        faithfulness = review.forced.mean_scores.get("faithfulness")
        mean = f"; mean faithfulness {faithfulness:.2f}" if faithfulness is not None else ""
        lines.append(
            f"{review.forced.n} forced evaluations this {word} ({reasons}), kept out of the trends and verdicts{mean}."
        )
    lines.append(_usage_line(review.usage, word))
    return lines


def _verdict_count(review: Review) -> int:
    """Verdicts sharing the review's alpha: the overall criteria and every segment's."""
    return len(review.criteria) + sum(len(segment.criteria) for segment in review.segments)


def _segment_lines(review: Review) -> list[str]:
    """Where a segment degraded, name it, and say how the other values of its key fared on that criterion."""
    lines = []
    for segment in review.segments:
        for criterion in segment.criteria:
            if criterion.verdict != "degraded":
                continue
            others = [
                f"{other.value} {_segment_level(c)}"
                for other in review.segments
                if other.key == segment.key and other.value != segment.value
                for c in other.criteria
                if c.name == criterion.name
            ]
            against = "" if segment.baseline == "segment" else f" (new this {review.period_word}: against all traffic)"
            rest = f"; other {segment.key}s: {', '.join(others)}" if others else ""
            lines.append(
                f"{criterion.label} DEGRADED in {segment.key} {segment.value}{against}: {criterion.summary}{rest}."
            )
    return lines


def _segment_level(criterion: SegmentCriterion) -> str:
    """ "stable (4.21 → 4.18)": a segment criterion's verdict and its baseline and current means."""
    word = criterion.verdict.replace("_", " ")
    if criterion.current_mean is None or criterion.baseline_mean is None:
        return word
    if criterion.kind == "rate":
        return f"{word} ({100 * criterion.baseline_mean:.1f}% → {100 * criterion.current_mean:.1f}%)"
    return f"{word} ({criterion.baseline_mean:.2f} → {criterion.current_mean:.2f})"


def _level_change(criterion: CriterionReview) -> str:
    a = criterion.assessment
    assert a.current_mean is not None and a.baseline_mean is not None
    if criterion.kind == "rate":
        return f"{criterion.name} {100 * a.current_mean:.1f}% (baseline {100 * a.baseline_mean:.1f}%)"
    return f"{criterion.name} {a.current_mean:.2f} (baseline {a.baseline_mean:.2f})"


def _feedback_line(feedback: UserFeedbackSummary, word: str) -> str:
    if not feedback.n:
        return f"No user ratings this {word}."
    baseline = ""
    if feedback.baseline_rate is not None:
        baseline = f", baseline {feedback.baseline_rate:.0%} of {feedback.baseline_n}"
    comments = f"; {len(feedback.comments)} comments below" if feedback.comments else ""
    return f"Thumbs down: {feedback.rate:.0%} of {feedback.n} user ratings this {word}{baseline}{comments}."


def _usage_line(usage: UsageSummary, word: str) -> str:
    now, base = usage.current, usage.baseline
    if not now.invocations:
        return f"No invocations recorded this {word}."

    def versus(value: float | None, reference: float | None, fmt: str) -> str:
        if value is None:
            return "n/a"
        return fmt.format(value) + ("" if reference is None else f" (baseline {fmt.format(reference)})")

    return (
        f"Traffic this {word}: {versus(now.invocations, base and base.invocations, '{:,.0f}')} invocations; "
        f"errors {versus(now.error_rate, base and base.error_rate, '{:.1%}')}; "
        f"p95 latency {versus(now.latency_p95, base and base.latency_p95, '{:.2f} s')}; "
        f"cost {versus(now.cost_usd, base and base.cost_usd, '${:,.2f}')}, judge ${now.judge_cost_usd:,.2f}."
    )
