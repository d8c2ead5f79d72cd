"""Segments: declared in metadata and tags, stored with invocations and evaluations, and reviewed per value."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import Monitor, MonitorConfig, SegmentConfig
from langchain_llmmonitor.core.judging import EvaluationInput
from langchain_llmmonitor.core.records import EvaluationJob, InvocationRecord, evaluation_id
from langchain_llmmonitor.core.segments import declared_segments
from langchain_llmmonitor.demo.app import DemoChatModel, build_chain
from langchain_llmmonitor.judge_worker import JudgeWorker
from langchain_llmmonitor.quality.judges import OfflineJudge
from langchain_llmmonitor.review import build_review, generate_history, render_html
from langchain_llmmonitor.review._records import Judged
from langchain_llmmonitor.review._segments import plan_segments
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing import LogCapture, metric_value

NOW = datetime(2026, 11, 30, tzinfo=UTC)
KEYS = ("app_version", "prompt_version", "model", "chain")


@pytest.mark.parametrize(
    ("metadata", "tags", "expected"),
    [
        pytest.param({"app_version": "v2"}, None, {"app_version": "v2"}, id="metadata"),
        pytest.param(None, ["prompt_version:p3", "team=search"], {"prompt_version": "p3"}, id="tag-colon"),
        pytest.param(None, ["app_version=2026.11"], {"app_version": "2026.11"}, id="tag-equals"),
        pytest.param({"app_version": "v2"}, ["app_version:v9"], {"app_version": "v2"}, id="metadata-wins"),
        pytest.param({"app_version": 3}, None, {"app_version": "3"}, id="number-as-text"),
        pytest.param({"app_version": {"major": 2}, "prompt_version": "  "}, None, None, id="not-a-value"),
        pytest.param({"app_version": "x" * 100}, None, {"app_version": "x" * 64}, id="cut"),
        pytest.param({"other": "v2"}, ["llmmonitor:evaluate"], None, id="unknown-keys"),
    ],
)
def test_declared_segments(metadata: Any, tags: Any, expected: dict[str, str] | None):
    """Metadata first, then `key:value` / `key=value` tags; plain values only, cut to the limit."""
    assert declared_segments(frozenset(KEYS), metadata, tags, 64) == expected


def _monitor(tmp_path: Path, **segments: Any) -> Monitor:
    config = MonitorConfig.from_mapping({"sampling": {"rate": 1.0}, "store": {"url": str(tmp_path / "m.db")}})
    if segments:
        config = config.with_overrides(segments=segments)
    return Monitor(config, registry=CollectorRegistry(), logger=LogCapture().logger, judge=OfflineJudge())


def _stored(monitor: Monitor) -> tuple[list[Any], list[Any]]:
    monitor.flush()
    since, until = NOW - timedelta(days=3650), datetime.now(UTC) + timedelta(days=1)
    return list(monitor.store.invocations(since, until)), list(monitor.store.evaluations(since, until))


def test_a_real_chain_stores_its_segments_with_the_invocation_and_the_evaluation(tmp_path: Path):
    """Metadata and tags of the call, the chat model's name and the root's name reach both stored rows."""
    chain = build_chain(DemoChatModel())
    with _monitor(tmp_path) as monitor:
        config = {"callbacks": [monitor], "metadata": {"app_version": "v2"}, "tags": ["prompt_version:p3"]}
        chain.invoke("How do I reset my password?", config=config)
        invocations, evaluations = _stored(monitor)
    expected = {"app_version": "v2", "prompt_version": "p3", "model": "gpt-4o-mini", "chain": "support_bot"}
    assert [i.segments for i in invocations] == [expected]
    assert [e.segments for e in evaluations] == [expected]


def test_undeclared_segments_are_the_model_and_the_chain_and_keys_are_configurable(tmp_path: Path):
    """Without metadata only the built-in two are stored; configured keys replace the defaults."""
    chain = build_chain(DemoChatModel())
    with _monitor(tmp_path / "a") as monitor:
        chain.invoke("How do I reset my password?", config={"callbacks": [monitor]})
        plain, _ = _stored(monitor)
    with _monitor(tmp_path / "b", keys=("tenant_tier",)) as monitor:
        metadata = {"tenant_tier": "gold", "app_version": "v2"}
        chain.invoke("How do I reset my password?", config={"callbacks": [monitor], "metadata": metadata})
        configured, _ = _stored(monitor)
    assert plain[0].segments == {"model": "gpt-4o-mini", "chain": "support_bot"}
    assert configured[0].segments == {"tenant_tier": "gold"}


def test_a_store_made_before_segments_gains_the_column_and_keeps_its_rows(tmp_path: Path):
    """Opening an older database adds the nullable column; old rows read as no segments, new ones keep theirs."""
    path = tmp_path / "old.db"
    Store(path).close()
    record = InvocationRecord(
        run_id="00000000-0000-4000-8000-000000000001",
        trace_id="00000000-0000-4000-8000-000000000001",
        name="rag",
        status="success",
        started_at=NOW,
        latency_s=1.0,
    )
    with sqlite3.connect(path) as connection:
        for table in ("invocations", "evaluations", "judge_jobs"):
            connection.execute(f"ALTER TABLE {table} DROP COLUMN segments")
        connection.execute(
            "INSERT INTO invocations (run_id, trace_id, name, status, started_at, latency_s, prompt_tokens,"
            " completion_tokens) VALUES (?, ?, 'rag', 'success', ?, 1.0, 0, 0)",
            (record.run_id, record.trace_id, NOW.replace(tzinfo=None).isoformat(sep=" ")),
        )
    store = Store(path)
    newer = replace(record, run_id="00000000-0000-4000-8000-000000000002", segments={"app_version": "v2"})
    store.add_invocations([newer])
    rows = list(store.invocations(NOW - timedelta(hours=1), NOW + timedelta(hours=1)))
    store.close()
    assert [(r.run_id[-1], r.segments) for r in rows] == [("1", {}), ("2", {"app_version": "v2"})]


def _judged(at: datetime, segments: dict[str, str], forced: bool = False) -> Judged:
    return Judged(
        at=at,
        run_id="r",
        trace_id="r",
        project=None,
        judge_key="j",
        sampling="forced" if forced else "random",
        sample_reason="rate",
        scores={"faithfulness": 4.0},
        reason=None,
        question=None,
        answer=None,
        source="store",
        segments=segments,
    )


def test_segments_to_test_are_chosen_from_counts_alone():
    """Values under the minimum, keys with fewer than two values above it and forced samples are left out; a
    baseline of its own needs the minimum too."""
    week = NOW - timedelta(days=7)
    judged = [
        *(_judged(week + timedelta(hours=i), {"app_version": "v1", "model": "m"}) for i in range(60)),
        *(_judged(week + timedelta(hours=i), {"app_version": "v2", "model": "m"}) for i in range(55)),
        *(_judged(week + timedelta(hours=i), {"app_version": "v3", "model": "m"}) for i in range(10)),
        *(_judged(week + timedelta(hours=i), {"app_version": "v4"}, forced=True) for i in range(90)),
        *(_judged(week - timedelta(hours=i + 1), {"app_version": "v1"}) for i in range(50)),
    ]
    plan = plan_segments(judged, baseline_start=week - timedelta(days=28), window_start=week, until=NOW, min_samples=50)
    assert [(p.key, p.value, p.current_n, p.own_baseline) for p in plan] == [
        ("app_version", "v1", 60, True),
        ("app_version", "v2", 55, False),
    ]
    without_v2 = [j for j in judged if j.segments.get("app_version") != "v2"]
    assert plan_segments(without_v2, baseline_start=week, window_start=week, until=NOW, min_samples=50) == []


@pytest.fixture(scope="module")
def release_review(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Six weeks where release v2 takes half the traffic in the last one and answers worse; v1 unchanged."""
    store = Store(tmp_path_factory.mktemp("release") / "history.db")
    history = generate_history(store, scenario="release", now=NOW)  # RELEASE_SEED
    review = build_review(store, until=history.end)
    store.close()
    return review


