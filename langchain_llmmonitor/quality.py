"""The off-request-path half of the quality layer: sampled traces are judged by background workers.

The Monitor only calls `QualityPipeline.submit`, which appends to a bounded queue (or drops and counts) and returns.
Workers run the judge and turn each verdict into metrics, a `quality_eval` log event and a store row; the store
queues the LangSmith feedback in its outbox. A failed evaluation is recorded as missing, never as a score.

Cost control happens here too: an hourly budget (evaluations and judge dollars) and a cache of verdicts keyed by the
judge, its prompt version and the hash of what was judged, so a repeated (question, context, answer) costs nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._logs import default_logger, describe_error, scrub
from ._metrics import MonitorMetrics
from .judges._base import CRITERIA, EvaluationInput, Judge, JudgeError, JudgeUsage, Verdict

if TYPE_CHECKING:
    from .store import Store

SUCCESS, ERROR, CACHED = "success", "error", "cached"
QUEUE_FULL, BUDGET, SHUTDOWN = "queue_full", "budget", "shutdown"
ERROR_KINDS = frozenset({"timeout", "parse", "refusal", "rate_limit", "api", "other"})
"""`llm_judge_errors_total{error_type}` values; a judge error of any other kind is counted as "other"."""

STORE_EVENT = "store"
"""`llm_monitor_handler_errors_total{event}` when an evaluation could not be written to the store."""
WORKER_EVENT = "quality_worker"
SUBMIT_EVENT = "quality_submit"

_MAX_STORED_TEXT = 4_000
_STORE_RETRY_DELAYS = (0.2, 1.0, None)  # three attempts over about a second, then the row is counted as lost
_MAX_STORED_REASON = 2_000
_MAX_LOGGED_REASON = 500
_WINDOW_S = 3_600.0
_BUCKET_S = 60.0
IDLE_CHECK_S = 30.0
"""How often an idle worker checks whether its pipeline still exists (a collected pipeline's workers then exit)."""


@dataclass(frozen=True, slots=True)
class EvaluationJob:
    """One sampled trace to judge, with what the scores attach to and why it was sampled."""

    run_id: str  # root run id (the LangSmith run the scores attach to)
    trace_id: str
    item: EvaluationInput  # already redacted and capped by the Monitor
    sampling: str  # "random" (rate-based; what trends use) or "forced" (always-evaluate rules)
    sample_reason: str  # "rate", "metadata", "error", "tag", "feedback"
    request_id: str | None = None
    project: str | None = None


class _HourlyTotal:
    """A sum over a sliding hour at one-minute resolution: at most 61 buckets, however busy the hour.

    An amount counts until the whole minute it fell in is an hour old, so any 60-minute span sees all of it: a budget
    is never exceeded, at the price of holding an amount up to one minute longer than an hour.
    """

    __slots__ = ("_buckets", "_total")

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [minute, amount]
        self._total = 0.0

    def total(self, now: float) -> float:
        last_expired = (now - _WINDOW_S) // _BUCKET_S - 1  # the latest minute that ended an hour ago or more
        buckets = self._buckets
        while buckets and buckets[0][0] <= last_expired:
            self._total -= buckets.popleft()[1]
        if not buckets:
            self._total = 0.0  # no float drift survives an idle hour
        return self._total

    def add(self, now: float, amount: float) -> None:
        self.total(now)
        minute = now // _BUCKET_S
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += amount
        else:
            self._buckets.append([minute, amount])
        self._total += amount


class _WorkQueue:
    """The bounded queue and the in-flight count, shared with the worker threads.

    Workers hold this object, not the pipeline, while they wait: an abandoned pipeline can be garbage collected, and its
    idle workers notice and exit. (No finalizer stops them: one could run inside a worker's own critical section.)
    """

    def __init__(self, maxsize: int, metrics: MonitorMetrics) -> None:
        self.maxsize = maxsize
        self.metrics = metrics
        self.jobs: deque[EvaluationJob] = deque()
        self._reset_sync()

    def _reset_sync(self) -> None:
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)  # a job arrived, or stop
        self.idle = threading.Condition(self.lock)  # nothing queued and nothing in flight
        self.in_flight = 0
        self.closed = False  # no new jobs
        self.stopping = False  # workers exit once the queue is empty

    def after_fork_in_child(self) -> None:
        """The parent's workers do not exist here, its locks may be held forever and its jobs are the parent's to
        judge: start empty, closed if the parent's pipeline was."""
        closed, stopping = self.closed, self.stopping
        self.jobs.clear()
        self._reset_sync()
        self.closed, self.stopping = closed, stopping

    def put_locked(self, job: EvaluationJob) -> None:
        self.jobs.append(job)
        self.metrics.judge_queue_depth.inc()
        self.ready.notify()

    def take(self, alive: Callable[[], bool]) -> EvaluationJob | None:
        """The next job (now in flight), waiting for one; None when the worker should exit: stopped, or, while idle,
        its pipeline is gone."""
        with self.lock:
            while not self.jobs:
                if self.stopping:
                    return None
                if not self.ready.wait(IDLE_CHECK_S) and not alive():
                    return None
            job = self.jobs.popleft()
            self.in_flight += 1
            self.metrics.judge_queue_depth.dec()
            return job

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1
            self._notify_if_idle_locked()

    def wait_idle(self, timeout: float | None) -> bool:
        with self.lock:
            return self.idle.wait_for(lambda: not self.jobs and not self.in_flight, timeout)

    def stop(self) -> None:
        """Close, discard what is still queued (counted as dropped at shutdown) and let the workers exit."""
        with self.lock:
            self.closed = self.stopping = True
            discarded = len(self.jobs)
            self.jobs.clear()
            if discarded:
                self.metrics.judge_queue_depth.dec(discarded)
                self.metrics.judge_dropped(SHUTDOWN).inc(discarded)
            self.ready.notify_all()
            self._notify_if_idle_locked()

    def _notify_if_idle_locked(self) -> None:
        if not self.jobs and not self.in_flight:
            self.idle.notify_all()


