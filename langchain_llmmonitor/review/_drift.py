"""The statistics of the weekly quality review: is this week's judged quality worse than the recent past?

Pure functions over judged samples of one criterion, no I/O. The choices, and why:

* Random samples only. Forced samples (errors, negative feedback) are judged *because* something already looked wrong,
  so a week with more complaints would look worse for a reason that is not drift; they are counted and averaged apart.
* One judge at a time. A new judge_key (model or prompt version) rescales scores, so the baseline keeps only samples of
  the judge that scored the current week, and a judge change mid-week leaves the old judge's samples of that week out.
* Mean-shift test, one-sided in the bad direction. Scores: Welch t. It tests the mean, the number the summary reports
  and the bootstrap interval brackets; with >= 50 samples a side the t approximation holds on a 5-point scale and its
  power matches Mann-Whitney's there (KS loses, see DESIGN). Rates: Fisher's exact test with the mid-p correction: a
  5% rate gives ~8 events a week, too few and too skewed for z or t approximations (they over-alarm upwards), and
  mid-p removes Fisher's conservatism.
* Control chart: a one-sided EWMA (lambda 0.05) of samples standardised by the baseline, run over baseline + current
  week in time order; only crossings in the current week count. It dates a change (the report can mark the day) and
  catches sharp breaks; for a 0.3-point drop at ~150 samples a week the week-mean test is the stronger detector (see
  the benchmark), so the chart gets the smaller share of alpha. Its limit is set by bootstrap from the baseline (with
  the noise of the baseline's own mean) for a fixed false-alarm probability per week, because normal-theory limits
  are wrong for 0/1 data at 5% and for a skewed 5-point scale; by the current week the EWMA has run through the
  baseline, so its variance has converged and one limit serves the whole week.
* Alpha budget: `alpha` is the nominal chance that a stable week is called "degraded": 80% of it goes to the
  mean-shift test, 20% to the chart, and either firing means "degraded" (union bound). "Improved" is the test in the
  other direction at the same level; the chart watches the bad direction only.
* Quarantine: previous weeks judged "degraded" against a complete baseline (by this same procedure, run forward over
  the history passed in) are skipped and the baseline reaches further back, so a detected degradation never becomes
  the new normal: the review keeps saying "degraded" until quality comes back, or until the caller starts the history
  after an accepted change. Verdicts against a partial baseline (the first weeks of a history) are too weak to reshape
  later baselines. The price: skipping false alarms leaves slightly flattering baselines, about +1 point of weekly
  false alarms (see benchmarks/review_false_alarms.py). A drift too slow for any single week to be flagged is still
  absorbed by a rolling baseline; a longer `baseline_weeks` makes it visible for longer.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import numpy as np
from scipy import optimize, signal, stats

Kind = Literal["score", "rate"]
Direction = Literal["decrease", "increase"]
Verdict = Literal["degraded", "improved", "stable", "not_enough_samples"]

EWMA_LAMBDA = 0.05
CHART_SHARE_OF_ALPHA = 0.2
CI_LEVEL = 0.95
DEFAULT_MIN_SAMPLES = 50
"""Below ~50 random samples a week, "stable" would mean little: the test then has under 60% power for the 0.3-point
drop the review exists to catch, and the t/z approximations behind the test and the chart get shaky on 5-point or
0/1 data. Applies to the current week and to the baseline alike."""

_CHART_RESAMPLES = 1000
_CHART_WARMUP = 100
_CI_RESAMPLES = 2000
_SCORE_LEVELS = np.arange(1.0, 6.0)
_WEEK = timedelta(weeks=1)


@dataclass(frozen=True, slots=True)
class Sample:
    """One judged value: a 1-5 score or a 0/1 hallucination verdict; `forced` = judged by an always-evaluate rule."""

    timestamp: datetime
    value: float
    judge_key: str
    forced: bool = False


@dataclass(frozen=True, slots=True)
class JudgeChange:
    """The moment samples started coming from another judge (name, model or prompt version).

    One judge at a time is assumed: judges used side by side would show up as a change at every switch.
    """

    at: datetime
    previous_key: str
    judge_key: str


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """The EWMA after one sample, in baseline standard deviations from the baseline mean."""

    timestamp: datetime
    ewma: float


@dataclass(frozen=True, slots=True)
class DriftAssessment:
    """One criterion's weekly verdict and the numbers behind it.

    Means, `difference` (current - baseline) and its bootstrap interval are in the data's units (a rate as 0-1).
    `p_worse` / `p_better` are one-sided p-values of `test`, compared with `test_alpha`. `chart` is the EWMA over
    baseline then current week in baseline standard deviations; `chart_limit` is on the bad side (negative when
    scores falling is bad). Periods are (start, end), oldest first; `quarantined_periods` were skipped as degraded.
    Numbers that need a comparison are None when the verdict is "not_enough_samples".
    """

    verdict: Verdict
    summary: str
    notes: tuple[str, ...]
    min_samples: int
    judge_key: str | None
    judge_changes: tuple[JudgeChange, ...]
    current_n: int
    current_mean: float | None
    baseline_n: int
    baseline_mean: float | None
    baseline_periods: tuple[tuple[datetime, datetime], ...]
    quarantined_periods: tuple[tuple[datetime, datetime], ...]
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    test: str
    test_alpha: float
    p_worse: float | None
    p_better: float | None
    chart_limit: float | None
    chart_signal_at: datetime | None
    chart: tuple[ChartPoint, ...]
    forced_n: int
    forced_mean: float | None


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One day of the trend: random samples only; no interval for fewer than two scores."""

    day: date
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


