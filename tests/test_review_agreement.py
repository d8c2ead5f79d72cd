"""Judge-human agreement in the weekly review: counts, rates, the disagreeing runs, the reading, JSON and both reports."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langchain_llmmonitor.core.records import EvaluationRecord, UserFeedbackRecord
from langchain_llmmonitor.review import Review, build_review, generate_history, render_html, render_markdown
from langchain_llmmonitor.review import _report as report_module
from langchain_llmmonitor.review._agreement import _kappa
from langchain_llmmonitor.storage.store import Store

NOW = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = timedelta(weeks=1)
BASELINE_WEEKS = 4


@dataclass(frozen=True)
class Run:
    """A judged run of the synthetic history: the judge's faithfulness and hallucination, and its user's rating."""

    faithfulness: int
    hallucination: bool = False
    rating: str | None = None  # "positive", "negative" or "1".."5"
    sampling: str = "random"
    sample_reason: str = "rate"
    comment: str | None = None


# Baseline weeks: the judge flags exactly the runs users rate down. This week: it flags answers users liked.
BASELINE_WEEK = (
    [Run(5, rating="positive") for _ in range(15)]
    + [Run(1, True, rating="negative", comment="Made that up.") for _ in range(5)]
    + [Run(4) for _ in range(40)]
)
DRIFTED_WEEK = (
    [Run(2, rating="positive", comment="Spot on.") for _ in range(12)]
    + [Run(1, rating="negative") for _ in range(5)]
    + [Run(5, rating="positive") for _ in range(3)]
    + [Run(2) for _ in range(18)]
    + [Run(4) for _ in range(22)]
    + [Run(1, rating="negative", sampling="forced", sample_reason="feedback")]
    + [Run(2, rating="3"), Run(2, rating="5", sampling="forced", sample_reason="error")]
)


def evaluation(run: Run, run_id: str, at: datetime) -> EvaluationRecord:
    return EvaluationRecord(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"evaluation/{run_id}")),
        created_at=at,
        run_id=run_id,
        trace_id=run_id,
        judge="offline",
        judge_model="m",
        prompt_version="v1",
        sampling=run.sampling,
        sample_reason=run.sample_reason,
        status="success",
        faithfulness=run.faithfulness,
        relevance=4,
        completeness=4,
        hallucination=run.hallucination,
        reason=f"faithfulness {run.faithfulness}",
        question="Q?",
        answer="A.",
    )


def rating(run: Run, run_id: str, at: datetime) -> UserFeedbackRecord:
    assert run.rating is not None
    score = {"positive": 1.0, "negative": -1.0}.get(run.rating) or float(run.rating)
    return UserFeedbackRecord(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"rating/{run_id}")),
        created_at=at + timedelta(minutes=1),
        run_id=run_id,
        trace_id=run_id,
        score=score,
        rating=run.rating,
        comment=run.comment,
    )


def write_weeks(store: Store, weeks: list[list[Run]]) -> None:
    """One judge evaluation per run, spread over its week (the last week ends at NOW), and the run's rating if any."""
    evaluations, ratings = [], []
    for number, runs in enumerate(weeks):
        start = NOW - (len(weeks) - number) * WEEK
        for index, run in enumerate(runs):
            run_id, at = str(uuid.UUID(int=1000 * number + index + 1)), start + (index + 0.5) * WEEK / len(runs)
            evaluations.append(evaluation(run, run_id, at))
            if run.rating is not None:
                ratings.append(rating(run, run_id, at))
    store.import_history([], evaluations, ratings)


def review_of(directory: Path, weeks: list[list[Run]]) -> Review:
    store = Store(directory / "monitor.db")
    try:
        write_weeks(store, weeks)
        return build_review(store, until=NOW, baseline_weeks=BASELINE_WEEKS)
    finally:
        store.close()


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Review:
    """Four weeks where judge and users agree, then a week where the judge flags answers users liked."""
    return review_of(tmp_path_factory.mktemp("drifted"), [BASELINE_WEEK] * BASELINE_WEEKS + [DRIFTED_WEEK])


