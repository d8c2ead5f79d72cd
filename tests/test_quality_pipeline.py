"""The background quality pipeline with the real offline judge, fake judges and a real SQLite store."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import workers
from langchain_llmmonitor.config import JudgeConfig
from langchain_llmmonitor.core.judging import (
    EvaluationInput,
    JudgeAPIError,
    JudgeError,
    JudgeParseError,
    JudgeRefusal,
    JudgeTimeout,
    JudgeUsage,
    Scores,
    Verdict,
)
from langchain_llmmonitor.core.records import EvaluationJob, EvaluationRecord
from langchain_llmmonitor.core.vocabulary import CRITERIA
from langchain_llmmonitor.quality.judges.offline import OfflineJudge
from langchain_llmmonitor.quality.pipeline import QualityPipeline
from langchain_llmmonitor.storage.schema import metadata
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.telemetry.metrics import MonitorMetrics, metrics_for
from tests._outages import lock_sqlite
from tests.conftest import LogRecorder, value

GROUNDED = EvaluationInput(
    question="What is the capital of France?",
    context=("Paris is the capital of France.",),
    answer="Paris is the capital of France.",
)
HALLUCINATED = EvaluationInput(
    question="What is the capital of France?",
    context=("Paris is the capital of France.",),
    answer="Berlin is the capital of France, founded by Napoleon in 1802.",
)
SECRET = "sk-live0123456789abcdefXYZ"
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
Make = Callable[..., QualityPipeline]
WAIT_S = 10.0  # upper bound for waiting on an event that must happen; never what an assertion measures
JUDGE_SETTINGS = frozenset(JudgeConfig.__dataclass_fields__)


def run_id(index: int) -> str:
    return str(uuid.UUID(int=index + 1))


def job(
    index: int = 0, item: EvaluationInput = GROUNDED, *, sampling: str = "random", reason: str = "rate"
) -> EvaluationJob:
    return EvaluationJob(
        run_id=run_id(index),
        trace_id=run_id(index),
        item=item,
        sampling=sampling,
        sample_reason=reason,
        request_id=f"req-{index}",
        project="shop",
    )


def verdict(
    judge: Any, *, hallucination: bool = False, reason: str = "fine", usage: JudgeUsage | None = None
) -> Verdict:
    scores = Scores(faithfulness=4, relevance=5, completeness=3, hallucination=hallucination, reason=reason)
    identity = dict(judge=judge.name, model=judge.model, prompt_version=judge.prompt_version)
    return Verdict(scores=scores, usage=usage or JudgeUsage(), **identity)


def scored(registry: CollectorRegistry, judge: str, criterion: str = "faithfulness", sampling: str = "random") -> float:
    """How many scores of one criterion were observed."""
    return value(registry, "llm_quality_score_count", criterion=criterion, judge=judge, sampling=sampling)


class CountingJudge:
    """Fixed scores and usage; counts its calls (for the cache and the dollar budget)."""

    name = "counting"
    model = "count-1"

    def __init__(self, *, prompt_version: str = "1", cost: float | None = 0.01) -> None:
        self.prompt_version = prompt_version
        self.cost = cost
        self.calls = 0
        self._lock = threading.Lock()

    def evaluate(self, item: EvaluationInput) -> Verdict:
        with self._lock:
            self.calls += 1
        return verdict(self, usage=JudgeUsage(prompt_tokens=100, completion_tokens=20, cost_usd=self.cost))


class BlockingJudge(CountingJudge):
    """Holds every evaluation until `release` is set, so tests control what is in flight."""

    name = "blocking"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def evaluate(self, item: EvaluationInput) -> Verdict:
        self.entered.set()
        self.release.wait(WAIT_S)
        return super().evaluate(item)


class FailingJudge:
    """Raises the given exception for answers that start with "fail", else scores normally."""

    name = "failing"
    model = "fail-1"
    prompt_version = "1"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def evaluate(self, item: EvaluationInput) -> Verdict:
        if item.answer.startswith("fail"):
            raise self.error
        return verdict(self)


class EchoJudge:
    """Puts the answer in its reason, like a real judge quoting what it judged."""

    name = "echo"
    model = "echo-1"
    prompt_version = "1"

    def evaluate(self, item: EvaluationInput) -> Verdict:
        return verdict(self, hallucination=True, reason=f"the answer says: {item.answer}")


class BrokenResultJudge(FailingJudge):
    """Returns something that is not a Verdict."""

    def evaluate(self, item: EvaluationInput) -> Any:
        return {"faithfulness": 5}


class OddKindError(JudgeError):
    kind = "something-new"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def metrics(registry: CollectorRegistry) -> MonitorMetrics:
    return metrics_for(registry)


@pytest.fixture
def store(tmp_path: Path, registry: CollectorRegistry) -> Iterator[Store]:
    opened = Store(tmp_path / "monitor.db", registry=registry)
    yield opened
    opened.close()


def with_config(kwargs: dict[str, Any]) -> dict[str, Any]:
    """QualityPipeline arguments with the `JudgeConfig` settings among `kwargs` moved into `config`."""
    settings = {name: kwargs.pop(name) for name in JUDGE_SETTINGS & kwargs.keys()}
    return {**kwargs, "config": JudgeConfig(**settings)}


@pytest.fixture
def make_pipeline(metrics: MonitorMetrics, logs: LogRecorder) -> Iterator[Make]:
    """Pipelines on the test's registry and log recorder, closed at teardown."""
    made: list[QualityPipeline] = []
    blocked: list[BlockingJudge] = []

    def make(judge: Any, **kwargs: Any) -> QualityPipeline:
        kwargs.setdefault("logger", logs.logger)
        pipeline = QualityPipeline(judge, metrics=metrics, **with_config(kwargs))
        made.append(pipeline)
        if isinstance(judge, BlockingJudge):
            blocked.append(judge)
        return pipeline

    yield make
    for judge in blocked:
        judge.release.set()
    for pipeline in made:
        pipeline.close(timeout=WAIT_S)