def assess(
    samples: Iterable[Sample],
    *,
    week_start: datetime,
    week_end: datetime,
    kind: Kind,
    direction: Direction,
    criterion: str = "score",
    baseline_weeks: int = 4,
    alpha: float = 0.05,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    seed: int = 0,
) -> DriftAssessment:
    """Compare [week_start, week_end) with the `baseline_weeks` periods of the same length before it.

    Pass the history you want considered (e.g. 12 weeks): earlier weeks are judged too, to skip degraded ones.
    Samples at or after week_end are ignored. The result depends only on the samples and `seed`.
    """
    if week_start.tzinfo is None or week_end.tzinfo is None:
        raise ValueError("week_start and week_end must be timezone-aware")
    if week_end <= week_start:
        raise ValueError("week_end must be after week_start")
    if min_samples < 2:
        raise ValueError("min_samples must be at least 2 (a spread needs two samples)")
    rules = _Rules(kind, direction, baseline_weeks, alpha, min_samples, seed)
    history = _History([s for s in samples if s.timestamp < week_end], week_start, week_end - week_start)
    quarantined: set[int] = set()
    for back in range(history.periods_before, 0, -1):
        earlier = _compare(history, back, quarantined, rules)
        if earlier.verdict == "degraded" and len(earlier.baseline_periods) == baseline_weeks:
            quarantined.add(back)
    return _report(history, _compare(history, 0, quarantined, rules), rules, criterion)


def daily_trend(samples: Iterable[Sample], *, start: datetime, end: datetime, kind: Kind) -> list[DayPoint]:
    """Per UTC day in [start, end): mean and 95% interval of random samples (t for scores, Wilson for rates)."""
    values_by_day: defaultdict[date, list[float]] = defaultdict(list)
    for sample in samples:
        if not sample.forced and start <= sample.timestamp < end:
            values_by_day[_utc_day(sample.timestamp)].append(sample.value)
    points = []
    day, last_day = _utc_day(start), _utc_day(end - timedelta(microseconds=1))
    while day <= last_day:
        values = np.asarray(values_by_day.get(day, ()))
        points.append(DayPoint(day, len(values), *_mean_and_interval(values, kind)))
        day += timedelta(days=1)
    return points


