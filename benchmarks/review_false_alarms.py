"""How often the weekly review cries wolf on a stable process, and how fast it catches a real drop.

The review tests four criteria (faithfulness, relevance, completeness, hallucination rate), each at alpha / 4, and
says "degraded" when any verdict does. Part 1 measures one verdict at that per-verdict alpha on simulated weeks
(`simulate_samples`), one history per seed, reviewed as the weekly CLI would. A week judged degraded is left out of
later baselines, so a later review's `quarantined_periods` tells whether an earlier week was flagged: one review of
week 8 yields the "degraded" verdicts of weeks 5-8. Weeks 9-12 of a longer history show the steady state, where
skipped false alarms have had time to flatter later baselines. Part 2 runs the whole thing, `generate_history` into a
SQLite store and `build_review` over it, and counts reviews of the last week that say anything is degraded; the
"release" scenarios put app_version v2 on half of the last week's traffic, worse or as good as v1, and count the
segment verdicts too.

    .venv/bin/python benchmarks/review_false_alarms.py [--seeds 500] [--review-seeds 200]
    .venv/bin/python benchmarks/review_false_alarms.py --review-only --scenarios "release,release as good as v1"
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from langchain_llmmonitor.review import CRITERIA, build_review, generate_history
from langchain_llmmonitor.review._drift import DriftAssessment, Kind, Sample, assess, simulate_samples
from langchain_llmmonitor.storage.store import Store

START = datetime(2024, 1, 1, tzinfo=UTC)
WEEK = timedelta(weeks=1)
BASELINE_WEEKS = 4
REVIEW_ALPHA = 0.05  # build_review's default: the chance that a stable week gets any "degraded"
VERDICT_ALPHA = REVIEW_ALPHA / len(CRITERIA)


def review(samples: list[Sample], week: int, kind: Kind, alpha: float = VERDICT_ALPHA) -> DriftAssessment:
    """The review of week `week` (1-based), bad direction: scores falling, hallucination rate rising."""
    return assess(
        samples,
        week_start=START + (week - 1) * WEEK,
        week_end=START + week * WEEK,
        kind=kind,
        direction="decrease" if kind == "score" else "increase",
        baseline_weeks=BASELINE_WEEKS,
        alpha=alpha,
    )


def degraded_weeks(result: DriftAssessment, week: int) -> set[int]:
    """Weeks (1-based) judged degraded, read from the review of `week`."""
    skipped = {round((start - START) / WEEK) + 1 for start, _ in result.quarantined_periods}
    return skipped | ({week} if result.verdict == "degraded" else set())


def false_alarm_rates(
    seeds: range, *, kind: Kind, level: float, per_week: int, weeks: int, sd: float = 1.0
) -> tuple[float, float]:
    """On a stable process of `weeks` weeks: the share of the last 4 weeks called "degraded", and of the last week
    called "improved" (the other wrong verdict). All 4 have a full baseline when `weeks` >= 8."""
    degraded = improved = 0
    for seed in seeds:
        levels = [level] * weeks
        samples = simulate_samples(start=START, weekly_levels=levels, per_week=per_week, kind=kind, sd=sd, seed=seed)
        result = review(samples, weeks, kind)
        degraded += len({w for w in degraded_weeks(result, weeks) if w > weeks - 4})
        improved += result.verdict == "improved"
    return degraded / (4 * len(seeds)), improved / len(seeds)


def detection_rates(
    seeds: range, *, kind: Kind, before: float, after: float, per_week: int, alpha: float = VERDICT_ALPHA
) -> tuple[float, float]:
    """Share of histories whose change at the start of week 5 is flagged in the week-5 review, and by week 6's."""
    within_one = within_two = 0
    for seed in seeds:
        levels = [before] * BASELINE_WEEKS + [after] * 2
        samples = simulate_samples(start=START, weekly_levels=levels, per_week=per_week, kind=kind, seed=seed)
        flagged = degraded_weeks(review(samples, 6, kind, alpha), 6)
        within_one += 5 in flagged
        within_two += bool(flagged & {5, 6})
    return within_one / len(seeds), within_two / len(seeds)


