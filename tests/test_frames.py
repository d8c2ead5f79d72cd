"""The store's records as pandas DataFrames, on a real SQLite store: one row per record, one typed column per field,
mapping fields spread by key, the default period, and the missing extra named."""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langchain_llmmonitor import Monitor
from langchain_llmmonitor.core.records import EvaluationRecord, InvocationRecord, UserFeedbackRecord, utcnow
from langchain_llmmonitor.frames import INSTALL_HINT, kinds_of, records_frame
from langchain_llmmonitor.storage.store import Store

NOW = utcnow()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "monitor.db", outbox=False)
    yield store
    store.close()


def invocation(index: int, *, ago: timedelta = timedelta(hours=1), **changes: object) -> InvocationRecord:
    run_id = str(uuid.UUID(int=index + 1))
    values: dict[str, object] = dict(
        run_id=run_id,
        trace_id=run_id,
        name="support_bot",
        status="success",
        started_at=NOW - ago + timedelta(seconds=index),
        latency_s=0.5 + index,
        prompt_tokens=120,
        completion_tokens=30,
        cost_usd=0.0004,
        request_id=f"req-{index}",
    )
    return InvocationRecord(**{**values, **changes})  # type: ignore[arg-type]


def evaluation(**changes: object) -> EvaluationRecord:
    run_id = str(uuid.uuid4())
    values: dict[str, object] = dict(
        run_id=run_id,
        trace_id=run_id,
        judge="offline",
        judge_model="lexical-grounding-v1",
        prompt_version="2",
        sampling="random",
        sample_reason="rate",
        status="success",
        faithfulness=4,
        relevance=5,
        completeness=3,
        hallucination=False,
        created_at=NOW - timedelta(hours=1),
    )
    return EvaluationRecord(**{**values, **changes})  # type: ignore[arg-type]


def field_names(cls: type) -> list[str]:
    """The record's fields that are columns as they are: a mapping field (`segments`) is spread by key instead."""
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if Mapping not in kinds_of(hints[f.name])]


def test_invocations_frame_has_a_row_per_record_and_a_column_per_field(store: Store) -> None:
    """Four invocations, one failed and one unpriced: typed columns, NaN only where the cost is unknown."""
    records = [invocation(0), invocation(1), invocation(2, status="error", cost_usd=None), invocation(3)]
    store.add_invocations(records)
    frame = store.invocations_frame()
    assert list(frame.columns) == field_names(InvocationRecord)
    assert list(frame["run_id"]) == [r.run_id for r in records]
    assert frame["started_at"].dt.tz == UTC and list(frame["started_at"]) == [r.started_at for r in records]
    assert frame["prompt_tokens"].dtype == "Int64" and frame["prompt_tokens"].sum() == 4 * 120
    assert frame["cost_usd"].isna().tolist() == [False, False, True, False]
    assert frame.groupby("status").size().to_dict() == {"error": 1, "success": 3}
    assert frame["request_id"].dtype == "string"


def test_evaluations_frame_keeps_missing_scores_missing(store: Store) -> None:
    """A failed evaluation has NA scores and verdict, while the successful one's stay ints and a bool."""
    unscored = dict(faithfulness=None, relevance=None, completeness=None, hallucination=None)
    ok, failed = evaluation(), evaluation(status="error", error_type="timeout", **unscored)
    store.add_evaluation(ok)
    store.add_evaluation(failed)
    frame = store.evaluations_frame().set_index("id")
    assert list(frame.columns) == [name for name in field_names(EvaluationRecord) if name != "id"]
    assert (frame["faithfulness"].dtype, frame["hallucination"].dtype) == ("Int64", "boolean")
    assert frame.loc[ok.id, "faithfulness"] == 4 and not frame.loc[ok.id, "hallucination"]
    assert frame.loc[[failed.id], ["faithfulness", "relevance", "completeness", "hallucination"]].isna().all(axis=None)
    assert frame["created_at"].dt.tz == UTC


