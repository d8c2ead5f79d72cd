"""Verdicts per segment (app_version v2, model gpt-4.1, chain rag): where in the traffic quality moved.

A regression in one release is diluted by the rest of the traffic; tested on its own, it is not. The choices:

* What is tested is decided from sample counts alone, before any score is looked at: the values with at least
  `min_samples` random samples this period, of keys that have two such values or more. A key with one such value
  (one model, one chain, a release with a handful of samples) says little the overall verdicts do not, and costs no
  alpha.
* The baseline of a value is its own samples in the baseline periods when it has at least `min_samples` there;
  otherwise (a release new this period) all traffic of the baseline periods, which is what it replaced.
* Alpha: when any segment is tested, `SEGMENT_SHARE_OF_ALPHA` of the review's alpha is split evenly over every
  (segment, criterion) test and the rest over the overall criteria (Bonferroni), so a stable period still gets any
  "degraded" with probability <= alpha. With no segment to test the overall verdicts keep all of it.
* Releases: a value of a release key (`core.segments.RELEASE_KEYS`) first seen after the first day of the judged
  history is a release, marked at that moment on the trend plots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.segments import RELEASE_KEYS
from ._drift import DriftAssessment, Sample, assess
from ._model import CriterionSpec, Release, SegmentCriterion, SegmentReview
from ._records import Judged

SEGMENT_SHARE_OF_ALPHA = 0.5
_SETTLED_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SegmentPlan:
    """A segment to test, chosen from sample counts: its key and value, and whether it has a baseline of its own."""

    key: str
    value: str
    current_n: int
    own_baseline: bool


def plan_segments(
    judged: Sequence[Judged], *, baseline_start: datetime, window_start: datetime, until: datetime, min_samples: int
) -> list[SegmentPlan]:
    """The values with enough random samples this period, of keys that have two such values or more."""
    now: Counter[tuple[str, str]] = Counter()
    before: Counter[tuple[str, str]] = Counter()
    for j in judged:
        if j.forced or not j.segments or not baseline_start <= j.at < until:
            continue
        counts = now if j.at >= window_start else before
        counts.update(j.segments.items())
    testable: dict[str, list[str]] = {}
    for (key, value), count in now.items():
        if count >= min_samples:
            testable.setdefault(key, []).append(value)
    return [
        SegmentPlan(key, value, now[key, value], before[key, value] >= min_samples)
        for key, values in sorted(testable.items())
        if len(values) > 1
        for value in sorted(values)
    ]


def review_segments(
    plan: Sequence[SegmentPlan],
    judged: Sequence[Judged],
    specs: Sequence[CriterionSpec],
    *,
    window_start: datetime,
    until: datetime,
    baseline_weeks: int,
    alpha: float,
    min_samples: int,
    seed: int,
) -> tuple[SegmentReview, ...]:
    """Each planned segment's verdicts, each at `alpha` (already the per-test share)."""
    reviews = []
    for segment in plan:
        mine = [j for j in judged if j.segments.get(segment.key) == segment.value]
        history = (
            mine
            if segment.own_baseline
            else [j for j in judged if j.at < window_start] + [j for j in mine if j.at >= window_start]
        )
        criteria = tuple(
            _segment_criterion(spec, history, window_start, until, baseline_weeks, alpha, min_samples, seed)
            for spec in specs
        )
        baseline = "segment" if segment.own_baseline else "all traffic"
        reviews.append(SegmentReview(segment.key, segment.value, baseline, segment.current_n, criteria))
    return tuple(reviews)


def assess_judged(
    spec: CriterionSpec,
    judged: Sequence[Judged],
    *,
    window_start: datetime,
    until: datetime,
    baseline_weeks: int,
    alpha: float,
    min_samples: int,
    seed: int,
) -> tuple[list[Sample], DriftAssessment]:
    """One criterion's samples among `judged`, and their verdict for [window_start, until): for the overall verdicts
    and each segment's alike."""
    samples = [Sample(j.at, j.scores[spec.name], j.judge_key, j.forced) for j in judged if spec.name in j.scores]
    assessment = assess(
        samples,
        week_start=window_start,
        week_end=until,
        kind=spec.kind,
        direction=spec.direction,
        criterion=spec.name,
        baseline_weeks=baseline_weeks,
        alpha=alpha,
        min_samples=min_samples,
        seed=seed,
    )
    return samples, assessment


def _segment_criterion(
    spec: CriterionSpec,
    history: Sequence[Judged],
    window_start: datetime,
    until: datetime,
    baseline_weeks: int,
    alpha: float,
    min_samples: int,
    seed: int,
) -> SegmentCriterion:
    _, a = assess_judged(
        spec,
        history,
        window_start=window_start,
        until=until,
        baseline_weeks=baseline_weeks,
        alpha=alpha,
        min_samples=min_samples,
        seed=seed,
    )
    return SegmentCriterion(
        name=spec.name,
        label=spec.label,
        kind=spec.kind,
        verdict=a.verdict,
        summary=a.summary,
        current_n=a.current_n,
        current_mean=a.current_mean,
        baseline_n=a.baseline_n,
        baseline_mean=a.baseline_mean,
        difference=a.difference,
        ci_low=a.ci_low,
        ci_high=a.ci_high,
        p_worse=a.p_worse,
        chart_signal_at=a.chart_signal_at,
    )


def find_releases(judged: Sequence[Judged], *, display_start: datetime, until: datetime) -> tuple[Release, ...]:
    """Values of release keys first seen in [display_start, until), after the judged history's first day."""
    first_seen: dict[tuple[str, str], datetime] = {}
    earliest: datetime | None = None
    for j in judged:
        earliest = j.at if earliest is None or j.at < earliest else earliest
        for key in RELEASE_KEYS:
            value = j.segments.get(key)
            if value is not None and ((key, value) not in first_seen or j.at < first_seen[key, value]):
                first_seen[key, value] = j.at
    if earliest is None:
        return ()
    releases = [
        Release(at, key, value)
        for (key, value), at in first_seen.items()
        if at >= earliest + _SETTLED_AFTER and display_start <= at < until
    ]
    return tuple(sorted(releases, key=lambda release: (release.at, release.key, release.value)))