def chart_delays(seeds: range, *, per_week: int) -> tuple[list[int], int]:
    """Samples from the start of a 4.2 -> 3.9 drop to the EWMA's signal (reviews of weeks 5 and 6), and the misses."""
    delays, misses = [], 0
    for seed in seeds:
        samples = simulate_samples(start=START, weekly_levels=[4.2] * 4 + [3.9] * 2, per_week=per_week, seed=seed)
        for week in (5, 6):
            signal_at = review(samples, week, "score").chart_signal_at
            if signal_at is not None:
                changed = START + 4 * WEEK
                delays.append(sum(1 for s in samples if changed <= s.timestamp <= signal_at))
                break
        else:
            misses += 1
    return delays, misses


def midweek_drop(seeds: range, *, per_week: int) -> dict[str, float]:
    """A 4.2 -> 3.9 drop starting on Thursday of week 5: what the week-5 review's test and chart each catch."""
    thursday = START + 4 * WEEK + timedelta(days=3)
    caught = {"mean-shift test": 0, "EWMA chart": 0, "either (verdict)": 0}
    for seed in seeds:
        healthy = simulate_samples(start=START, weekly_levels=[4.2] * 5, per_week=per_week, seed=seed)
        dropped = simulate_samples(start=START, weekly_levels=[3.9] * 5, per_week=per_week, seed=seed + 10**6)
        samples = [s for s in healthy if s.timestamp < thursday] + [s for s in dropped if s.timestamp >= thursday]
        result = review(samples, 5, "score")
        caught["mean-shift test"] += result.p_worse is not None and result.p_worse < result.test_alpha
        caught["EWMA chart"] += result.chart_signal_at is not None
        caught["either (verdict)"] += result.verdict == "degraded"
    return {name: count / len(seeds) for name, count in caught.items()}


SCENARIOS = {  # name: (generate_history scenario, its options)
    "stable": ("stable", {}),
    "degradation": ("degradation", {}),
    "release": ("release", {}),
    "release as good as v1": ("release", {"release_quality": {}}),
}


def whole_review(task: tuple[str, int]) -> dict[str, str]:
    """The verdicts of one simulated history's last week, as `llmmonitor review` would give them: the overall ones by
    criterion, and the segments' as "app_version=v2 faithfulness"."""
    name, seed = task
    scenario, options = SCENARIOS[name]
    now = START + 6 * WEEK
    with tempfile.TemporaryDirectory() as directory:
        store = Store(Path(directory) / "monitor.db")
        try:
            generate_history(store, scenario=scenario, seed=seed, now=now, **options)  # type: ignore[arg-type]
            result = build_review(store, until=now, alpha=REVIEW_ALPHA)
        finally:
            store.close()
    verdicts = {criterion.name: criterion.verdict for criterion in result.criteria}
    for segment in result.segments:
        verdicts |= {f"{segment.key}={segment.value} {c.name}": c.verdict for c in segment.criteria}
    return verdicts