def _work(queue: _WorkQueue, pipeline_ref: weakref.ref[QualityPipeline], exit_hook: Callable[[], None]) -> None:
    """A worker thread: holds the pipeline only while it evaluates a job."""

    def alive() -> bool:
        return pipeline_ref() is not None

    while (job := queue.take(alive)) is not None:
        try:
            pipeline = pipeline_ref()
            if pipeline is None:
                queue.metrics.judge_dropped(SHUTDOWN).inc()
            else:
                pipeline._evaluate(job)
        except Exception:  # noqa: BLE001 - _evaluate guards itself; this keeps the worker alive whatever happens
            queue.metrics.handler_errors(WORKER_EVENT).inc()
        finally:
            pipeline = None
            queue.done()
    if not alive():
        atexit.unregister(exit_hook)


def _drain_at_exit(pipeline_ref: weakref.ref[QualityPipeline], timeout: float) -> None:
    pipeline = pipeline_ref()
    if pipeline is not None:
        pipeline.close(timeout)


def _after_fork(pipeline_ref: weakref.ref[QualityPipeline]) -> None:
    pipeline = pipeline_ref()
    if pipeline is not None:
        pipeline._after_fork_in_child()


def _fingerprint(item: EvaluationInput) -> str:
    """sha256 of question, passages and answer, each length-prefixed: no two different inputs share a preimage."""
    digest = hashlib.sha256()
    for text in (item.question, *item.context, item.answer):
        data = str(text).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _clip(text: str | None, limit: int) -> str | None:
    return None if text is None else scrub(text)[:limit]