def test_only_the_degraded_release_is_named_and_the_other_stays_stable(release_review: Any):
    """v2's faithfulness is DEGRADED against the traffic it replaced, v1 is stable on every criterion, and the diluted
    overall faithfulness alone would not have said so."""
    review = release_review
    v1, v2 = review.segment("app_version", "v1"), review.segment("app_version", "v2")
    assert (v1.baseline, v2.baseline) == ("segment", "all traffic")
    assert [c.verdict for c in v1.criteria] == ["stable"] * 4
    assert {c.name: c.verdict for c in v2.criteria}["faithfulness"] == "degraded"
    assert review.criterion("faithfulness").verdict == "stable"
    assert review.status == "degraded"
    named = [line for line in review.highlights if line.startswith("Faithfulness DEGRADED in app_version v2")]
    assert len(named) == 1 and "v1 stable" in named[0]


def test_segment_verdicts_share_the_reviews_alpha(release_review: Any, tmp_path: Path):
    """With segments tested, half the alpha is split over their 8 verdicts, half over the overall 4; without any
    (one app_version), the overall verdicts keep all of it."""
    assert release_review.verdict_alpha == pytest.approx(0.05 / 2 / 4)
    assert release_review.segment_alpha == pytest.approx(0.05 / 2 / 8)
    store = Store(tmp_path / "stable.db")
    history = generate_history(store, scenario="stable", weeks=5, now=NOW)
    plain = build_review(store, until=history.end)
    store.close()
    assert (plain.segments, plain.segment_alpha, plain.verdict_alpha) == ((), None, pytest.approx(0.05 / 4))