def simulate_samples(
    *,
    start: datetime,
    weekly_levels: Sequence[float],
    per_week: int = 150,
    kind: Kind = "score",
    sd: float = 1.0,
    judge_key: str = "simulated-judge",
    seed: int = 0,
) -> list[Sample]:
    """Synthetic judged samples for demos, tests and benchmarks, `per_week` at random times in each week.

    Each level is a week's mean score (integers 1-5 from a rounded, clipped normal whose scores have that mean and `sd`)
    or its hallucination rate.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for week, level in enumerate(weekly_levels):
        offsets = np.sort(rng.uniform(0.0, _WEEK.total_seconds(), per_week))
        if kind == "score":
            values = rng.choice(_SCORE_LEVELS, size=per_week, p=_score_probabilities(level, sd))
        else:
            values = (rng.random(per_week) < level).astype(float)
        week_start = start + week * _WEEK
        samples += [
            Sample(week_start + timedelta(seconds=float(offset)), float(value), judge_key)
            for offset, value in zip(offsets, values, strict=True)
        ]
    return samples


@dataclass(frozen=True, slots=True)
class _Rules:
    kind: Kind
    direction: Direction
    baseline_weeks: int
    alpha: float
    min_samples: int
    seed: int

    @property
    def test_alpha(self) -> float:
        return self.alpha * (1 - CHART_SHARE_OF_ALPHA)

    @property
    def bad_sign(self) -> float:
        """+1 when higher is worse, so that `bad_sign * (x - baseline)` > 0 means worse."""
        return 1.0 if self.direction == "increase" else -1.0


class _History:
    """Samples in time order, cut into periods counted back from the current one (period 0)."""

    def __init__(self, samples: list[Sample], current_start: datetime, period: timedelta) -> None:
        if any(s.timestamp.tzinfo is None for s in samples):
            raise ValueError("sample timestamps must be timezone-aware")
        self.samples = sorted(samples, key=lambda s: (s.timestamp, s.forced, s.judge_key, s.value))
        self.current_start = current_start
        self.period = period
        self.times = np.array([s.timestamp.timestamp() for s in self.samples])
        self.values = np.array([s.value for s in self.samples], dtype=float)
        self.forced = np.array([s.forced for s in self.samples], dtype=bool)
        self.judge_keys = [s.judge_key for s in self.samples]
        self.judge_code = {key: code for code, key in enumerate(dict.fromkeys(self.judge_keys))}
        self.judge_codes = np.array([self.judge_code[key] for key in self.judge_keys], dtype=int)
        earliest = self.times[0] if self.samples else current_start.timestamp()
        self.periods_before = max(0, math.ceil((current_start.timestamp() - earliest) / period.total_seconds()))

    def bounds(self, back: int) -> tuple[datetime, datetime]:
        start = self.current_start - back * self.period
        return start, start + self.period

    def random_positions(self, back: int, judge_key: str | None = None) -> np.ndarray:
        """Positions of the period's non-forced samples, of one judge if given, in time order."""
        start, end = (t.timestamp() for t in self.bounds(back))
        positions = np.arange(*np.searchsorted(self.times, [start, end]))
        chosen = ~self.forced[positions]
        if judge_key is not None:
            chosen &= self.judge_codes[positions] == self.judge_code[judge_key]
        return positions[chosen]

    def judge_changes(self) -> tuple[JudgeChange, ...]:
        keys = self.judge_keys
        changed = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
        return tuple(JudgeChange(self.samples[i].timestamp, keys[i - 1], keys[i]) for i in changed)

    def rng(self, back: int, seed: int, stream: int) -> np.random.Generator:
        """Seeded by the period's start, so that a week gets the same verdict as the current week and as history."""
        return np.random.default_rng([seed, round(self.bounds(back)[0].timestamp()) % 2**63, stream])


@dataclass(frozen=True, slots=True)
class _Chart:
    path: np.ndarray
    limit: float
    signal_index: int | None


@dataclass(frozen=True, slots=True)
class _Comparison:
    verdict: Verdict
    judge_key: str | None
    current: np.ndarray
    baseline: np.ndarray
    baseline_periods: tuple[int, ...]
    skipped_periods: tuple[int, ...]
    p_worse: float | None = None
    p_better: float | None = None
    chart: _Chart | None = None


