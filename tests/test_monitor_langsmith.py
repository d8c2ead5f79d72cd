"""The Monitor with a store and LangSmith: scores and thumbs land on the runs the tracer posted, exactly once.

The real `langsmith` SDK talks HTTP to the local fake LangSmith; LangChain's own `LangChainTracer` posts the runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tracers import LangChainTracer
from langsmith import traceable
from langsmith.run_helpers import tracing_context

from langchain_llmmonitor import FeedbackConfig, LangSmithConfig, Monitor, MonitorConfig, OfflineJudge
from langchain_llmmonitor.demo.app import build_chain
from langchain_llmmonitor.feedback import InvalidFeedbackError, UnknownRunError
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client
from tests._postgres import postgres_url  # noqa: F401
from tests.conftest import value

QUESTION = "How long do I have to return an item?"
JUDGE_KEYS = {"faithfulness", "relevance", "completeness", "hallucination"}
ALL_TIME = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def server() -> Iterator[FakeLangSmith]:
    with FakeLangSmith() as fake:
        yield fake


SUPPORT = MonitorConfig(langsmith=LangSmithConfig(project="support"))


def traced_monitor(server: FakeLangSmith, tmp_path: Path, registry: Any, logs: Any) -> Monitor:
    return Monitor(
        SUPPORT,
        registry=registry,
        logger=logs.logger,
        judge=OfflineJudge(),
        sample_rate=1.0,
        store=tmp_path / "monitor.db",
        langsmith_client=fast_client(server.url, auto_batch_tracing=False),
    )


def tracer_for(server: FakeLangSmith) -> LangChainTracer:
    return LangChainTracer(client=fast_client(server.url), project_name="support")


def settle(monitor: Monitor, tracer: LangChainTracer) -> None:
    tracer.wait_for_futures()
    tracer.client.flush()
    assert monitor.flush(30)


def test_judge_scores_and_user_rating_land_on_the_root_run_the_tracer_posted(server, tmp_path, registry, logs):
    """Every score and the thumbs-down are feedback on the tracer's root run, with the trace id, exactly once."""
    monitor = traced_monitor(server, tmp_path, registry, logs)
    tracer = tracer_for(server)
    build_chain().invoke(QUESTION, config={"callbacks": [monitor, tracer], "metadata": {"request_id": "req-1"}})
    record = monitor.feedback("req-1", score=-1, comment="that is not our policy")  # before anything reached the store
    settle(monitor, tracer)

    roots = [run for run in server.runs.values() if run.get("parent_run_id") is None]
    assert len(roots) == 1
    root_id = roots[0]["id"]
    feedback = server.feedback
    assert {item["key"] for item in feedback} == JUDGE_KEYS | {"user_rating"}
    assert {item["run_id"] for item in feedback} == {root_id}
    assert {item["trace_id"] for item in feedback if item.get("trace_id")} <= {root_id}
    assert server.duplicates == []
    judge_item = next(item for item in feedback if item["key"] == "faithfulness")
    assert judge_item["feedback_source"]["metadata"]["judge_model"] == "lexical-grounding-v1"
    user_item = next(item for item in feedback if item["key"] == "user_rating")
    assert user_item["id"] == record.id and user_item["score"] == -1
    assert value(registry, "llm_user_feedback_total", rating="negative") == 1
    assert value(registry, "llm_feedback_delivered_total", kind="judge") == 4
    assert value(registry, "llm_feedback_delivered_total", kind="user") == 1
    monitor.close()


def test_chain_inside_traceable_gets_feedback_on_its_run_within_the_traceable_trace(server, tmp_path, registry, logs):
    """Under `@traceable`, scores go to the chain's run and carry the trace id of the outer traceable span."""
    monitor = traced_monitor(server, tmp_path, registry, logs)
    client = fast_client(server.url)
    chain = build_chain()

    @traceable(name="handle_request", client=client, project_name="support")
    def handle(question: str) -> str:
        return chain.invoke(question, config={"callbacks": [monitor]})

    with tracing_context(enabled=True, client=client, project_name="support"):
        handle(QUESTION)
    client.flush()
    assert monitor.flush(30)

    outer = next(run for run in server.runs.values() if run.get("name") == "handle_request")
    chain_run = next(run for run in server.runs.values() if run.get("name") == "support_bot")
    assert chain_run["parent_run_id"] == outer["id"]
    feedback = server.feedback
    assert {item["key"] for item in feedback} == JUDGE_KEYS
    assert {item["run_id"] for item in feedback} == {chain_run["id"]}
    (invocation,) = monitor.store.invocations(*ALL_TIME)
    assert invocation.trace_id == outer["id"] == outer["trace_id"]
    monitor.close()