def stored(store: Store) -> list[EvaluationRecord]:
    return sorted(store.evaluations(*EVER), key=lambda record: record.run_id)


def judge_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("llmmonitor-judge-")}


@pytest.mark.parametrize(
    ("item", "sampling", "hallucination", "faithfulness"),
    [
        pytest.param(GROUNDED, "random", "no", 5, id="grounded-random"),
        pytest.param(HALLUCINATED, "random", "yes", 1, id="hallucinated-random"),
        pytest.param(HALLUCINATED, "forced", "yes", 1, id="hallucinated-forced"),
    ],
)
def test_offline_scores_reach_metrics_and_store(
    make_pipeline: Make,
    registry: CollectorRegistry,
    store: Store,
    item: EvaluationInput,
    sampling: str,
    hallucination: str,
    faithfulness: int,
) -> None:
    """Each criterion is observed under the job's sampling label and the scores, pinned to the judge, are stored."""
    pipeline = make_pipeline(OfflineJudge(), store=store)
    assert pipeline.submit(job(7, item, sampling=sampling, reason="rate" if sampling == "random" else "error"))
    assert pipeline.flush(WAIT_S)

    labels = dict(judge="offline", sampling=sampling)
    for criterion in CRITERIA:
        assert scored(registry, "offline", criterion, sampling) == 1
    assert value(registry, "llm_quality_score_sum", criterion="faithfulness", **labels) == faithfulness
    assert value(registry, "llm_quality_hallucination_verdicts_total", verdict=hallucination, **labels) == 1
    assert value(registry, "llm_judge_evaluations_total", judge="offline", status="success") == 1
    assert value(registry, "llm_judge_duration_seconds_count", judge="offline") == 1
    assert registry.get_sample_value("llm_judge_cost_usd_total", {"judge": "offline"}) is None  # cost unknown, not 0

    [record] = stored(store)
    assert (record.run_id, record.request_id, record.project) == (run_id(7), "req-7", "shop")
    assert (record.judge, record.judge_model, record.prompt_version) == (
        "offline",
        "lexical-grounding-v1",
        OfflineJudge.prompt_version,
    )
    assert (record.status, record.sampling, record.error_type) == ("success", sampling, None)
    assert record.faithfulness == faithfulness and record.hallucination == (hallucination == "yes")
    assert (record.question, record.answer) == (item.question, item.answer)
    assert store.pending_count() == 4  # three criteria and hallucination, bound for LangSmith