def test_judge_drift_shows_as_a_drop_in_agreement_with_the_counts(drifted: Review) -> None:
    """12 runs users liked are flagged this week: agreement 9/21 against 80/80, the drop clear, the hint on the judge."""
    agreement = drifted.agreement
    now, base = agreement.current, agreement.baseline
    assert (now.n, now.both_bad, now.judge_only, now.user_only, now.both_fine, now.forced) == (21, 6, 12, 0, 3, 1)
    assert (base.n, base.both_bad, base.judge_only, base.user_only, base.both_fine) == (80, 20, 0, 0, 60)
    assert (agreement.neutral_left_out, agreement.forced_left_out) == (1, 1)
    assert [c.n for c in agreement.baseline_periods] == [20] * BASELINE_WEEKS
    assert now.agreement == pytest.approx(9 / 21) and base.agreement == 1.0
    assert now.ci_low < 9 / 21 < now.ci_high and base.ci_high == pytest.approx(1.0)
    assert (now.flagged_of_negative, now.passed_of_positive) == (1.0, pytest.approx(3 / 15))
    assert base.kappa == pytest.approx(1.0) and now.kappa < 0.3
    assert agreement.difference == pytest.approx(9 / 21 - 1) and agreement.difference_ci_high < 0
    assert agreement.reading.startswith("Users and the judge agree on 43% of the 21 runs rated and judged this week")
    assert "down from 100% of 80 in the baseline" in agreement.reading
    assert drifted.criterion("faithfulness").verdict == "degraded"
    assert agreement.hint is not None and agreement.hint.startswith("The judge and the users disagree")
    assert "runs the judge flags and users liked" in agreement.hint
    assert any(line.startswith(agreement.reading) for line in drifted.highlights)


def test_disagreeing_runs_are_listed_newest_first_at_most_ten(drifted: Review) -> None:
    """The judge-only runs this week: 12 found, 10 listed with the user's rating and comment and the judge's reason."""
    listed = drifted.agreement.judge_only
    assert len(listed) == 10 and drifted.agreement.user_only == ()
    assert {(d.kind, d.rating, d.comment, d.faithfulness, d.reason) for d in listed} == {
        ("judge_only", "positive", "Spot on.", 2.0, "faithfulness 2")
    }
    assert [d.at for d in listed] == sorted((d.at for d in listed), reverse=True)
    assert all(drifted.window_start <= d.at < NOW and d.url is None for d in listed)


@pytest.mark.parametrize(
    "weeks",
    [
        pytest.param([[Run(4)] * 60, [Run(4)] * 60], id="judged-runs-never-rated"),
        pytest.param([], id="empty-store"),
    ],
)
def test_no_run_both_judged_and_rated_says_so(tmp_path: Path, weeks: list[list[Run]]) -> None:
    """Without pairs the section says agreement cannot be measured: no rates, no division by zero, no table."""
    result = review_of(tmp_path, weeks)
    agreement = result.agreement
    assert agreement.current.n == agreement.baseline.n == 0
    assert (agreement.current.agreement, agreement.current.kappa, agreement.difference) == (None, None, None)
    assert agreement.reading == (
        "No run this week was both judged and rated by a user, so agreement cannot be measured (none in the baseline)."
    )
    assert agreement.judge_only == agreement.user_only == ()
    markdown = render_markdown(result)
    section = markdown[markdown.index("## Judge–human agreement") : markdown.index("## Worst-scored answers")]
    assert agreement.reading in section and "| This week |" not in section and section.count("None.") == 2
    assert json.loads(json.dumps(result.to_dict()))["agreement"]["current"]["agreement"] is None


def test_review_json_holds_the_agreement_numbers(drifted: Review) -> None:
    """to_dict()["agreement"]: the 2x2 counts, rates, change, reading, hint and listed runs, as JSON types."""
    data = json.loads(json.dumps(drifted.to_dict()))["agreement"]
    assert data["flag_rule"] == "hallucination, or faithfulness ≤ 2" and data["faithfulness_threshold"] == 2
    current = data["current"]
    assert [current[k] for k in ("n", "both_bad", "judge_only", "user_only", "both_fine")] == [21, 6, 12, 0, 3]
    assert current["agreement"] == pytest.approx(9 / 21) and data["baseline"]["agreement"] == 1.0
    assert data["difference_ci_high"] < 0 and data["reading"] == drifted.agreement.reading
    assert len(data["judge_only"]) == 10 and data["judge_only"][0]["comment"] == "Spot on."
    assert data["current"]["start"] == (NOW - WEEK).isoformat() and len(data["baseline_periods"]) == BASELINE_WEEKS