def test_caller_supplied_run_id_is_the_one_scored_and_rated(server, tmp_path, registry, logs):
    """A `run_id` passed in the config is the run that receives the scores and the user's rating."""
    monitor = traced_monitor(server, tmp_path, registry, logs)
    tracer = tracer_for(server)
    run_id = uuid.uuid4()
    build_chain().invoke(QUESTION, config={"callbacks": [monitor, tracer], "run_id": run_id})
    monitor.feedback(run_id, score=1)
    settle(monitor, tracer)
    assert {item["run_id"] for item in server.feedback} == {str(run_id)}
    assert str(run_id) in server.runs
    monitor.close()


def test_langsmith_down_then_back_delivers_everything_once_and_never_slows_requests(tmp_path, registry, logs):
    """With LangSmith unreachable, requests and feedback still succeed; when it returns, every item arrives once."""
    server = FakeLangSmith().start()
    port = server.port
    server.stop()
    monitor = Monitor(
        SUPPORT,
        registry=registry,
        logger=logs.logger,
        judge=OfflineJudge(),
        sample_rate=1.0,
        store=tmp_path / "monitor.db",
        langsmith_client=fast_client(f"http://127.0.0.1:{port}", auto_batch_tracing=False, attempts=1, timeout_ms=500),
    )
    chain = build_chain()
    for i in range(3):
        chain.invoke(QUESTION, config={"callbacks": [monitor], "metadata": {"request_id": f"r{i}"}})
        monitor.feedback(f"r{i}", score=1)
    assert not monitor.flush(1.0)  # cannot drain while LangSmith is down...
    assert monitor.store.pending_count() == 3 * 4 + 3  # ...and nothing was lost

    revived = FakeLangSmith(port=port).start()
    try:
        assert monitor.flush(60)
        assert len(revived.feedback) == 15 and revived.duplicates == []
    finally:
        monitor.close()
        revived.stop()