def test_judge_usage_is_counted_as_the_judges_own(
    make_pipeline: Make, registry: CollectorRegistry, store: Store
) -> None:
    """Judge tokens and dollars land in the judge's metrics and in the stored row."""
    pipeline = make_pipeline(CountingJudge(cost=0.25), store=store)
    for index, item in enumerate((GROUNDED, HALLUCINATED)):
        assert pipeline.submit(job(index, item))
    assert pipeline.flush(WAIT_S)

    assert value(registry, "llm_judge_tokens_total", judge="counting", type="prompt") == 200
    assert value(registry, "llm_judge_tokens_total", judge="counting", type="completion") == 40
    assert value(registry, "llm_judge_cost_usd_total", judge="counting") == pytest.approx(0.5)
    assert [(r.judge_prompt_tokens, r.judge_completion_tokens, r.judge_cost_usd) for r in stored(store)] == [
        (100, 20, 0.25),
        (100, 20, 0.25),
    ]


@pytest.mark.parametrize(
    ("judge", "kind"),
    [
        pytest.param(FailingJudge(JudgeTimeout("no answer in 30 s")), "timeout", id="timeout"),
        pytest.param(FailingJudge(JudgeParseError("not JSON")), "parse", id="parse"),
        pytest.param(FailingJudge(RuntimeError("bug in a custom judge")), "other", id="unexpected-exception"),
        pytest.param(FailingJudge(OddKindError("?")), "other", id="unknown-kind"),
        pytest.param(BrokenResultJudge(RuntimeError()), "other", id="not-a-verdict"),
    ],
)
def test_failed_evaluations_are_stored_as_missing_and_counted_by_kind(
    make_pipeline: Make,
    registry: CollectorRegistry,
    store: Store,
    logs: LogRecorder,
    judge: Any,
    kind: str,
) -> None:
    """A judge failure is an error of a bounded kind, a row without scores and no feedback: never a score."""
    pipeline = make_pipeline(judge, store=store)
    assert pipeline.submit(job(0, EvaluationInput("q?", ("c",), "fail: answer")))
    assert pipeline.flush(WAIT_S)

    assert value(registry, "llm_judge_errors_total", judge=judge.name, error_type=kind) == 1
    assert value(registry, "llm_judge_evaluations_total", judge=judge.name, status="error") == 1
    assert value(registry, "llm_judge_evaluations_total", judge=judge.name, status="success") == 0
    assert value(registry, "llm_judge_duration_seconds_count", judge=judge.name) == 1
    for criterion in CRITERIA:
        assert scored(registry, judge.name, criterion) == 0

    [record] = stored(store)
    assert (record.status, record.error_type) == ("error", kind)
    scores = (record.faithfulness, record.relevance, record.completeness, record.hallucination, record.reason)
    assert scores == (None,) * 5
    assert (record.judge, record.judge_model, record.prompt_version) == (judge.name, judge.model, "1")
    assert store.pending_count() == 0

    [event] = logs.named("quality_eval")
    assert (event["log_level"], event["status"], event["error_type"]) == ("warning", "error", kind)
    assert event["faithfulness"] is None and event["error"]


