"""The off-request-path half of the quality layer: sampled traces are judged by background workers.

Without a store, the handler calls `QualityPipeline.submit`, which appends to a bounded queue (or drops and counts)
and returns. With one, jobs are durable: the handler's writer stores them beside their invocations and the workers
claim them from the store under a lease (`jobs=`), so a job outlives a crash or a deploy and any process on the store
(or `llmmonitor worker`) judges it, once. Workers run the judge and turn each verdict into metrics, a `quality_eval`
log event and a store row; the store queues the LangSmith feedback in its outbox. A failed evaluation is recorded as
missing, never as a score.

Cost control happens here too: an hourly budget (evaluations and judge dollars) and a cache of verdicts keyed by the
judge, its prompt version and the hash of what was judged, so a repeated (question, context, answer) costs nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..config import JudgeConfig
from ..core.judging import EvaluationInput, Judge, JudgeError, JudgeUsage, Verdict, scrubbed
from ..core.records import EvaluationJob, EvaluationRecord, utcnow
from ..core.text import clip, describe_error
from ..core.vocabulary import CACHED, CRITERIA, ERROR, SUCCESS
from ..telemetry.logs import default_logger
from ..telemetry.metrics import MonitorMetrics
from ..workers import Worker
from .budget import Budget
from .cache import VerdictCache

BUDGET = "budget"
ERROR_KINDS = frozenset({"timeout", "parse", "refusal", "rate_limit", "api", "other"})
"""`llm_judge_errors_total{error_type}` values; a judge error of any other kind is counted as "other"."""

WORKER_EVENT = "quality_worker"

_MAX_STORED_TEXT = 4_000
_FIRST_RETRY_S, _MAX_RETRY_S = 0.2, 2.0
_EXPIRY_EVERY_S = 60.0
_FLUSH_POLL_S = 0.02
_MAX_STORED_REASON = 2_000
_MAX_LOGGED_REASON = 500


class EvaluationSink(Protocol):
    """Where evaluations are kept (the store): idempotent by the record's id, so a retried write never doubles it."""

    def add_evaluation(self, record: EvaluationRecord) -> None: ...