@pytest.mark.parametrize("backend", [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres")])
def test_store_holds_invocations_evaluations_and_feedback(backend, tmp_path, registry, logs, request):
    """Without LangSmith, everything still lands in the store (SQLite or PostgreSQL) for the weekly review."""
    url = tmp_path / "m.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    monitor = Monitor(registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=1.0, store=url)
    assert monitor.forwarder is None
    chain = build_chain()
    chain.batch([QUESTION] * 3, config={"callbacks": [monitor], "metadata": {"request_id": "batch-1"}})
    monitor.feedback("batch-1", score=1, comment="thanks")
    assert monitor.flush(20)
    store = monitor.store
    invocations = list(store.invocations(*ALL_TIME))
    evaluations = list(store.evaluations(*ALL_TIME))
    assert len(invocations) == 3 and {i.status for i in invocations} == {"success"}
    assert all(i.prompt_tokens > 0 and i.latency_s > 0 for i in invocations)
    assert len(evaluations) == 3 and {e.sample_reason for e in evaluations} == {"rate"}
    assert {e.run_id for e in evaluations} == {i.run_id for i in invocations}
    (rating,) = store.user_feedback(*ALL_TIME)
    assert rating.comment == "thanks" and rating.run_id in {i.run_id for i in invocations}
    monitor.close()


def test_negative_rating_forces_a_judge_evaluation_of_an_unsampled_trace(tmp_path, registry, logs):
    """A thumbs-down on a trace the rate skipped gets it judged, marked forced with reason "feedback"; once only."""
    monitor = Monitor(
        registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=0.0, store=tmp_path / "m.db"
    )
    chain = build_chain()
    chain.invoke(QUESTION, config={"callbacks": [monitor], "metadata": {"request_id": "bad"}})
    chain.invoke(QUESTION, config={"callbacks": [monitor], "metadata": {"request_id": "good"}})
    monitor.feedback("good", score=1)
    monitor.feedback("bad", score=-1)
    monitor.feedback("bad", score=-1)
    assert monitor.flush(20)
    (evaluation,) = monitor.store.evaluations(*ALL_TIME)
    assert (evaluation.sampling, evaluation.sample_reason, evaluation.request_id) == ("forced", "feedback", "bad")
    assert value(registry, "llm_quality_samples_total", reason="feedback") == 1
    monitor.close()


@pytest.mark.parametrize(
    ("key", "score", "comment", "error"),
    [
        pytest.param("nobody", 1, None, UnknownRunError, id="unknown-id"),
        pytest.param("known", 0, None, InvalidFeedbackError, id="zero-on-thumbs"),
        pytest.param("known", 5, None, InvalidFeedbackError, id="off-scale"),
        pytest.param("known", 1, "x" * 5000, InvalidFeedbackError, id="comment-too-long"),
    ],
)
def test_bad_feedback_is_refused_clearly_and_stores_nothing(tmp_path, registry, logs, key, score, comment, error):
    """Unknown ids and invalid ratings raise a clear error and leave the store without a rating."""
    monitor = Monitor(registry=registry, logger=logs.logger, sample_rate=0.0, store=tmp_path / "m.db")
    build_chain().invoke(QUESTION, config={"callbacks": [monitor], "metadata": {"request_id": "known"}})
    with pytest.raises(error):
        monitor.feedback(key, score=score, comment=comment)
    assert monitor.flush(10)
    assert list(monitor.store.user_feedback(*ALL_TIME)) == []
    monitor.close()


def test_feedback_needs_a_store(registry, logs):
    """Without a store there is nowhere durable to put a rating: a clear error says how to configure one."""
    monitor = Monitor(registry=registry, logger=logs.logger, sample_rate=0.0)
    with pytest.raises(RuntimeError, match="store"):
        monitor.feedback(uuid.uuid4(), score=1)


def test_feedback_token_round_trip(tmp_path, registry, logs):
    """A token issued for a run verifies for that run only."""
    from langchain_llmmonitor.feedback.tokens import InvalidFeedbackToken

    config = MonitorConfig(feedback=FeedbackConfig(secret="s" * 32))
    monitor = Monitor(config, registry=registry, logger=logs.logger, sample_rate=0.0, store=tmp_path / "m.db")
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    token = monitor.feedback_token(run_a)
    monitor.feedback_tokens.verify(token, run_a)
    with pytest.raises(InvalidFeedbackToken):
        monitor.feedback_tokens.verify(token, run_b)
    monitor.close()


def test_store_outage_does_not_reach_the_chain(tmp_path, registry, logs):
    """If the database goes away for good, requests still succeed, the row is held until close, then counted and
    logged by number."""
    store = Store(tmp_path / "m.db")
    monitor = Monitor(registry=registry, logger=logs.logger, sample_rate=0.0, store=store)
    store.engine.dispose()
    (tmp_path / "m.db").unlink()
    (tmp_path / "m.db").mkdir()  # the path is now a directory: every write fails
    assert build_chain().invoke(QUESTION, config={"callbacks": [monitor]})
    assert not monitor.flush(1.0)
    assert value(registry, "llm_monitor_dropped_total", what="invocation", reason="shutdown") == 0  # still held
    assert not monitor.close(1.0)
    assert value(registry, "llm_monitor_dropped_total", what="invocation", reason="shutdown") == 1
    assert [(event["what"], event["lost"]) for event in logs.named("store_rows_dropped")] == [("invocation", 1)]
    assert len(logs.named("store_unavailable")) == 1
    store.close()


def test_invocation_started_at_is_wall_clock_time(tmp_path, registry, logs):
    """Stored start times are real UTC moments (the review buckets them by day)."""
    monitor = Monitor(registry=registry, logger=logs.logger, sample_rate=0.0, store=tmp_path / "m.db")
    before = datetime.now(UTC)
    build_chain().invoke(QUESTION, config={"callbacks": [monitor]})
    assert monitor.flush(10)
    (invocation,) = monitor.store.invocations(before - timedelta(minutes=1), before + timedelta(minutes=1))
    assert before - timedelta(seconds=1) <= invocation.started_at <= datetime.now(UTC)
    monitor.close()