def _compare(history: _History, back: int, quarantined: set[int], rules: _Rules) -> _Comparison:
    """Judge period `back` against its baseline; the verdict only (no interval), cheap enough to run for every week."""
    random_now = history.random_positions(back)
    judge_key = history.judge_keys[random_now[-1]] if random_now.size else None
    current = history.random_positions(back, judge_key)
    candidates = range(back + 1, history.periods_before + 1)
    baseline_periods = tuple(p for p in candidates if p not in quarantined)[: rules.baseline_weeks]
    complete = len(baseline_periods) == rules.baseline_weeks
    oldest = baseline_periods[-1] if complete else history.periods_before
    skipped = tuple(p for p in candidates if p in quarantined and p <= oldest)
    baseline = np.concatenate(
        [history.random_positions(p, judge_key) for p in sorted(baseline_periods, reverse=True)] or [np.array([], int)]
    )
    comparison = _Comparison("not_enough_samples", judge_key, current, baseline, baseline_periods, skipped)
    if min(current.size, baseline.size) < rules.min_samples:
        return comparison
    current_values, baseline_values = history.values[current], history.values[baseline]
    p_worse, p_better = _mean_shift_p_values(current_values, baseline_values, rules)
    chart = _ewma_chart(baseline_values, current_values, rules, history.rng(back, rules.seed, stream=0))
    if p_worse < rules.test_alpha or (chart is not None and chart.signal_index is not None):
        verdict: Verdict = "degraded"
    elif p_better < rules.test_alpha:
        verdict = "improved"
    else:
        verdict = "stable"
    return _Comparison(verdict, judge_key, current, baseline, baseline_periods, skipped, p_worse, p_better, chart)


def _mean_shift_p_values(current: np.ndarray, baseline: np.ndarray, rules: _Rules) -> tuple[float, float]:
    """One-sided p-values (worse, better) of the change from baseline to current."""
    test = _welch_p_values if rules.kind == "score" else _fisher_mid_p_values
    p_higher, p_lower = test(current, baseline)
    return (p_higher, p_lower) if rules.direction == "increase" else (p_lower, p_higher)


