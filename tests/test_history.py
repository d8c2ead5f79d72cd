"""The simulated history: what it writes into a real SQLite store, that it is reproducible and never forwarded."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langchain_llmmonitor.core.records import EvaluationRecord
from langchain_llmmonitor.review import HistorySummary, generate_history
from langchain_llmmonitor.storage.store import Store

NOW = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = timedelta(weeks=1)


def week_of(moment: datetime, start: datetime) -> int:
    """1 = the oldest simulated week."""
    return (moment - start) // WEEK + 1


def write(tmp_path: Path, name: str = "history.db", **options: object) -> tuple[Store, HistorySummary]:
    store = Store(tmp_path / name)
    return store, generate_history(store, now=NOW, **options)  # type: ignore[arg-type]


def evaluations(store: Store, history: HistorySummary) -> list[EvaluationRecord]:
    return list(store.evaluations(history.start, history.end))


def test_history_has_the_asked_shape_and_nothing_in_the_outbox(tmp_path: Path) -> None:
    """6 weeks of 150 random evaluations at a 25% sample rate, forced ones for recovered errors and thumbs-down, no outbox."""
    store, history = write(tmp_path)
    assert (history.start, history.end) == (NOW - 6 * WEEK, NOW)
    invocations = list(store.invocations(history.start, history.end))
    assert len(invocations) == history.invocations == 6 * 600
    judged = evaluations(store, history)
    random_per_week = Counter(week_of(e.created_at, history.start) for e in judged if e.sampling == "random")
    assert random_per_week == dict.fromkeys(range(1, 7), 150)
    forced = [e for e in judged if e.sampling == "forced"]
    assert len(forced) == history.forced_evaluations > 0
    assert {e.sample_reason for e in forced} == {"error", "feedback"}
    failed_runs = {i.run_id for i in invocations if i.status == "error"}
    assert failed_runs and not failed_runs & {e.run_id for e in judged}, "a failed root has no answer to judge"
    answered_runs = {i.run_id for i in invocations if i.status == "success"}
    assert {e.run_id for e in forced if e.sample_reason == "error"} <= answered_runs
    ratings = list(store.user_feedback(history.start, history.end))
    negative_runs = {r.run_id for r in ratings if r.rating == "negative"}
    assert {e.run_id for e in forced if e.sample_reason == "feedback"} <= negative_runs
    assert len(ratings) == history.user_feedback > 0
    assert all(history.start <= e.created_at < history.end for e in judged)
    assert store.pending_count() == 0, "simulated scores must never be queued for LangSmith"


def test_same_seed_gives_the_same_rows_and_writing_twice_adds_nothing(tmp_path: Path) -> None:
    """Ids and values come from the seed: two stores match row for row, and a rewrite is a no-op."""
    first, history = write(tmp_path, "a.db", weeks=2, per_week=40)
    second, _ = write(tmp_path, "b.db", weeks=2, per_week=40)
    assert evaluations(first, history) == evaluations(second, history)
    generate_history(first, now=NOW, weeks=2, per_week=40)
    assert len(evaluations(first, history)) == history.evaluations
    assert len(list(first.invocations(history.start, history.end))) == history.invocations
    other, _ = write(tmp_path, "c.db", weeks=2, per_week=40, seed=99)
    assert {e.id for e in evaluations(other, history)}.isdisjoint({e.id for e in evaluations(first, history)})


@pytest.mark.parametrize(
    ("scenario", "last_week_faithfulness", "last_week_hallucination"),
    [pytest.param("degradation", 3.9, 0.12, id="degradation"), pytest.param("stable", 4.2, 0.05, id="stable")],
)
def test_scenario_sets_the_last_weeks_quality(
    tmp_path: Path, scenario: str, last_week_faithfulness: float, last_week_hallucination: float
) -> None:
    """Random samples of earlier weeks score ~4.2 with ~5% hallucination; the last is ~3.9 and ~12% when degrading."""
    store, history = write(tmp_path, scenario=scenario, weeks=2, per_week=1000)
    random = [e for e in evaluations(store, history) if e.sampling == "random"]
    earlier = [e for e in random if week_of(e.created_at, history.start) == 1]
    last = [e for e in random if week_of(e.created_at, history.start) == 2]
    assert statistics.mean(e.faithfulness for e in earlier) == pytest.approx(4.2, abs=0.1)
    assert statistics.mean(e.faithfulness for e in last) == pytest.approx(last_week_faithfulness, abs=0.1)
    assert statistics.mean(e.hallucination for e in earlier) == pytest.approx(0.05, abs=0.02)
    assert statistics.mean(e.hallucination for e in last) == pytest.approx(last_week_hallucination, abs=0.03)


def test_degradation_slides_within_the_last_week(tmp_path: Path) -> None:
    """The drop is slow: the last week's second half scores lower than its first half."""
    store, history = write(tmp_path, weeks=1, per_week=600)
    last_start = history.end - WEEK
    last = [e for e in evaluations(store, history) if e.sampling == "random" and e.created_at >= last_start]
    halfway = last_start + WEEK / 2
    first_half = statistics.mean(e.faithfulness for e in last if e.created_at < halfway)
    second_half = statistics.mean(e.faithfulness for e in last if e.created_at >= halfway)
    assert first_half - second_half > 0.15


def test_judge_change_switches_judge_and_prompt_version(tmp_path: Path) -> None:
    """From week 4 on every evaluation names the second judge model and prompt version, before it the first."""
    store, history = write(tmp_path, scenario="stable", judge_change_at_week=4)
    assert history.judge_change_at == history.start + 3 * WEEK
    rows = evaluations(store, history)
    judges = {(week_of(e.created_at, history.start), e.judge_model, e.prompt_version) for e in rows}
    before = {(model, version) for week, model, version in judges if week < 4}
    after = {(model, version) for week, model, version in judges if week >= 4}
    assert before == {("gpt-4o-mini", "rag-judge-v1")}
    assert after == {("gpt-4.1-mini", "rag-judge-v2")}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"scenario": "collapse"}, "scenario", id="unknown-scenario"),
        pytest.param({"judge_change_at_week": 1}, "judge_change_at_week", id="judge-change-in-week-1"),
        pytest.param({"weeks": 0}, "weeks", id="no-weeks"),
        pytest.param({"now": datetime(2026, 3, 2)}, "timezone-aware", id="naive-now"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, options: dict[str, object], message: str) -> None:
    """Arguments that would write a meaningless history raise before anything is written."""
    store = Store(tmp_path / "history.db")
    options.setdefault("now", NOW)
    with pytest.raises(ValueError, match=message):
        generate_history(store, **options)  # type: ignore[arg-type]
    assert list(store.evaluations(NOW - 52 * WEEK, NOW + WEEK)) == []