class QualityPipeline:
    """Runs a judge over sampled traces in background worker threads, off the request path."""

    def __init__(
        self,
        judge: Judge,
        *,
        metrics: MonitorMetrics,
        logger: Any = None,
        store: Store | None = None,
        queue_size: int = 1000,
        workers: int = 1,
        max_evaluations_per_hour: int | None = None,
        max_judge_cost_per_hour: float | None = None,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        exit_timeout: float = 5.0,
    ) -> None:
        """
        Args:
            judge: scores one trace; called from the worker threads only.
            metrics: the monitor's metric families; the `judge` label is `judge.name`.
            logger: a structlog logger; by default the library's (`_logs.default_logger()`).
            store: when given, every evaluation (failed ones too) is written to it, with its LangSmith feedback.
            queue_size: jobs waiting for a worker; beyond it `submit` drops (`reason="queue_full"`).
            workers: judge threads, started on the first `submit`.
            max_evaluations_per_hour: jobs accepted per sliding hour; beyond it `submit` drops (`reason="budget"`).
            max_judge_cost_per_hour: judge dollars per sliding hour; once spent, new and queued jobs that would call
                the judge are dropped (`reason="budget"`). Only judges that report a cost count against it.
            cache_size: verdicts remembered (LRU) for identical inputs to the same judge and prompt version; 0 disables.
            clock: monotonic seconds, for durations and the hourly budget.
            exit_timeout: at interpreter exit, how long to wait for queued evaluations.
        """
        minimums = (("queue_size", queue_size, 1), ("workers", workers, 1), ("cache_size", cache_size, 0))
        for name, number, minimum in minimums:
            if number < minimum:
                raise ValueError(f"{name} must be at least {minimum}, got {number}")
        for name, limit in (
            ("max_evaluations_per_hour", max_evaluations_per_hour),
            ("max_judge_cost_per_hour", max_judge_cost_per_hour),
        ):
            if limit is not None and limit < 0:
                raise ValueError(f"{name} must not be negative, got {limit}")
        self._judge = judge
        self._judge_name = str(judge.name)
        self._metrics = metrics
        self._log = logger if logger is not None else default_logger()
        self._store = store
        self._workers = workers
        self._clock = clock
        self._max_evaluations = max_evaluations_per_hour
        self._max_cost = max_judge_cost_per_hour
        self._accepted = _HourlyTotal()  # guarded by the queue lock, like everything budget-related
        self._spent = _HourlyTotal()
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str, str, str], Verdict] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._queue = _WorkQueue(queue_size, metrics)
        self._threads: list[threading.Thread] = []
        self._hooks_registered = False
        self._exit_hook = functools.partial(_drain_at_exit, weakref.ref(self), exit_timeout)

    # The request path -------------------------------------------------------------------------------------------

    def submit(self, job: EvaluationJob) -> bool:
        """Queue a job for the judge; False (and counted in `llm_judge_dropped_total`) when it was dropped.

        Called from LangChain callbacks: O(1), no I/O, never waits for the workers and never raises.
        """
        try:
            now = self._clock()
            queue = self._queue
            start: list[threading.Thread] = []
            with queue.lock:
                if queue.closed:
                    reason = SHUTDOWN
                elif self._over_budget_locked(now):
                    reason = BUDGET
                elif len(queue.jobs) >= queue.maxsize:
                    reason = QUEUE_FULL
                else:
                    queue.put_locked(job)
                    if self._max_evaluations is not None:
                        self._accepted.add(now, 1)
                    if len(self._threads) < self._workers:
                        start = self._new_threads_locked()
                    reason = ""
            if start:
                self._start(start)
            if reason:
                self._metrics.judge_dropped(reason).inc()
            return not reason
        except Exception:  # noqa: BLE001 - the user's chain must never see a monitoring failure
            with contextlib.suppress(Exception):
                self._metrics.handler_errors(SUBMIT_EVENT).inc()
            return False

    def _over_budget_locked(self, now: float) -> bool:
        if self._max_evaluations is not None and self._accepted.total(now) >= self._max_evaluations:
            return True
        return self._over_cost_locked(now)

    def _over_cost_locked(self, now: float) -> bool:
        return self._max_cost is not None and self._spent.total(now) >= self._max_cost

    def _new_threads_locked(self) -> list[threading.Thread]:
        ref = weakref.ref(self)
        args = (self._queue, ref, self._exit_hook)
        new = [
            threading.Thread(target=_work, args=args, name=f"llmmonitor-judge-{i}", daemon=True)
            for i in range(len(self._threads), self._workers)
        ]
        self._threads.extend(new)
        if not self._hooks_registered:  # only a pipeline that had work needs draining at exit or resetting after fork
            self._hooks_registered = True
            atexit.register(self._exit_hook)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=functools.partial(_after_fork, ref))
        return new

    def _start(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            try:
                thread.start()
            except RuntimeError:  # no threads at interpreter shutdown, or the OS refused: retry on the next submit
                with self._queue.lock:
                    self._threads.remove(thread)
                self._metrics.handler_errors(WORKER_EVENT).inc()

    def _after_fork_in_child(self) -> None:
        self._queue.after_fork_in_child()
        self._cache_lock = threading.Lock()
        self._threads = []

    # Lifecycle --------------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Jobs queued or being judged."""
        queue = self._queue
        with queue.lock:
            return len(queue.jobs) + queue.in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted job has been evaluated; True if the queue drained within `timeout`."""
        return self._queue.wait_idle(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop accepting jobs, wait up to `timeout` for the queued ones, then stop the workers. Idempotent.

        Returns True when everything accepted was evaluated; jobs still queued at the deadline are dropped and counted
        (`reason="shutdown"`).
        """
        deadline = time.monotonic() + timeout
        queue = self._queue
        with queue.lock:
            queue.closed = True
            threads = list(self._threads)
        drained = self.flush(timeout)
        queue.stop()
        for thread in threads:
            with contextlib.suppress(RuntimeError):  # started by a concurrent submit a moment ago, not yet running
                thread.join(max(0.0, deadline - time.monotonic()))
        atexit.unregister(self._exit_hook)
        return drained

    # The workers ------------------------------------------------------------------------------------------------

    def _evaluate(self, job: EvaluationJob) -> None:
        """Judge one job and record the outcome; nothing here may escape and kill the worker."""
        judge = self._judge
        started = self._clock()
        key = self._cache_key(job.item)
        verdict = self._cached(key)
        error: str | None = None
        error_type: str | None = None
        if verdict is not None:
            status, usage = CACHED, JudgeUsage(cost_usd=0.0)
        else:
            with self._queue.lock:
                over_cost = self._over_cost_locked(started)
            if over_cost:  # spent while this job waited: calling the judge would overshoot the budget further
                self._metrics.judge_dropped(BUDGET).inc()
                return
            try:
                verdict = judge.evaluate(job.item)
                if not isinstance(verdict, Verdict):
                    raise JudgeError(f"judge returned {type(verdict).__name__}, not a Verdict")
            except Exception as exc:  # noqa: BLE001 - any judge failure is an error of some kind, never a score
                verdict, error = None, describe_error(exc)  # text, not the exception: no frame cycle keeps self
                kind = getattr(exc, "kind", "other") if isinstance(exc, JudgeError) else "other"
                error_type = kind if kind in ERROR_KINDS else "other"
                spent = exc.usage if isinstance(exc, JudgeError) else None
                status, usage = ERROR, spent if isinstance(spent, JudgeUsage) else JudgeUsage()
            else:
                status, usage = SUCCESS, verdict.usage
                self._remember(key, verdict)
        duration = self._clock() - started
        try:
            self._record_metrics(job, status, verdict, usage, error_type, duration)
        except Exception:  # noqa: BLE001
            self._metrics.handler_errors(WORKER_EVENT).inc()
        stored = self._write(job, verdict, usage, error_type)
        try:
            self._log_evaluation(job, status, verdict, usage, error_type, error, duration, stored)
        except Exception:  # noqa: BLE001 - a broken logger must not stop the judging
            self._metrics.handler_errors(WORKER_EVENT).inc()

    def _cache_key(self, item: EvaluationInput) -> tuple[str, str, str, str] | None:
        if not self._cache_size:
            return None
        judge = self._judge
        model, prompt_version = str(getattr(judge, "model", "")), str(getattr(judge, "prompt_version", ""))
        return (self._judge_name, model, prompt_version, _fingerprint(item))

    def _cached(self, key: tuple[str, str, str, str] | None) -> Verdict | None:
        if key is None:
            return None
        with self._cache_lock:
            verdict = self._cache.get(key)
            if verdict is not None:
                self._cache.move_to_end(key)
            return verdict

    def _remember(self, key: tuple[str, str, str, str] | None, verdict: Verdict) -> None:
        if key is None:
            return
        with self._cache_lock:
            self._cache[key] = verdict
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _record_metrics(
        self,
        job: EvaluationJob,
        status: str,
        verdict: Verdict | None,
        usage: JudgeUsage,
        error_type: str | None,
        duration: float,
    ) -> None:
        metrics, name = self._metrics, self._judge_name
        metrics.judge_evaluations(name, status).inc()
        if status != CACHED:  # a cache hit says nothing about the judge's latency
            metrics.judge_duration(name).observe(duration)
        if verdict is None:
            metrics.judge_errors(name, error_type or "other").inc()
        else:
            scores = verdict.scores
            for criterion in CRITERIA:
                metrics.quality_score(criterion, name, job.sampling).observe(getattr(scores, criterion))
            metrics.hallucination_verdicts(name, job.sampling, "yes" if scores.hallucination else "no").inc()
        if usage.prompt_tokens:  # a failed call that got a reply was paid for too
            metrics.judge_tokens(name, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            metrics.judge_tokens(name, "completion").inc(usage.completion_tokens)
        if status != CACHED and usage.cost_usd is not None:
            metrics.judge_cost(name).inc(usage.cost_usd)
            if self._max_cost is not None:
                now = self._clock()
                with self._queue.lock:
                    self._spent.add(now, usage.cost_usd)

    def _identity(self, verdict: Verdict | None) -> tuple[str, str]:
        """Judge model and prompt version: the verdict's own when there is one, so a score names what produced it."""
        if verdict is not None:
            return verdict.model, verdict.prompt_version
        return str(getattr(self._judge, "model", "unknown")), str(getattr(self._judge, "prompt_version", "unknown"))

    def _outcome(
        self, job: EvaluationJob, verdict: Verdict | None, usage: JudgeUsage, error_type: str | None, reason_chars: int
    ) -> dict[str, Any]:
        """What the store row and the log event both say about one evaluation."""
        model, prompt_version = self._identity(verdict)
        scores = verdict.scores if verdict is not None else None
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
            error_type=error_type,
            faithfulness=None if scores is None else scores.faithfulness,
            relevance=None if scores is None else scores.relevance,
            completeness=None if scores is None else scores.completeness,
            hallucination=None if scores is None else scores.hallucination,
            reason=None if scores is None else _clip(scores.reason, reason_chars),
            judge_prompt_tokens=usage.prompt_tokens,
            judge_completion_tokens=usage.completion_tokens,
            judge_cost_usd=usage.cost_usd,
        )

    def _write(
        self, job: EvaluationJob, verdict: Verdict | None, usage: JudgeUsage, error_type: str | None
    ) -> bool | None:
        """Store the evaluation (a failed one as missing scores); None without a store, False when the write failed."""
        if self._store is None:
            return None
        from .store import EvaluationRecord  # the store (and SQLAlchemy) is optional

        record = EvaluationRecord(
            **self._outcome(job, verdict, usage, error_type, _MAX_STORED_REASON),
            status=ERROR if verdict is None else SUCCESS,  # a cache hit is a real score for this run
            question=_clip(job.item.question, _MAX_STORED_TEXT),
            answer=_clip(job.item.answer, _MAX_STORED_TEXT),
        )
        failure: Exception | None = None
        for delay in _STORE_RETRY_DELAYS:  # the write is idempotent (the record's id), so a retry never doubles it
            try:
                self._store.add_evaluation(record)
                return True
            except Exception as exc:  # noqa: BLE001 - a store outage must not kill the worker
                failure = exc
                if delay is not None:
                    time.sleep(delay)
        self._metrics.handler_errors(STORE_EVENT).inc()
        self._log.warning(
            "quality_store_error",
            run_id=job.run_id,
            trace_id=job.trace_id,
            judge=self._judge_name,
            error=describe_error(failure) if failure is not None else None,
        )
        return False

    def _log_evaluation(
        self,
        job: EvaluationJob,
        status: str,
        verdict: Verdict | None,
        usage: JudgeUsage,
        error_type: str | None,
        error: str | None,
        duration: float,
        stored: bool | None,
    ) -> None:
        fields = self._outcome(job, verdict, usage, error_type, _MAX_LOGGED_REASON)
        fields.update(status=status, duration_s=round(duration, 4))
        if stored is not None:
            fields["stored"] = stored
        if error is None:
            self._log.info("quality_eval", **fields)
        else:
            self._log.warning("quality_eval", error=error, **fields)