def _welch_p_values(current: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """One-sided Welch t p-values (current higher, current lower)."""
    difference = current.mean() - baseline.mean()
    current_var, baseline_var = current.var(ddof=1) / current.size, baseline.var(ddof=1) / baseline.size
    if current_var + baseline_var == 0:
        return float(difference <= 0), float(difference >= 0)
    dof = (current_var + baseline_var) ** 2 / (
        current_var**2 / (current.size - 1) + baseline_var**2 / (baseline.size - 1)
    )
    statistic = difference / math.sqrt(current_var + baseline_var)
    return float(stats.t.sf(statistic, dof)), float(stats.t.cdf(statistic, dof))


def _fisher_mid_p_values(current: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """One-sided Fisher mid-p values (current rate higher, lower): the week's event count given all events."""
    events_now, events = round(current.sum()), round(current.sum() + baseline.sum())
    count = stats.hypergeom(current.size + baseline.size, events, current.size)
    half_tie = 0.5 * count.pmf(events_now)
    return float(count.sf(events_now) + half_tie), float(count.cdf(events_now) - half_tie)


def _ewma(values: np.ndarray) -> np.ndarray:
    """EWMA along the last axis, starting from 0: z_t = lambda * x_t + (1 - lambda) * z_(t-1)."""
    return signal.lfilter([EWMA_LAMBDA], [1.0, EWMA_LAMBDA - 1.0], values, axis=-1)


def _ewma_chart(baseline: np.ndarray, current: np.ndarray, rules: _Rules, rng: np.random.Generator) -> _Chart | None:
    """One-sided EWMA over baseline then current; limit = the per-week (chart share of alpha) quantile of its peak.

    None when the baseline has no spread to standardise by (e.g. no hallucination in four weeks).
    """
    mean, sd = baseline.mean(), baseline.std(ddof=1)
    if not sd > 0:
        return None
    badness_baseline = rules.bad_sign * (baseline - mean) / sd
    badness_current = rules.bad_sign * (current - mean) / sd
    warmup = min(baseline.size, _CHART_WARMUP)
    simulated = badness_baseline[rng.integers(0, baseline.size, size=(_CHART_RESAMPLES, warmup + current.size))]
    # The current week is centred on an estimated baseline mean; its error is part of the false-alarm budget.
    simulated[:, warmup:] += rng.normal(0.0, 1.0 / math.sqrt(baseline.size), size=(_CHART_RESAMPLES, 1))
    peaks = _ewma(simulated)[:, warmup:].max(axis=1)
    limit = float(np.quantile(peaks, 1 - rules.alpha * CHART_SHARE_OF_ALPHA))
    path = _ewma(np.concatenate([badness_baseline, badness_current]))
    crossings = np.flatnonzero(path[baseline.size :] > limit)
    return _Chart(rules.bad_sign * path, rules.bad_sign * limit, int(crossings[0]) if crossings.size else None)


def _bootstrap_interval(current: np.ndarray, baseline: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap of mean(current) - mean(baseline); resampling as multinomial counts over distinct values
    is the same distribution as resampling samples, at a cost independent of the sample count."""

    def resampled_means(values: np.ndarray) -> np.ndarray:
        distinct, counts = np.unique(values, return_counts=True)
        draws = rng.multinomial(values.size, counts / values.size, size=_CI_RESAMPLES)
        return draws @ distinct / values.size

    differences = resampled_means(current) - resampled_means(baseline)
    tail = (1 - CI_LEVEL) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return float(low), float(high)


def _report(history: _History, comparison: _Comparison, rules: _Rules, criterion: str) -> DriftAssessment:
    current_values, baseline_values = history.values[comparison.current], history.values[comparison.baseline]
    low, high = np.searchsorted(history.times, [t.timestamp() for t in history.bounds(0)])
    forced_values = history.values[low:high][history.forced[low:high]]
    current_mean = float(current_values.mean()) if current_values.size else None
    baseline_mean = float(baseline_values.mean()) if baseline_values.size else None
    difference = ci_low = ci_high = None
    chart_limit = chart_signal_at = None
    chart_points: tuple[ChartPoint, ...] = ()
    if comparison.verdict != "not_enough_samples":
        difference = current_mean - baseline_mean
        ci_low, ci_high = _bootstrap_interval(current_values, baseline_values, history.rng(0, rules.seed, stream=1))
    chart = comparison.chart
    if chart is not None:
        positions = np.concatenate([comparison.baseline, comparison.current])
        chart_points = tuple(
            ChartPoint(history.samples[i].timestamp, float(z)) for i, z in zip(positions, chart.path, strict=True)
        )
        chart_limit = chart.limit
        if chart.signal_index is not None:
            chart_signal_at = history.samples[comparison.current[chart.signal_index]].timestamp
    assessment = DriftAssessment(
        verdict=comparison.verdict,
        summary="",
        notes=_notes(history, comparison, chart_available=chart is not None),
        min_samples=rules.min_samples,
        judge_key=comparison.judge_key,
        judge_changes=history.judge_changes(),
        current_n=int(comparison.current.size),
        current_mean=current_mean,
        baseline_n=int(comparison.baseline.size),
        baseline_mean=baseline_mean,
        baseline_periods=tuple(history.bounds(p) for p in sorted(comparison.baseline_periods, reverse=True)),
        quarantined_periods=tuple(history.bounds(p) for p in sorted(comparison.skipped_periods, reverse=True)),
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        test="Welch t" if rules.kind == "score" else "Fisher mid-p",
        test_alpha=rules.test_alpha,
        p_worse=comparison.p_worse,
        p_better=comparison.p_better,
        chart_limit=chart_limit,
        chart_signal_at=chart_signal_at,
        chart=chart_points,
        forced_n=int(forced_values.size),
        forced_mean=float(forced_values.mean()) if forced_values.size else None,
    )
    return replace(assessment, summary=_summary(assessment, rules.kind, criterion, chart_available=chart is not None))


def _summary(assessment: DriftAssessment, kind: Kind, criterion: str, *, chart_available: bool) -> str:
    a = assessment
    if a.verdict == "not_enough_samples":
        judge = f" from judge {a.judge_key}" if a.judge_key else ""
        return (
            f"not enough samples to judge {criterion}: {a.current_n} random samples this week and {a.baseline_n} in "
            f"the baseline{judge} (need {a.min_samples} each)"
        )
    assert a.current_mean is not None and a.baseline_mean is not None and a.difference is not None
    if kind == "score":
        level, change = "{:.2f}".format, "{:+.2f}".format
        interval = f"95% CI {change(a.ci_low)} to {change(a.ci_high)}"
    else:
        level, change = (lambda v: f"{100 * v:.1f}%"), (lambda v: f"{100 * v:+.1f} pts")
        interval = f"95% CI {100 * a.ci_low:+.1f} to {change(a.ci_high)}"
        criterion = f"{criterion} rate"
    verb = "fell" if a.difference < 0 else "rose" if a.difference > 0 else "moved"
    p_value = a.p_better if a.verdict == "improved" else a.p_worse
    p_text = "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"
    if not chart_available:
        chart_text = "EWMA not run (no spread in the baseline)"
    elif a.chart_signal_at is not None:
        chart_text = f"EWMA signalled on {a.chart_signal_at:%b} {a.chart_signal_at.day}"
    else:
        chart_text = "EWMA did not signal"
    return (
        f"{criterion} {verb} from {level(a.baseline_mean)} to {level(a.current_mean)} "
        f"({change(a.difference)}, {interval}); {a.test} {p_text}; {chart_text}"
    )


def _notes(history: _History, comparison: _Comparison, *, chart_available: bool) -> tuple[str, ...]:
    notes = []
    judge_key = comparison.judge_key
    left_out_now = history.random_positions(0).size - comparison.current.size
    if left_out_now:
        switched = max(c.at for c in history.judge_changes() if c.judge_key == judge_key)
        notes.append(
            f"judge changed mid-week on {switched:%b} {switched.day} to {judge_key}: compared only its "
            f"{comparison.current.size} samples ({left_out_now} from the previous judge left out)"
        )
    baseline_all = sum(history.random_positions(p).size for p in comparison.baseline_periods)
    if baseline_all > comparison.baseline.size:
        notes.append(
            f"baseline reset at the judge change: {comparison.baseline.size} of {baseline_all} baseline samples "
            f"are from the current judge {judge_key}"
        )
    if comparison.skipped_periods:
        weeks = ", ".join(f"{s:%b} {s.day}" for s, _ in (history.bounds(p) for p in sorted(comparison.skipped_periods)))
        notes.append(f"left out of the baseline as already degraded: the week(s) starting {weeks}")
    if comparison.verdict != "not_enough_samples" and not chart_available:
        notes.append("control chart not run: the baseline has no spread to standardise by")
    return tuple(notes)


def _mean_and_interval(values: np.ndarray, kind: Kind) -> tuple[float | None, float | None, float | None]:
    n = values.size
    if n == 0:
        return None, None, None
    mean = float(values.mean())
    z = stats.norm.ppf(0.5 + CI_LEVEL / 2)
    if kind == "rate":
        centre = (mean + z**2 / (2 * n)) / (1 + z**2 / n)
        half_width = z * math.sqrt(mean * (1 - mean) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
        return mean, centre - half_width, centre + half_width
    if n < 2:
        return mean, None, None
    half_width = float(stats.t.ppf(0.5 + CI_LEVEL / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half_width, mean + half_width


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


@functools.lru_cache(maxsize=64)
def _score_probabilities(mean: float, sd: float) -> np.ndarray:
    """P(score = 1..5) of a normal rounded to 1-5, its latent mean and sd solved so the scores have `mean` and `sd`."""
    cuts = _SCORE_LEVELS[:-1] + 0.5

    def probabilities(latent: np.ndarray) -> np.ndarray:
        return np.diff(stats.norm.cdf(cuts, latent[0], math.exp(latent[1])), prepend=0.0, append=1.0)

    def moment_gaps(latent: np.ndarray) -> list[float]:
        p = probabilities(latent)
        score_mean = p @ _SCORE_LEVELS
        return [score_mean - mean, math.sqrt(p @ (_SCORE_LEVELS - score_mean) ** 2) - sd]

    solution = optimize.least_squares(moment_gaps, x0=[mean, math.log(sd)])
    if max(abs(gap) for gap in moment_gaps(solution.x)) > 1e-6:
        raise ValueError(f"no rounded normal on 1-5 has mean {mean} and sd {sd}")
    return probabilities(solution.x)