def test_html_and_markdown_show_the_agreement_section(drifted: Review, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both reports carry the section: the reading, the hint, the counts table and the disagreeing runs' ids."""
    for plot in ("_criterion_figure", "_feedback_figure"):
        monkeypatch.setattr(report_module, plot, lambda *args: b"\x89PNG\r\n\x1a\n")
    agreement = drifted.agreement
    page = render_html(drifted)
    [section] = re.findall(r'<section id="agreement">(.*?)</section>', page, flags=re.DOTALL)
    assert "<h2>Judge–human agreement</h2>" in section and agreement.reading in section
    assert "<td>This week</td><td>21</td><td>6</td><td>12</td><td>0</td><td>3</td><td>42.9% [" in section
    assert all(f"<td>{d.run_id}</td>" in section for d in agreement.judge_only) and "<a " not in section
    markdown = render_markdown(drifted)
    assert "## Judge–human agreement" in markdown and agreement.reading in markdown
    assert "| This week | 21 | 6 | 12 | 0 | 3 | 42.9% [" in markdown
    assert "| Baseline | 80 | 20 | 0 | 0 | 60 | 100.0% [" in markdown
    assert all(f"| {d.run_id} |" in markdown for d in agreement.judge_only)
    assert "Judge or app?" in markdown and "over-represented" in markdown


def test_simulated_history_pairs_match_the_store(tmp_path: Path) -> None:
    """On the demo's history the week's pairs are the random or feedback-forced evaluations whose run has a rating."""
    store = Store(tmp_path / "monitor.db")
    try:
        generate_history(store, now=NOW, seed=2)
        result = build_review(store, until=NOW)
        evaluations = list(store.evaluations(NOW - WEEK, NOW))
        rated = {r.run_id: r.rating for r in store.user_feedback(NOW - 5 * WEEK, NOW + timedelta(hours=1))}
    finally:
        store.close()
    counted = [e for e in evaluations if e.run_id in rated and e.sample_reason in ("rate", "feedback")]
    now = result.agreement.current
    assert now.n == len(counted) > 0
    assert now.forced == sum(e.sampling == "forced" for e in counted)
    assert now.both_bad + now.user_only == sum(rated[e.run_id] == "negative" for e in counted)
    flagged = sum(bool(e.hallucination) or e.faithfulness <= 2 for e in counted)
    assert now.both_bad + now.judge_only == flagged


@pytest.mark.parametrize(
    ("table", "kappa"),
    [
        pytest.param((10, 0, 0, 10), 1.0, id="perfect"),
        pytest.param((5, 5, 5, 5), 0.0, id="chance"),
        pytest.param((0, 10, 10, 0), -1.0, id="opposite"),
        pytest.param((0, 0, 0, 10), None, id="one-class-only"),
        pytest.param((0, 0, 0, 0), None, id="empty"),
    ],
)
def test_cohens_kappa(table: tuple[int, int, int, int], kappa: float | None) -> None:
    """Kappa from (both bad, judge only, user only, both fine); None when chance explains everything or nothing rated."""
    assert _kappa(*table) == (kappa if kappa is None else pytest.approx(kappa))


def test_agreement_chart_plots_each_periods_numbers(drifted: Review) -> None:
    """The chart's three lines are the periods' agreement, judge-flags-of-thumbs-down and passes-of-thumbs-up, in %."""
    axis = report_module._agreement_chart(drifted).axes[0]
    periods = [*drifted.agreement.baseline_periods, drifted.agreement.current]
    lines = {line.get_label(): list(line.get_ydata()) for line in axis.get_lines()}
    for label, name in (
        ("judge flags, of thumbs-down", "flagged_of_negative"),
        ("judge passes, of thumbs-up", "passed_of_positive"),
    ):
        expected = [100 * getattr(c, name) for c in periods if getattr(c, name) is not None]
        assert lines[label] == pytest.approx(expected)
    agreement = [100 * c.agreement for c in periods if c.agreement is not None]
    [errorbar] = axis.containers
    assert list(errorbar.lines[0].get_ydata()) == pytest.approx(agreement)