def test_worker_survives_judge_exceptions(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """After any number of exceptions, the same single worker keeps scoring the jobs behind them."""
    pipeline = make_pipeline(FailingJudge(RuntimeError("boom")), workers=1)
    answers = ["fail 1", "ok 1", "fail 2", "fail 3", "ok 2"]
    for index, answer in enumerate(answers):
        assert pipeline.submit(job(index, EvaluationInput("q?", ("c",), answer)))
    assert pipeline.flush(WAIT_S)

    assert value(registry, "llm_judge_errors_total", judge="failing", error_type="other") == 3
    assert value(registry, "llm_judge_evaluations_total", judge="failing", status="success") == 2
    assert value(registry, "llm_monitor_handler_errors_total", event="quality_worker") == 0


def test_store_failure_is_counted_and_logged_and_the_worker_goes_on(
    make_pipeline: Make, registry: CollectorRegistry, store: Store, logs: LogRecorder
) -> None:
    """With the store's tables gone, each lost evaluation is counted and logged with its number; the scores count."""
    metadata.drop_all(store.engine)
    pipeline = make_pipeline(OfflineJudge(), store=store, cache_size=0)
    for index in range(3):
        assert pipeline.submit(job(index))
    assert pipeline.flush(WAIT_S)

    assert value(registry, "llm_monitor_dropped_total", what="evaluation", reason="store_error") == 3
    assert value(registry, "llm_judge_evaluations_total", judge="offline", status="success") == 3
    assert [event["lost"] for event in logs.named("quality_store_error")] == [1, 1, 1]
    assert [event["stored"] for event in logs.named("quality_eval")] == [False] * 3


class CostlyRefusingJudge:
    """A judge whose model answered with a refusal that was still billed."""

    name, model, prompt_version = "refuser", "refuser-v1", "test"

    def evaluate(self, item: EvaluationInput) -> Verdict:
        error = JudgeRefusal("no")
        error.usage = JudgeUsage(prompt_tokens=800, completion_tokens=2, cost_usd=0.01)
        raise error


def test_a_failed_but_billed_evaluation_counts_its_spend(
    make_pipeline: Make, registry: CollectorRegistry, store: Store
) -> None:
    """A refusal is an error, never a score, yet its tokens and dollars count as judge spend (and in the store)."""
    pipeline = make_pipeline(CostlyRefusingJudge(), store=store)
    assert pipeline.submit(job(0))
    assert pipeline.flush(WAIT_S)
    assert value(registry, "llm_judge_errors_total", judge="refuser", error_type="refusal") == 1
    assert value(registry, "llm_judge_tokens_total", judge="refuser", type="prompt") == 800
    assert value(registry, "llm_judge_cost_usd_total", judge="refuser") == pytest.approx(0.01)
    assert value(registry, "llm_quality_score_count", criterion="faithfulness", judge="refuser", sampling="random") == 0
    (record,) = stored(store)
    assert (record.status, record.faithfulness, record.judge_prompt_tokens, record.judge_cost_usd) == (
        "error",
        None,
        800,
        0.01,
    )


def test_a_locked_store_is_waited_out_and_nothing_is_lost(
    make_pipeline: Make, registry: CollectorRegistry, tmp_path: Path, logs: LogRecorder
) -> None:
    """A database locked by another writer for a second: the write is retried until it lands, once, no loss counted."""
    store = Store(tmp_path / "locked.db", busy_timeout_seconds=0.05)
    lock_sqlite(tmp_path / "locked.db", seconds=1.0)
    pipeline = make_pipeline(OfflineJudge(), store=store)
    assert pipeline.submit(job(0))
    assert pipeline.flush(WAIT_S)
    assert [record.run_id for record in stored(store)] == [run_id(0)]
    assert value(registry, "llm_monitor_dropped_total", what="evaluation", reason="store_error") == 0
    assert logs.named("quality_store_error") == []
    store.close()


def test_queue_full_drops_without_waiting(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """With the judge stuck, submits beyond the queue return False at once (queue_full); the rest run later."""
    judge = BlockingJudge()
    pipeline = make_pipeline(judge, queue_size=2, workers=1)
    assert pipeline.submit(job(0))
    assert judge.entered.wait(WAIT_S)  # job 0 is in flight, the queue is empty
    assert [pipeline.submit(job(index)) for index in range(1, 6)] == [True, True, False, False, False]

    assert value(registry, "llm_judge_dropped_total", reason="queue_full") == 3
    assert value(registry, "llm_judge_queue_depth") == 2
    assert pipeline.pending == 3

    judge.release.set()
    assert pipeline.flush(WAIT_S)
    assert judge.calls == 1  # the other two were the same item: cache hits
    assert value(registry, "llm_judge_evaluations_total", judge="blocking", status="success") == 1
    assert value(registry, "llm_judge_evaluations_total", judge="blocking", status="cached") == 2
    assert value(registry, "llm_judge_queue_depth") == 0 and pipeline.pending == 0


@pytest.mark.parametrize(
    ("later", "accepted"),
    [
        pytest.param(1_800.0, False, id="same-hour"),
        pytest.param(3_600.0, False, id="counts-until-its-minute-is-an-hour-old"),
        pytest.param(3_660.0, True, id="an-hour-and-a-minute-later"),
    ],
)
def test_hourly_evaluation_budget(
    make_pipeline: Make, registry: CollectorRegistry, later: float, accepted: bool
) -> None:
    """Jobs beyond the hourly count drop as "budget" until the hour (at one-minute resolution) has passed."""
    clock = FakeClock()
    pipeline = make_pipeline(OfflineJudge(), max_evaluations_per_hour=3, clock=clock)
    assert [pipeline.submit(job(index)) for index in range(5)] == [True, True, True, False, False]
    assert value(registry, "llm_judge_dropped_total", reason="budget") == 2

    clock.now += later
    assert pipeline.submit(job(5)) is accepted
    assert value(registry, "llm_judge_dropped_total", reason="budget") == 2 + (not accepted)
    assert pipeline.flush(WAIT_S)
    assert scored(registry, "offline", "relevance") == 3 + accepted


def test_hourly_dollar_budget_stops_new_jobs(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """Once the judge has spent the hourly dollars, submits drop as "budget"; an hour later they are accepted again."""
    clock = FakeClock()
    judge = CountingJudge(cost=0.4)
    pipeline = make_pipeline(judge, max_cost_per_hour=1.0, clock=clock, cache_size=0)
    results = []
    for index in range(5):
        results.append(pipeline.submit(job(index)))
        assert pipeline.flush(WAIT_S)
    assert results == [True, True, True, False, False]  # 0.4, 0.8, then 1.2 >= 1.0
    assert judge.calls == 3
    assert value(registry, "llm_judge_cost_usd_total", judge="counting") == pytest.approx(1.2)
    assert value(registry, "llm_judge_dropped_total", reason="budget") == 2

    clock.now += 3_660
    assert pipeline.submit(job(9))


def test_queued_jobs_skip_the_judge_once_dollars_run_out(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """Jobs accepted before the budget ran out are dropped by the worker instead of calling the judge."""
    judge = BlockingJudge(cost=1.0)
    pipeline = make_pipeline(judge, max_cost_per_hour=1.0, clock=FakeClock(), cache_size=0)
    assert pipeline.submit(job(0))
    assert judge.entered.wait(WAIT_S)
    assert all(pipeline.submit(job(index)) for index in range(1, 4))
    judge.release.set()
    assert pipeline.flush(WAIT_S)

    assert judge.calls == 1
    assert value(registry, "llm_judge_dropped_total", reason="budget") == 3
    assert value(registry, "llm_judge_evaluations_total", judge="blocking", status="success") == 1


def test_cache_hit_scores_the_new_run_for_free(make_pipeline: Make, registry: CollectorRegistry, store: Store) -> None:
    """The same input again reuses the verdict: counted as cached, no judge usage, scores and a row for the new run."""
    judge = CountingJudge(cost=0.01)
    pipeline = make_pipeline(judge, store=store)
    for index in range(2):
        assert pipeline.submit(job(index, HALLUCINATED))
        assert pipeline.flush(WAIT_S)

    assert judge.calls == 1
    assert value(registry, "llm_judge_evaluations_total", judge="counting", status="success") == 1
    assert value(registry, "llm_judge_evaluations_total", judge="counting", status="cached") == 1
    assert scored(registry, "counting") == 2
    assert value(registry, "llm_judge_tokens_total", judge="counting", type="prompt") == 100
    assert value(registry, "llm_judge_cost_usd_total", judge="counting") == pytest.approx(0.01)
    assert value(registry, "llm_judge_duration_seconds_count", judge="counting") == 1
    first, second = stored(store)
    assert (first.run_id, second.run_id) == (run_id(0), run_id(1))
    assert (second.status, second.faithfulness, second.reason) == ("success", first.faithfulness, first.reason)
    assert (second.judge_prompt_tokens, second.judge_cost_usd) == (0, 0.0)
    assert store.pending_count() == 8  # both runs get their feedback


@pytest.mark.parametrize(
    ("second", "prompt_version", "cache_size", "calls"),
    [
        pytest.param(GROUNDED, "1", 100, 1, id="same-input-hits"),
        pytest.param(EvaluationInput(GROUNDED.question, GROUNDED.context, "Paris."), "1", 100, 2, id="other-answer"),
        pytest.param(EvaluationInput(GROUNDED.question, (), GROUNDED.answer), "1", 100, 2, id="other-context"),
        pytest.param(
            EvaluationInput("What is the capital of France", ("?Paris is the capital of France.",), GROUNDED.answer),
            "1",
            100,
            2,
            id="same-characters-other-split",
        ),
        pytest.param(GROUNDED, "2", 100, 2, id="other-prompt-version"),
        pytest.param(GROUNDED, "1", 0, 2, id="cache-disabled"),
    ],
)
def test_cache_key(
    make_pipeline: Make,
    second: EvaluationInput,
    prompt_version: str,
    cache_size: int,
    calls: int,
) -> None:
    """Only the same judge, prompt version, question, passages and answer reuse a verdict."""
    judge = CountingJudge()
    pipeline = make_pipeline(judge, cache_size=cache_size)
    assert pipeline.submit(job(0, GROUNDED))
    assert pipeline.flush(WAIT_S)
    judge.prompt_version = prompt_version
    assert pipeline.submit(job(1, second))
    assert pipeline.flush(WAIT_S)
    assert judge.calls == calls


def test_cache_forgets_the_least_recently_used(make_pipeline: Make) -> None:
    """A full cache evicts the verdict used longest ago, not the one just used."""
    judge = CountingJudge()
    pipeline = make_pipeline(judge, cache_size=2)
    other = EvaluationInput("q?", ("c",), "other")
    third = EvaluationInput("q?", ("c",), "third")
    for index, item in enumerate((GROUNDED, other, GROUNDED, third, GROUNDED, other)):
        assert pipeline.submit(job(index, item))
        assert pipeline.flush(WAIT_S)
    assert judge.calls == 4  # GROUNDED, other, third, then other again (evicted by third)


def test_flush_waits_for_in_flight_jobs(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """flush reports False while a job is still being judged and True once everything accepted is done."""
    judge = BlockingJudge()
    pipeline = make_pipeline(judge, cache_size=0)
    for index in range(3):
        assert pipeline.submit(job(index))
    assert judge.entered.wait(WAIT_S)
    assert pipeline.flush(timeout=0.05) is False
    assert pipeline.pending == 3

    judge.release.set()
    assert pipeline.flush() is True
    assert pipeline.pending == 0
    assert value(registry, "llm_judge_evaluations_total", judge="blocking", status="success") == 3


def test_close_drains_then_submit_drops_as_shutdown(
    make_pipeline: Make, registry: CollectorRegistry, store: Store
) -> None:
    """close evaluates what was accepted, stops the workers, is idempotent, and later submits drop as shutdown."""
    before = judge_threads()
    pipeline = make_pipeline(OfflineJudge(), store=store, workers=2)
    for index in range(4):
        assert pipeline.submit(job(index))
    threads = judge_threads() - before
    assert pipeline.close() is True
    assert len(stored(store)) == 4
    assert len(threads) == 2 and not any(thread.is_alive() for thread in threads)

    assert pipeline.submit(job(9)) is False
    assert value(registry, "llm_judge_dropped_total", reason="shutdown") == 1
    assert pipeline.close() is True


def test_close_drops_what_it_cannot_drain(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """Queued jobs left at the close deadline are dropped as shutdown and leave the queue-depth gauge at zero."""
    judge = BlockingJudge()
    pipeline = make_pipeline(judge, cache_size=0)
    for index in range(3):
        assert pipeline.submit(job(index))
    assert judge.entered.wait(WAIT_S)
    assert pipeline.close(timeout=0.05) is False
    assert value(registry, "llm_judge_dropped_total", reason="shutdown") == 2
    assert value(registry, "llm_judge_queue_depth") == 0

    judge.release.set()
    assert pipeline.flush(WAIT_S)
    assert judge.calls == 1


def test_concurrent_submits_are_counted_exactly(make_pipeline: Make, registry: CollectorRegistry, store: Store) -> None:
    """Many threads submitting at once: every accepted job is evaluated and stored exactly once."""
    pipeline = make_pipeline(OfflineJudge(), store=store, workers=4, cache_size=0)
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)
    results: list[bool] = []

    def submit_many(offset: int) -> None:
        start.wait()
        outcomes = [pipeline.submit(job(offset * per_thread + index)) for index in range(per_thread)]
        results.extend(outcomes)

    workers = [threading.Thread(target=submit_many, args=(offset,)) for offset in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert pipeline.flush(WAIT_S * 3)

    total = threads * per_thread
    assert results.count(True) == total
    assert value(registry, "llm_judge_evaluations_total", judge="offline", status="success") == total
    for criterion in CRITERIA:
        assert scored(registry, "offline", criterion) == total
    assert value(registry, "llm_judge_queue_depth") == 0
    assert {record.run_id for record in stored(store)} == {run_id(index) for index in range(total)}


def test_concurrent_submits_into_a_full_queue(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """Racing submitters never overfill the queue: exactly queue_size are accepted, the rest counted as queue_full."""
    judge = BlockingJudge()
    pipeline = make_pipeline(judge, queue_size=30, workers=1, cache_size=0)
    assert pipeline.submit(job(0))
    assert judge.entered.wait(WAIT_S)
    threads, per_thread = 10, 20
    start = threading.Barrier(threads)
    results: list[bool] = []

    def submit_many(offset: int) -> None:
        start.wait()
        results.extend(pipeline.submit(job(1 + offset * per_thread + index)) for index in range(per_thread))

    submitters = [threading.Thread(target=submit_many, args=(offset,)) for offset in range(threads)]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join()

    assert results.count(True) == 30
    assert value(registry, "llm_judge_dropped_total", reason="queue_full") == threads * per_thread - 30
    assert value(registry, "llm_judge_queue_depth") == 30
    judge.release.set()
    assert pipeline.flush(WAIT_S)
    assert judge.calls == 31


def test_quality_eval_log_events(make_pipeline: Make, logs: LogRecorder) -> None:
    """One quality_eval event per evaluation, with scores, provenance and judge usage."""
    pipeline = make_pipeline(CountingJudge(cost=0.02), cache_size=0)
    assert pipeline.submit(job(3, sampling="forced", reason="feedback"))
    assert pipeline.flush(WAIT_S)

    [event] = logs.named("quality_eval")
    assert event["log_level"] == "info"
    expected = dict(
        run_id=run_id(3),
        trace_id=run_id(3),
        request_id="req-3",
        judge="counting",
        judge_model="count-1",
        prompt_version="1",
        sampling="forced",
        sample_reason="feedback",
        status="success",
        faithfulness=4,
        relevance=5,
        completeness=3,
        hallucination=False,
        reason="fine",
        judge_prompt_tokens=100,
        judge_completion_tokens=20,
        judge_cost_usd=0.02,
        error_type=None,
    )
    assert {key: event[key] for key in expected} == expected
    assert event["duration_s"] >= 0


@pytest.mark.parametrize(
    "judge",
    [
        pytest.param(EchoJudge(), id="reason-quotes-answer"),
        pytest.param(FailingJudge(JudgeAPIError(f"HTTP 401: invalid key {SECRET}")), id="error-message"),
    ],
)
def test_logs_never_carry_secrets(make_pipeline: Make, logs: LogRecorder, store: Store, judge: Any) -> None:
    """A key quoted by the judge's reason or its error message is redacted in the logs and the stored reason."""
    pipeline = make_pipeline(judge, store=store)
    assert pipeline.submit(job(0, EvaluationInput("which key?", ("c",), f"fail: the key is {SECRET}")))
    assert pipeline.flush(WAIT_S)

    [event] = logs.named("quality_eval")
    assert "[REDACTED]" in (event["reason"] or event["error"])
    assert SECRET not in repr(logs.events)
    [record] = stored(store)
    assert SECRET not in f"{record.reason} {record.answer}"


def test_no_traffic_no_threads(make_pipeline: Make) -> None:
    """A pipeline starts its workers on the first submit, not when it is built."""
    before = judge_threads()
    pipeline = make_pipeline(OfflineJudge(), workers=3)
    assert not judge_threads() - before
    assert pipeline.submit(job(0))
    started = judge_threads() - before
    assert len(started) == 3 and all(thread.daemon for thread in started)


def test_abandoned_pipeline_is_collected_and_its_workers_exit(
    metrics: MonitorMetrics, logs: LogRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers and the exit hook hold no strong reference: a dropped pipeline is collected and its idle workers exit."""
    monkeypatch.setattr(workers, "IDLE_CHECK_SECONDS", 0.01)
    before = judge_threads()
    pipeline = QualityPipeline(OfflineJudge(), metrics=metrics, logger=logs.logger, config=JudgeConfig(workers=2))
    assert pipeline.submit(job(0))
    assert pipeline.flush(WAIT_S)
    threads = judge_threads() - before
    reference = weakref.ref(pipeline)

    del pipeline
    gc.collect()
    assert reference() is None
    for thread in threads:
        thread.join(WAIT_S)
    assert threads and not any(thread.is_alive() for thread in threads)


def test_interpreter_exit_drains_the_queue(tmp_path: Path) -> None:
    """A script that never calls close still gets every accepted evaluation stored before the process ends."""
    database = tmp_path / "exit.db"
    script = textwrap.dedent(
        f"""
        from prometheus_client import CollectorRegistry
        from langchain_llmmonitor.config import JudgeConfig
        from langchain_llmmonitor.telemetry.metrics import metrics_for
        from langchain_llmmonitor.quality.judges.offline import OfflineJudge
        from langchain_llmmonitor.quality.pipeline import QualityPipeline
        from langchain_llmmonitor.storage.store import Store
        from tests.test_quality_pipeline import job

        pipeline = QualityPipeline(
            OfflineJudge(),
            metrics=metrics_for(CollectorRegistry()),
            store=Store({str(database)!r}),
            config=JudgeConfig(cache_size=0),
        )
        assert all(pipeline.submit(job(index)) for index in range(40))
        """
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", script], cwd=root, check=True, timeout=120)

    reopened = Store(database)
    try:
        assert len(list(reopened.evaluations(*EVER))) == 40
    finally:
        reopened.close()


def test_submit_never_raises(make_pipeline: Make, registry: CollectorRegistry) -> None:
    """A clock that raises inside submit is counted as a handler error and the job dropped, not raised to the chain."""

    def broken_clock() -> float:
        raise OSError("clock gone")

    pipeline = make_pipeline(OfflineJudge(), clock=broken_clock)
    assert pipeline.submit(job(0)) is False
    assert value(registry, "llm_monitor_handler_errors_total", event="quality_submit") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(dict(queue_size=0), id="queue_size"),
        pytest.param(dict(workers=0), id="workers"),
        pytest.param(dict(cache_size=-1), id="cache_size"),
        pytest.param(dict(max_evaluations_per_hour=-1), id="max_evaluations_per_hour"),
        pytest.param(dict(max_cost_per_hour=-0.5), id="max_cost_per_hour"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any]) -> None:
    """Settings that would silently disable the pipeline are refused, naming the setting and what is allowed."""
    with pytest.raises(ValueError, match=rf"invalid JudgeConfig: {next(iter(kwargs))} must be"):
        JudgeConfig(**kwargs)