class JobSource(EvaluationSink, Protocol):
    """The store's durable job queue (`storage.Store`): claimed under a lease, closed by the evaluation's write."""

    def claim_jobs(self, limit: int, *, lease_seconds: float) -> list[EvaluationJob]: ...

    def close_jobs(self, ids: list[str], outcome: str) -> None: ...

    def expire_jobs(self, requested_before: datetime) -> dict[str, int]: ...

    def pending_jobs(self, created_before: datetime | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One evaluation's result, as the metrics, the store row and the log event all need it."""

    status: str  # SUCCESS, ERROR or CACHED
    verdict: Verdict | None
    usage: JudgeUsage
    error_type: str | None = None
    error: str | None = None
    duration: float = 0.0


class QualityPipeline(Worker[EvaluationJob]):
    """Runs a judge over sampled traces in background worker threads, off the request path."""

    def __init__(
        self,
        judge: Judge,
        *,
        metrics: MonitorMetrics,
        config: JudgeConfig | None = None,
        logger: Any = None,
        store: EvaluationSink | None = None,
        jobs: JobSource | None = None,
        clock: Callable[[], float] = time.monotonic,
        exit_timeout: float = 5.0,
    ) -> None:
        """
        Args:
            judge: scores one trace; called from the worker threads only.
            metrics: the monitor's metric families; the `judge` label is `judge.name`.
            config: workers, queue size, hourly budget and cache size (`JudgeConfig`).
            logger: a structlog logger; by default the library's.
            store: when given, every evaluation (failed ones too) is written to it, with its LangSmith feedback.
            jobs: the store's job queue: workers claim jobs there (start them with `start()`), nothing is submitted.
            clock: monotonic seconds, for durations and the hourly budget.
            exit_timeout: at interpreter exit, how long to wait for queued evaluations.
        """
        config = config if config is not None else JudgeConfig()
        super().__init__(
            name="llmmonitor-judge",
            threads=config.workers,
            capacity=config.queue_size,
            idle_wait=config.poll_interval_seconds if jobs is not None else None,
            exit_timeout=exit_timeout,
        )
        self.config = config
        self._judge = judge
        self._judge_name = str(judge.name)
        self._metrics = metrics
        self._log = logger if logger is not None else default_logger()
        self._store = store if store is not None else jobs
        self._jobs = jobs
        self._expiry_due = 0.0
        self._clock = clock
        self._budget = Budget(max_evaluations=config.max_evaluations_per_hour, max_cost=config.max_cost_per_hour)
        self._cache = VerdictCache(config.cache_size)
        self._queue_depth = metrics.judge_queue_depth

    @property
    def judge(self) -> Judge:
        return self._judge

    # The request path: Worker.submit with a budget -----------------------------------------------------------------

    def submit(self, job: EvaluationJob) -> bool:
        """Queue a job for the judge; False (and counted in `llm_judge_dropped_total`) when it was dropped.

        Called from LangChain callbacks: O(1), no I/O, never waits for the workers and never raises.
        """
        try:
            return super().submit(job)
        except Exception:  # noqa: BLE001 - the user's chain must never see a monitoring failure
            self._metrics.handler_errors("quality_submit").inc()
            return False

    def _admit_locked(self, item: EvaluationJob) -> str | None:
        return BUDGET if self._budget.exhausted(self._clock()) else None

    def _accepted_locked(self, item: EvaluationJob) -> None:
        self._budget.accept(self._clock())
        self._queue_depth.inc()

    def _dropped(self, count: int, reason: str) -> None:
        self._metrics.judge_dropped(reason).inc(count)

    def _discarded(self, items: list[EvaluationJob]) -> None:
        self._queue_depth.dec(len(items))
        super()._discarded(items)

    def _work_failed(self, error: Exception) -> None:
        self._metrics.handler_errors(WORKER_EVENT).inc()

    def _reset_after_fork(self) -> None:
        self._cache.after_fork_in_child()

    # With a durable queue, "done" means the store has no job left, not that this process's queue is empty --------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted evaluation is recorded; with a job store, until every job stored before the
        flush began is judged (by any process)."""
        if self._jobs is None:
            return super().flush(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        began = utcnow()
        while True:
            self.wake()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not super().flush(left):
                return False
            if self._no_jobs_before(began) and super().flush(0):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(_FLUSH_POLL_S)

    def _no_jobs_before(self, moment: datetime) -> bool:
        try:
            return self._jobs is not None and self._jobs.pending_jobs(created_before=moment) == 0
        except Exception:  # noqa: BLE001 - the store is away: not drained, keep trying until the deadline
            return False

    def _drain(self, timeout: float) -> bool:
        """At close: finish the evaluations in progress; jobs not yet claimed stay in the store for the next process."""
        finished = super().flush(timeout)
        if self._jobs is not None:
            try:
                left: int | None = self._jobs.pending_jobs()
            except Exception:  # noqa: BLE001 - the store is away; the jobs are safe there all the same
                left = None
            self._log.info("judge_jobs_left", pending=left, in_progress_finished=finished)
        return finished

    # The workers ------------------------------------------------------------------------------------------------

    def _work(self, batch: list[EvaluationJob]) -> float | None:
        for job in batch:  # submitted in memory: scrubbed here (a stored job was scrubbed by the store writer)
            self._queue_depth.dec()
            self._evaluate(replace(job, item=scrubbed(job.item)))
        if self._jobs is None or self._board.closed:
            return None
        return 0.0 if self._judge_claimed(self._jobs) else None  # claimed one: look for the next at once

    def _judge_claimed(self, jobs: JobSource) -> bool:
        """Claim one job from the store and judge it; False when none was due."""
        now = self._clock()
        try:
            if now >= self._expiry_due:
                self._expiry_due = now + _EXPIRY_EVERY_S
                self._expire(jobs)
            claimed = jobs.claim_jobs(1, lease_seconds=self.config.lease_seconds)
        except Exception:  # noqa: BLE001 - the store is away: the jobs wait there, look again at the next poll
            return False
        for job in claimed:
            with self._board.lock:
                refused = self._admit_locked(job)
                if refused is None:
                    self._budget.accept(now)
            if refused is None:
                self._evaluate(job)
            else:
                self._skip(job, refused)
        return bool(claimed)

    def _expire(self, jobs: JobSource) -> None:
        closed = jobs.expire_jobs(utcnow() - timedelta(seconds=self.config.request_ttl_seconds))
        for outcome, count in closed.items():
            if count:
                self._dropped(count, outcome)
                self._log.warning("judge_jobs_closed", outcome=outcome, count=count)

    def wake(self) -> None:
        """Jobs were just stored: one idle worker looks for them now rather than at its next poll."""
        with self._board.lock:
            self._board.wake.notify()

    def _skip(self, job: EvaluationJob, reason: str) -> None:
        """Not judged (the budget is spent): counted, and a stored job is closed so that nobody judges it later."""
        self._dropped(1, reason)
        if self._jobs is not None:
            with contextlib.suppress(Exception):  # the store is away: the job comes back after its lease, skipped then
                self._jobs.close_jobs([job.id], reason)

    def _evaluate(self, job: EvaluationJob) -> None:
        """Judge one job and record the outcome; nothing here may escape and kill the worker."""
        started = self._clock()
        key = self._cache.key(self._judge, self._judge_name, job.item)
        cached = self._cache.get(key)
        if cached is not None:
            outcome = _Outcome(CACHED, cached, JudgeUsage(cost_usd=0.0))
        else:
            with self._board.lock:
                spent = self._budget.spent(started)
            if spent:  # spent while this job waited: calling the judge would overshoot the budget further
                self._skip(job, BUDGET)
                return
            outcome = self._judged(job.item)
            if outcome.verdict is not None:
                self._cache.put(key, outcome.verdict)
        outcome = replace(outcome, duration=self._clock() - started)
        self._guarded(self._record_metrics, job, outcome)
        stored = self._write(job, outcome)
        self._guarded(self._log_evaluation, job, outcome, stored)

    def _judged(self, item: EvaluationInput) -> _Outcome:
        """Call the judge: a verdict, or the error (and what the failed call still cost)."""
        try:
            verdict = self._judge.evaluate(item)
            if not isinstance(verdict, Verdict):
                raise JudgeError(f"judge returned {type(verdict).__name__}, not a Verdict")
        except Exception as exc:  # noqa: BLE001 - any judge failure is an error of some kind, never a score
            kind = getattr(exc, "kind", "other") if isinstance(exc, JudgeError) else "other"
            spent = exc.usage if isinstance(exc, JudgeError) else None
            usage = spent if isinstance(spent, JudgeUsage) else JudgeUsage()
            error_type = kind if kind in ERROR_KINDS else "other"
            return _Outcome(ERROR, None, usage, error_type, describe_error(exc))  # text: no frame cycle keeps self
        return _Outcome(SUCCESS, verdict, verdict.usage)

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except Exception:  # noqa: BLE001 - a broken metric or logger must not stop the judging
            self._metrics.handler_errors(WORKER_EVENT).inc()

    def _record_metrics(self, job: EvaluationJob, outcome: _Outcome) -> None:
        metrics, name = self._metrics, self._judge_name
        metrics.judge_evaluations(name, outcome.status).inc()
        if outcome.status != CACHED:  # a cache hit says nothing about the judge's latency
            metrics.judge_duration(name).observe(outcome.duration)
        if outcome.verdict is None:
            metrics.judge_errors(name, outcome.error_type or "other").inc()
        else:
            scores = outcome.verdict.scores
            extra = metrics.segment_labels.values(job.segments)  # () unless segment labels were opted in
            for criterion in CRITERIA:
                metrics.quality_score(criterion, name, job.sampling, *extra).observe(getattr(scores, criterion))
            verdict = "yes" if scores.hallucination else "no"
            metrics.hallucination_verdicts(name, job.sampling, verdict, *extra).inc()
        usage = outcome.usage
        if usage.prompt_tokens:  # a failed call that got a reply was paid for too
            metrics.judge_tokens(name, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            metrics.judge_tokens(name, "completion").inc(usage.completion_tokens)
        if outcome.status != CACHED and usage.cost_usd is not None:
            metrics.judge_cost(name).inc(usage.cost_usd)
            now = self._clock()
            with self._board.lock:
                self._budget.charge(now, usage.cost_usd)

    def _identity(self, verdict: Verdict | None) -> tuple[str, str]:
        """Judge model and prompt version: the verdict's own when there is one, so a score names what produced it."""
        if verdict is not None:
            return verdict.model, verdict.prompt_version
        return str(getattr(self._judge, "model", "unknown")), str(getattr(self._judge, "prompt_version", "unknown"))

    def _fields(self, job: EvaluationJob, outcome: _Outcome, reason_chars: int) -> dict[str, Any]:
        """What the store row and the log event both say about one evaluation."""
        model, prompt_version = self._identity(outcome.verdict)
        scores = outcome.verdict.scores if outcome.verdict is not None else None
        return dict(
            run_id=job.run_id,
            trace_id=job.trace_id,
            request_id=job.request_id,
            project=job.project,
            judge=self._judge_name,
            judge_model=model,
            prompt_version=prompt_version,
            sampling=job.sampling,
            sample_reason=job.sample_reason,
            error_type=outcome.error_type,
            faithfulness=None if scores is None else scores.faithfulness,
            relevance=None if scores is None else scores.relevance,
            completeness=None if scores is None else scores.completeness,
            hallucination=None if scores is None else scores.hallucination,
            reason=None if scores is None else clip(scores.reason, reason_chars),
            judge_prompt_tokens=outcome.usage.prompt_tokens,
            judge_completion_tokens=outcome.usage.completion_tokens,
            judge_cost_usd=outcome.usage.cost_usd,
        )

    def _write(self, job: EvaluationJob, outcome: _Outcome) -> bool | None:
        """Store the evaluation (a failed one as missing scores); None without a store, False when the write failed."""
        if self._store is None:
            return None
        record = EvaluationRecord(
            **self._fields(job, outcome, _MAX_STORED_REASON),
            id=job.id,
            status=ERROR if outcome.verdict is None else SUCCESS,  # a cache hit is a real score for this run
            question=clip(job.item.question, _MAX_STORED_TEXT),
            answer=clip(job.item.answer, _MAX_STORED_TEXT),
            segments=job.segments,
        )
        delay = _FIRST_RETRY_S
        while True:  # the write is idempotent (the record's id), so a retry never doubles it
            try:
                self._store.add_evaluation(record)
                return True
            except Exception as exc:  # noqa: BLE001 - a store outage must not kill the worker
                failure = exc
            if not self._may_succeed_later(failure) or self._wait_unless_stopping(delay):
                break
            delay = min(2 * delay, _MAX_RETRY_S)
        durable = self._jobs is not None  # the job is still open in the store: the next claim judges it again
        if not durable:
            self._metrics.dropped("evaluation", "store_error").inc()
        self._log.warning(
            "quality_store_error",
            run_id=job.run_id,
            trace_id=job.trace_id,
            judge=self._judge_name,
            lost=0 if durable else 1,
            error=describe_error(failure),
        )
        return False

    def _may_succeed_later(self, error: Exception) -> bool:
        """An outage may end; a row the database refused is refused again (a store tells them apart)."""
        is_outage = getattr(self._store, "is_outage", None)
        return bool(is_outage(error)) if callable(is_outage) else True

    def _log_evaluation(self, job: EvaluationJob, outcome: _Outcome, stored: bool | None) -> None:
        fields = self._fields(job, outcome, _MAX_LOGGED_REASON)
        fields.update(status=outcome.status, duration_s=round(outcome.duration, 4))
        if stored is not None:
            fields["stored"] = stored
        if outcome.error is None:
            self._log.info("quality_eval", **fields)
        else:
            self._log.warning("quality_eval", error=outcome.error, **fields)