def whole_review_rates(scenario: str, seeds: range, workers: int) -> dict[str, float]:
    with ProcessPoolExecutor(workers) as pool:
        verdicts = list(pool.map(whole_review, [(scenario, seed) for seed in seeds], chunksize=4))
    overall = [name for name in verdicts[0] if " " not in name]
    rates = {
        "any degraded": sum("degraded" in v.values() for v in verdicts),
        "any improved": sum("improved" in v.values() for v in verdicts),
        **{f"{name} degraded": sum(v[name] == "degraded" for v in verdicts) for name in overall},
    }
    if any(len(v) > len(overall) for v in verdicts):
        for value in ("v1", "v2"):
            prefix = f"app_version={value} "
            rates[f"{value}: any degraded"] = sum(
                any(k.startswith(prefix) and x == "degraded" for k, x in v.items()) for v in verdicts
            )
            rates[f"{value}: faithfulness degraded"] = sum(
                v.get(prefix + "faithfulness") == "degraded" for v in verdicts
            )
    return {name: count / len(verdicts) for name, count in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500, help="histories per line of part 1")
    parser.add_argument("--review-seeds", type=int, default=200, help="whole reviews per scenario in part 2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="part 2's scenarios, comma-separated")
    parser.add_argument("--review-only", action="store_true", help="skip part 1")
    options = parser.parse_args()
    seeds = range(options.seeds)
    began = time.perf_counter()
    if not options.review_only:
        single_verdicts(seeds)
    review_scenarios(range(options.review_seeds), options.scenarios.split(","), options.workers)
    print(f"\n{time.perf_counter() - began:.0f} s")


def single_verdicts(seeds: range) -> None:
    """Part 1: one criterion's verdict on simulated samples."""
    print(
        f"Part 1: one verdict, {len(seeds)} seeds, 4-week baseline, alpha {VERDICT_ALPHA:g} per verdict "
        f"(= {REVIEW_ALPHA:g} / {len(CRITERIA)} criteria; "
        f"test {0.8 * VERDICT_ALPHA:g} + EWMA {0.2 * VERDICT_ALPHA:g})\n"
    )
    print("Wrong verdicts on a stable process: degraded (each of 4 weeks) / improved (the last week):")
    for label, kind, level, sd, per_week, weeks in [
        ("faithfulness 4.2, 150/week, weeks 5-8", "score", 4.2, 1.0, 150, 8),
        ("faithfulness 4.2, 150/week, weeks 9-12", "score", 4.2, 1.0, 150, 12),
        ("faithfulness 4.2, 100/week, weeks 5-8", "score", 4.2, 1.0, 100, 8),
        ("relevance 4.4 sd 0.8, 150/week, weeks 5-8", "score", 4.4, 0.8, 150, 8),
        ("hallucination 5%, 150/week, weeks 5-8", "rate", 0.05, 1.0, 150, 8),
    ]:
        degraded, improved = false_alarm_rates(seeds, kind=kind, level=level, per_week=per_week, weeks=weeks, sd=sd)
        print(f"  {label:42} {degraded:6.1%} / {improved:6.1%}")
    print(
        f"\nDetection of a change at the start of week 5 (within 1 week / within 2 weeks), at alpha {VERDICT_ALPHA:g} "
        f"and, for the price of the split, at {REVIEW_ALPHA:g}:"
    )
    for label, kind, before, after, per_week in [
        ("faithfulness 4.2 -> 3.9, 150/week", "score", 4.2, 3.9, 150),
        ("faithfulness 4.2 -> 3.9, 100/week", "score", 4.2, 3.9, 100),
        ("hallucination 5% -> 10%, 150/week", "rate", 0.05, 0.10, 150),
    ]:
        rates = [
            detection_rates(seeds, kind=kind, before=before, after=after, per_week=per_week, alpha=alpha)
            for alpha in (VERDICT_ALPHA, REVIEW_ALPHA)
        ]
        (one, two), (one_unsplit, two_unsplit) = rates
        print(f"  {label:36} {one:6.1%} / {two:6.1%}   (unsplit {one_unsplit:6.1%} / {two_unsplit:6.1%})")
    delays, misses = chart_delays(seeds, per_week=150)
    print(
        f"\nEWMA detection delay for 4.2 -> 3.9 at 150/week: median {statistics.median(delays):.0f} samples "
        f"(quartiles {statistics.quantiles(delays, n=4)[0]:.0f}-{statistics.quantiles(delays, n=4)[2]:.0f}); "
        f"no chart signal within 2 weeks in {misses / len(seeds):.1%}"
    )
    print("\nDrop starting Thursday of week 5, caught by the week-5 review at 150/week:")
    for name, rate in midweek_drop(seeds, per_week=150).items():
        print(f"  {name:18} {rate:6.1%}")


def review_scenarios(review_seeds: range, names: list[str], workers: int) -> None:
    """Part 2: whole reviews of simulated histories."""
    print(
        f"\nPart 2: the whole review (generate_history -> SQLite -> build_review), {len(review_seeds)} histories per "
        f"scenario, last week reviewed, alpha {REVIEW_ALPHA:g} across the 4 verdicts:"
    )
    for scenario, description in [
        ("stable", "stable (faithfulness 4.2, relevance 4.4, completeness 4.0, hallucination 5%)"),
        ("degradation", "degradation (last week: faithfulness 4.2 -> 3.6 day by day, mean 3.9; hallucination 12%)"),
        ("release", "release (last week: app_version v2 on half the traffic, faithfulness 3.6, hallucination 12%)"),
        ("release as good as v1", "release as good as v1 (v2 on half the last week's traffic, nothing changed)"),
    ]:
        if scenario not in names:
            continue
        print(f"  {description}:")
        for name, rate in whole_review_rates(scenario, review_seeds, workers).items():
            print(f"    {name:26} {rate:6.1%}")


if __name__ == "__main__":
    main()