def test_user_feedback_frame_and_its_default_period(store: Store) -> None:
    """Without bounds: the 7 days up to now, so a rating 8 days old is left out and yesterday's is in."""

    def rated(days: float, score: float) -> UserFeedbackRecord:
        run_id = str(uuid.uuid4())
        rating = "negative" if score < 0 else "positive"
        created_at = NOW - timedelta(days=days)
        return UserFeedbackRecord(run_id=run_id, trace_id=run_id, score=score, rating=rating, created_at=created_at)

    old, recent, newer = rated(8, -1), rated(1, -1), rated(0.5, 1)
    for record in (old, recent, newer):
        store.add_user_feedback(record)
    frame = store.user_feedback_frame()
    assert list(frame["id"]) == [recent.id, newer.id]
    assert list(frame.columns) == field_names(UserFeedbackRecord)
    assert frame["score"].tolist() == [-1.0, 1.0]
    assert list(store.user_feedback_frame(since=NOW - timedelta(days=30))["id"]) == [old.id, recent.id, newer.id]


def test_since_and_until_make_a_half_open_period(store: Store) -> None:
    """[since, until): a record exactly at `until` belongs to the next period."""
    records = [invocation(i, ago=timedelta(0)) for i in range(3)]
    store.add_invocations(records)
    frame = store.invocations_frame(since=records[0].started_at, until=records[2].started_at)
    assert list(frame["run_id"]) == [records[0].run_id, records[1].run_id]
    empty = store.invocations_frame(until=NOW - timedelta(days=30))
    assert empty.empty and list(empty.columns) == field_names(InvocationRecord)
    assert empty["started_at"].dt.tz == UTC and empty["prompt_tokens"].dtype == "Int64"


def test_naive_datetimes_are_refused(store: Store) -> None:
    """A naive bound would be read in some unknown zone: ValueError instead."""
    with pytest.raises(ValueError, match="timezone-aware"):
        store.evaluations_frame(since=datetime(2026, 1, 1))


@dataclass(frozen=True, kw_only=True)
class SegmentedInvocation(InvocationRecord):
    """An invocation with the `segments` the store's records are getting (app version, model, chain...)."""

    segments: Mapping[str, str] = field(default_factory=dict)


def test_a_mapping_field_is_spread_into_a_column_per_key() -> None:
    """`segments` becomes `segments.<key>` columns in order of first appearance, NA where a record lacks the key."""
    records = [
        SegmentedInvocation(**vars_of(invocation(0)), segments={"app_version": "v1", "chain": "rag"}),
        SegmentedInvocation(**vars_of(invocation(1)), segments={"app_version": "v2", "model": "gpt-4o-mini"}),
        SegmentedInvocation(**vars_of(invocation(2))),
    ]
    frame = records_frame(records, SegmentedInvocation)
    spread = ["segments.app_version", "segments.chain", "segments.model"]
    assert list(frame.columns) == [*field_names(InvocationRecord), *spread]
    assert frame["segments.app_version"].tolist()[:2] == ["v1", "v2"] and frame["segments.app_version"].isna()[2]
    assert frame["segments.model"].isna().tolist() == [True, False, True]
    assert frame.groupby("segments.app_version").size().to_dict() == {"v1": 1, "v2": 1}


def vars_of(record: InvocationRecord) -> dict[str, object]:
    """The record's fields, but the mapping ones (the store's records may have `segments` already)."""
    return {name: getattr(record, name) for name in field_names(type(record))}


def test_without_pandas_the_error_names_the_extra(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """pandas is optional: asking for a frame without it raises ImportError with the pip command."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    with Monitor() as monitor:
        snapshot = monitor.snapshot()
    assert "LLM calls" in snapshot._repr_html_()  # the snapshot itself needs no pandas
    for frame in (store.invocations_frame, store.evaluations_frame, store.user_feedback_frame, snapshot.to_frame):
        with pytest.raises(ImportError, match=re.escape(INSTALL_HINT)):
            frame()