def test_the_release_is_marked_and_reported(release_review: Any):
    """The review dates v2's first appearance, and the JSON and the HTML page carry the segment table."""
    review = release_review
    [release] = review.releases
    assert (release.key, release.value) == ("app_version", "v2")
    assert review.window_start <= release.at < review.window_start + timedelta(hours=6)
    data = json.loads(json.dumps(review.to_dict()))
    assert {(s["key"], s["value"]) for s in data["segments"]} == {("app_version", "v1"), ("app_version", "v2")}
    assert data["releases"][0]["value"] == "v2"
    page = render_html(review)
    assert "By segment" in page and "app_version = v2" in page and "DEGRADED 4.18 → 3.71" in page


def test_the_segment_verdicts_are_a_dataframe_and_shown_inline(release_review: Any):
    """`segments_frame()` has a row per segment and criterion with the review's verdicts, the notebook view shows the
    "By segment" table, and each worst answer says which release gave it."""
    frame = release_review.segments_frame()
    assert len(frame) == 8
    verdicts = frame.set_index(["value", "criterion"])["verdict"]
    assert verdicts["v2", "faithfulness"] == "degraded"
    assert set(verdicts["v1"]) == {"stable"}
    html = release_review._repr_html_()
    assert "By segment" in html and "app_version = v2" in html
    worst = release_review.worst_frame()
    assert list(worst["segments.app_version"]) == [w.segments["app_version"] for w in release_review.worst_samples]


def _labelled_monitor(registry: CollectorRegistry, **segments: Any) -> Monitor:
    config = MonitorConfig.from_mapping({"sampling": {"rate": 1.0}, "segments": segments})
    return Monitor(config, registry=registry, logger=LogCapture().logger, judge=OfflineJudge())


def test_opted_in_segment_labels_are_on_the_invocation_and_quality_metrics_and_bounded(tmp_path: Path):
    """With metric_labels, each invocation and score is counted under its app_version; past max_label_values new
    values are "other", and a trace without one gets the empty label."""
    registry = CollectorRegistry()
    chain = build_chain(DemoChatModel())
    with _labelled_monitor(registry, metric_labels=["app_version"], max_label_values=2) as monitor:
        for version in ("v1", "v2", "v3", "v4", None, "v1"):
            metadata = {"app_version": version} if version else {}
            chain.invoke("How do I reset my password?", config={"callbacks": [monitor], "metadata": metadata})
        monitor.flush()
    invocations = {
        version: metric_value(
            registry, "llm_invocations_total", name="support_bot", status="success", app_version=version
        )
        for version in ("v1", "v2", "other", "", "v3")
    }
    assert invocations == {"v1": 2, "v2": 1, "other": 2, "": 1, "v3": 0}
    scored = {
        version: metric_value(
            registry,
            "llm_quality_score_count",
            criterion="faithfulness",
            judge="offline",
            sampling="random",
            app_version=version,
        )
        for version in ("v1", "v2", "other", "")
    }
    assert scored == {"v1": 2, "v2": 1, "other": 2, "": 1}


def test_segment_labels_are_off_by_default_and_a_shared_registry_keeps_one_set():
    """Without the opt-in an invocation is counted under its name and status only; a monitor wanting other labels on
    the same registry is refused with the reason."""
    registry = CollectorRegistry()
    with _labelled_monitor(registry) as monitor:
        metadata = {"app_version": "v2"}
        build_chain(DemoChatModel()).invoke("Hi", config={"callbacks": [monitor], "metadata": metadata})
        exact = registry.get_sample_value("llm_invocations_total", {"name": "support_bot", "status": "success"})
        assert exact == 1
        with pytest.raises(ValueError, match=r"segment labels \[\], not \['model'\]"):
            _labelled_monitor(registry, metric_labels=["model"])


def test_llmmonitor_worker_labels_the_scores_it_judges(tmp_path: Path):
    """A judge worker given the label judges stored jobs under the app_version they carry."""
    store = Store(tmp_path / "jobs.db")
    item = EvaluationInput(question="When?", context=("Open 9-17.",), answer="Open 9-17.")
    jobs = [
        EvaluationJob(
            run_id=run_id,
            trace_id=run_id,
            item=item,
            sampling="random",
            sample_reason="rate",
            segments={"app_version": version},
            id=evaluation_id(run_id),
        )
        for run_id, version in ((str(uuid.uuid4()), "v1"), (str(uuid.uuid4()), "v2"))
    ]
    store.add_invocations([], jobs)
    worker = JudgeWorker(store, OfflineJudge(), segments=SegmentConfig(metric_labels=("app_version",)))
    worker.run(threading.Event(), idle_exit=0.3)
    worker.close()
    store.close()
    for version in ("v1", "v2"):
        labels = dict(judge="offline", sampling="random", app_version=version)
        assert sum(metric_value(worker.registry, "llm_quality_hallucination_verdicts_total", verdict=v, **labels)
                   for v in ("yes", "no")) == 1  # fmt: skip
