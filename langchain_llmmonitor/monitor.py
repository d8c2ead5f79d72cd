"""`Monitor`: the LangChain callback handler that turns run events into metrics and structured logs.

It runs inline (`run_inline = True`): every callback is a few dictionary operations and metric updates, no I/O and no
locks held across calls, so LangChain need not hop to a thread pool for it in async code. Anything that could be slow
(judging, storing, talking to LangSmith) happens on background workers.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langsmith.run_helpers import get_current_run_tree
from prometheus_client import CollectorRegistry

from ._capture import CaptureSettings
from ._extract import UNKNOWN_MODEL, Usage, model_at_end, model_at_start, usage_of
from ._logs import default_logger, describe_error, info_enabled
from ._metrics import MonitorMetrics, metrics_for
from ._recent import FinishedTrace, RecentTraces
from ._runs import CHAIN, LLM, RETRIEVER, TOOL, Run, RunTable, Trace
from ._sampling import EVALUATE_TAG, FORCED, SampleDecision, Sampler
from ._writer import BatchWriter
from .judges._base import JUDGE_TAG, Judge
from .pricing import PriceTable
from .quality import EvaluationJob, QualityPipeline

if TYPE_CHECKING:
    from .feedback import FeedbackRecorder, RunRef
    from .feedback_tokens import FeedbackTokens
    from .outbox import Forwarder
    from .store import Store, UserFeedbackRecord

SUCCESS, ERROR, CANCELLED, INTERRUPTED = "success", "error", "cancelled", "interrupted"

# LangGraph raises these through the callback chain for interrupts and `Command(graph=PARENT)`: control flow, not failure.
_CONTROL_FLOW_ERRORS = frozenset({"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"})
_CANCELLATION_ERRORS = frozenset({"NodeCancelledError"})  # LangGraph cancelling a node, e.g. when a sibling failed

def outcome_of(error: BaseException) -> str:
    """How a run that raised `error` ended: cancelled, interrupted (LangGraph control flow) or error."""
    if isinstance(error, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt)):
        return CANCELLED
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & _CONTROL_FLOW_ERRORS:
        return INTERRUPTED
    if names & _CANCELLATION_ERRORS:
        return CANCELLED
    return ERROR


def _run_name(serialized: Any, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ids = serialized.get("id")
        if isinstance(ids, Sequence) and ids and isinstance(ids[-1], str):
            return ids[-1]
    return default


def default_judge(prices: PriceTable | None = None) -> Judge:
    """OpenAI's gpt-4o-mini when `OPENAI_API_KEY` is set, else the offline judge (no network, no key)."""
    if os.environ.get("OPENAI_API_KEY"):
        from .judges.openai_judge import OpenAIJudge

        return OpenAIJudge(model="gpt-4o-mini", prices=prices)
    from .judges.offline import OfflineJudge

    return OfflineJudge()


def _first_generation(response: Any) -> Any:
    """The answer of an LLM call that is itself the root: its first generation's message, or text."""
    generations = getattr(response, "generations", None)
    if not generations or not generations[0]:
        return None
    generation = generations[0][0]
    return getattr(generation, "message", None) or getattr(generation, "text", None)


def _open_store(store: Store | str | Path, metrics: MonitorMetrics) -> Store:
    if hasattr(store, "add_invocations"):
        return store  # type: ignore[return-value]
    try:
        from .store import Store
    except ImportError as missing:
        raise ImportError(f"Monitor(store=...) needs SQLAlchemy: pip install 'langchain-llmmonitor[store]' ({missing})") from missing
    return Store(store, metrics=metrics)


def _invocation_writer(store: Store, metrics: MonitorMetrics, logger: Any) -> BatchWriter[Any]:
    log = logger if logger is not None else default_logger()

    def failed(error: Exception, lost: int) -> None:
        metrics.handler_errors("store").inc()
        log.warning("store_write_failed", what="invocations", lost=lost, error=describe_error(error))

    return BatchWriter(
        store.add_invocations,
        name="llmmonitor-invocations",
        on_drop=lambda: metrics.handler_errors("store_queue_full").inc(),
        on_error=failed,
    )


class _BindOnFirstUse:
    """Holds the logger until the first event, then puts a bound logger in its place.

    structlog's lazy proxies re-read the configuration on every call, a few microseconds each time; binding at the first
    event (like structlog's `cache_logger_on_first_use`) keeps that off the hot path while still honouring a
    configuration the application sets up after creating the Monitor.
    """

    def __init__(self, monitor: Monitor, logger: Any) -> None:
        self._monitor = monitor
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        bind = getattr(self._logger, "bind", None)
        bound = bind() if callable(bind) else self._logger
        self._monitor._log = bound
        self._monitor._info_enabled = info_enabled(bound)
        return getattr(bound, name)


class Monitor(BaseCallbackHandler):
    """Production monitoring for any LangChain runnable: `chain.invoke(x, config={"callbacks": [Monitor()]})`.

    One instance can be shared by every request of an application, from threads and from asyncio tasks.
    """

    run_inline = True
    raise_error = False

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        prices: PriceTable | None = None,
        logger: Any = None,
        max_run_age_seconds: float = 900.0,
        max_tracked_runs: int = 50_000,
        judge: Judge | None = None,
        sample_rate: float = 0.05,
        evaluate_tags: Collection[str] = (EVALUATE_TAG,),
        evaluate_errors: bool = True,
        evaluate_without_context: bool = False,
        question_key: str | None = None,
        answer_key: str | None = None,
        redact: Callable[[str], str] | None = None,
        max_context_documents: int = 8,
        max_context_chars: int = 8_000,
        judge_workers: int = 1,
        judge_queue_size: int = 1_000,
        max_evaluations_per_hour: int | None = None,
        max_judge_cost_per_hour: float | None = None,
        request_id_key: str = "request_id",
        store: Store | str | Path | None = None,
        langsmith_client: Any = None,
        forward_feedback: bool | None = None,
        project: str | None = None,
        feedback_scale: str = "thumbs",
        feedback_secret: str | bytes | None = None,
        feedback_window: int = 2_048,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """
        Args:
            registry: where the metrics live; a fresh registry by default so monitors never collide. Pass
                `prometheus_client.REGISTRY` to expose them with the process's default collectors.
            prices: the price table for cost; the shipped table by default.
            logger: a structlog logger; by default `structlog.get_logger("langchain_llmmonitor")`, which follows the
                application's structlog configuration.
            max_run_age_seconds: runs that have not ended after this long (abandoned streams, killed tasks) are
                forgotten and give back their in-flight count.
            max_tracked_runs: hard bound on runs in flight; the oldest are forgotten first.
            judge: scores sampled traces; `default_judge()` by default (OpenAI when `OPENAI_API_KEY` is set, else the
                offline judge).
            sample_rate: share of traces judged, decided from the trace id (the same in every process and retry).
                `config["metadata"]["llmmonitor_evaluate"]` = True / False forces a trace in or out.
            evaluate_tags: traces carrying any of these tags are always judged.
            evaluate_errors: always judge a trace that answered although a step inside it failed (retry, fallback).
            evaluate_without_context: also judge traces that retrieved nothing (off by default: faithfulness to no
                context means little).
            question_key, answer_key: the root input and output keys holding the question and the answer; by default
                the first text found under common keys (question, input, query, messages / answer, output, ...).
            redact: applied to the question, each retrieved passage and the answer before they reach the judge, the
                logs or the store.
            max_context_documents, max_context_chars: how much retrieved context a judge sees per trace.
            judge_workers, judge_queue_size: background judge threads and the bound of their queue (a full queue
                drops and counts, it never blocks a request).
            max_evaluations_per_hour, max_judge_cost_per_hour: optional judge budget.
            request_id_key: the `config["metadata"]` key holding the application's own request id.
            store: a `Store`, a SQLite file path or a SQLAlchemy URL (`[store]` / `[postgres]` extras). Invocations,
                judge scores and user feedback are written there from background threads, and it is the outbox that
                forwards scores and feedback to LangSmith. Without one, scores reach only metrics and logs.
            langsmith_client: a `langsmith.Client(auto_batch_tracing=False)` for feedback; by default one is built
                from the LANGSMITH_* environment when there is something to send.
            forward_feedback: send stored scores and feedback to LangSmith; by default when a store is set and a
                client is given or LANGSMITH_API_KEY is set.
            project: the LangSmith project of the runs; by default LANGSMITH_PROJECT (as the tracer does).
            feedback_scale: "thumbs" (-1 / +1) or "five" (1-5) for `feedback()`.
            feedback_secret: a secret (32+ bytes) to issue signed, expiring per-run feedback tokens
                (`feedback_token(run_id)`).
            feedback_window: finished traces remembered for feedback that arrives before they reach the store, and
                for judging a trace when its user gives a negative rating.
            clock: a monotonic clock in seconds (tests pass a fake one).
        """
        super().__init__()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.prices = prices if prices is not None else PriceTable.default()
        self._metrics: MonitorMetrics = metrics_for(self.registry)
        self._log: Any = _BindOnFirstUse(self, logger if logger is not None else default_logger())
        self._info_enabled = True  # settled when the logger is bound, at the first event
        self._clock = clock
        self._runs = RunTable(
            max_age_seconds=max_run_age_seconds, max_runs=max_tracked_runs, on_expired=self._expired, clock=clock
        )
        self._sampler = Sampler(rate=sample_rate, evaluate_tags=evaluate_tags, evaluate_errors=evaluate_errors)
        self._capture = CaptureSettings(
            question_key=question_key,
            answer_key=answer_key,
            redact=redact,
            max_documents=max_context_documents,
            max_context_chars=max_context_chars,
        )
        self._evaluate_without_context = evaluate_without_context
        self._request_id_key = request_id_key
        if feedback_scale not in ("thumbs", "five"):
            raise ValueError(f'feedback_scale must be "thumbs" or "five", got {feedback_scale!r}')
        if forward_feedback and store is None:
            raise ValueError("forward_feedback needs a store: feedback is written there first (Monitor(store=...))")
        self.judge: Judge = judge if judge is not None else default_judge(self.prices)
        self._project = project
        self._owns_store = store is not None and not hasattr(store, "add_invocations")
        self.store: Store | None = _open_store(store, self._metrics) if store is not None else None
        self._recent = RecentTraces(feedback_window) if self.store is not None else None
        self._invocation_writer = _invocation_writer(self.store, self._metrics, logger) if self.store is not None else None
        self._feedback: FeedbackRecorder | None = None
        self._feedback_scale = feedback_scale
        self.feedback_tokens: FeedbackTokens | None = None
        if feedback_secret is not None:
            from .feedback_tokens import FeedbackTokens

            self.feedback_tokens = FeedbackTokens(feedback_secret)
        self._langsmith_client = langsmith_client
        self.forwarder: Forwarder | None = None
        if self.store is not None and (
            forward_feedback
            if forward_feedback is not None
            else langsmith_client is not None or bool(os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY"))
        ):
            from .outbox import Forwarder

            self.forwarder = Forwarder(self.store, client=langsmith_client, metrics=self._metrics, logger=logger)
            self.forwarder.start()
        self._quality = QualityPipeline(
            self.judge,
            metrics=self._metrics,
            logger=logger,
            store=self.store,
            queue_size=judge_queue_size,
            workers=judge_workers,
            max_evaluations_per_hour=max_evaluations_per_hour,
            max_judge_cost_per_hour=max_judge_cost_per_hour,
        )

    # Run bookkeeping ------------------------------------------------------------------------------------------------

    def _start(
        self,
        kind: str,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: Any,
        label: str,
        serialized: Any,
        kwargs: Any,
        metadata: Any = None,
        inputs: Any = None,
    ) -> Run | None:
        if tags and JUDGE_TAG in tags:  # the judge's own calls are not application traffic (tags are inherited)
            return None
        now = self._clock()
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None:
            run = Run(kind, now, parent.trace, label, is_root=False)
        else:
            name = label if kind in (RETRIEVER, TOOL) else _run_name(serialized, kwargs, kind)
            trace = Trace(run_id, self._trace_id(run_id, parent_run_id), name, now)
            trace.inputs = inputs
            if isinstance(metadata, Mapping):
                request_id = metadata.get(self._request_id_key)
                if request_id is not None:
                    trace.request_id = str(request_id)[:200]
            trace.sample = self._sampler.at_start(trace.trace_id, metadata, tags)
            run = Run(kind, now, trace, label, is_root=True)
        self._runs.add(run_id, run)
        return run

    @staticmethod
    def _trace_id(run_id: UUID, parent_run_id: UUID | None) -> UUID:
        """A root's trace id is its own run id, unless it runs inside a LangSmith `@traceable` span."""
        if parent_run_id is None:
            return run_id
        run_tree = get_current_run_tree()
        trace_id = getattr(run_tree, "trace_id", None)
        return trace_id if isinstance(trace_id, UUID) else run_id

    def _end(self, run_id: UUID, kind: str, event: str) -> Run | None:
        """Forget a run that ended; None when it is unknown (never seen, expired) or ended as a different kind."""
        run = self._runs.pop(run_id)
        if run is None:
            return None
        if run.kind == LLM:
            self._metrics.active.dec()
        if run.kind != kind:
            self._malformed(event, f"run {run_id} started as {run.kind}")
            return None
        return run

    def _expired(self, run_id: UUID, run: Run, age: float) -> None:
        self._metrics.runs_expired(run.kind).inc()
        if run.kind == LLM:
            self._metrics.active.dec()
        self._log.warning(
            "run_expired", run_id=str(run_id), trace_id=str(run.trace.trace_id), kind=run.kind, label=run.label, age_s=round(age, 3)
        )

    def _handler_failed(self, event: str, error: Exception) -> None:
        try:
            self._metrics.handler_errors(event).inc()
            self._log.warning("monitor_handler_error", callback=event, error=describe_error(error))
        except Exception:  # noqa: BLE001, S110 - a broken logger must not break the chain either
            pass

    def _malformed(self, event: str, what: str) -> None:
        self._metrics.handler_errors(event).inc()
        self._log.warning("monitor_malformed_event", callback=event, problem=what)

    def _finish_root(
        self, run_id: UUID, run: Run, status: str, error: BaseException | None, answer: Any = None, inputs: Any = None
    ) -> None:
        elapsed = self._clock() - run.started
        trace = run.trace
        self._metrics.invocations(trace.name, status).inc()
        if status != CANCELLED:
            self._metrics.invocation_duration(trace.name).observe(elapsed)
        if error is not None or self._info_enabled:
            fields = dict(
                run_id=str(run_id),
                trace_id=str(trace.trace_id),
                name=trace.name,
                status=status,
                latency_s=round(elapsed, 4),
                llm_calls=trace.llm_calls,
                prompt_tokens=trace.usage.prompt,
                completion_tokens=trace.usage.completion,
                cost_usd=round(trace.cost_usd, 6) if not trace.unpriced_calls else None,
            )
            if error is None:
                self._log.info("invocation", **fields)
            else:
                self._log.warning("invocation", error=describe_error(error), **fields)
        evaluated = False
        if status == SUCCESS and answer is not None:
            inputs = inputs if inputs is not None else trace.inputs
            evaluated = self._consider_evaluation(trace, inputs, answer)
        if self._invocation_writer is not None:
            self._record_invocation(run_id, trace, status, elapsed, inputs, answer, evaluated)

    def _record_invocation(
        self, run_id: UUID, trace: Trace, status: str, elapsed: float, inputs: Any, answer: Any, evaluated: bool
    ) -> None:
        """Queue the invocation for the store and remember it for feedback; the write happens on a background thread."""
        from .store import InvocationRecord

        project = self.project
        self._invocation_writer.submit(  # type: ignore[union-attr]
            InvocationRecord(
                run_id=str(run_id),
                trace_id=str(trace.trace_id),
                name=trace.name[:200],
                status=status,
                started_at=datetime.now(timezone.utc) - timedelta(seconds=elapsed),
                latency_s=elapsed,
                prompt_tokens=trace.usage.prompt,
                completion_tokens=trace.usage.completion,
                cost_usd=None if trace.unpriced_calls else trace.cost_usd,
                request_id=trace.request_id,
                project=project,
            )
        )
        self._recent.remember(  # type: ignore[union-attr]
            FinishedTrace(
                run_id=str(run_id),
                trace_id=str(trace.trace_id),
                request_id=trace.request_id,
                project=project,
                inputs=inputs if inputs is not None else trace.inputs,
                documents=trace.documents,
                answer=answer if status == SUCCESS else None,
                evaluated=evaluated or trace.sample is False,
            )
        )

    @property
    def project(self) -> str | None:
        """The LangSmith project of the monitored runs (LANGSMITH_PROJECT unless given)."""
        if self._project is None:
            from langsmith.utils import get_tracer_project

            self._project = get_tracer_project()
        return self._project

    # Quality --------------------------------------------------------------------------------------------------------

    def _consider_evaluation(self, trace: Trace, inputs: Any, answer: Any) -> bool:
        decision = trace.sample
        if decision is None and trace.failed_steps and self._sampler.evaluate_errors:
            decision = SampleDecision(FORCED, "error")
        if not decision:
            return False
        return self._submit(
            decision, str(trace.run_id), str(trace.trace_id), trace.request_id, inputs, trace.documents, answer
        )

    def _submit(
        self,
        decision: SampleDecision,
        run_id: str,
        trace_id: str,
        request_id: str | None,
        inputs: Any,
        documents: Sequence[Any],
        answer: Any,
    ) -> bool:
        """Queue a judge evaluation of a finished trace; cheap, never blocks (the judge runs on a worker)."""
        item = self._capture.evaluation_input(inputs, documents, answer)
        if item is None:
            self._metrics.judge_dropped("no_answer").inc()
            return False
        if not item.context and not self._evaluate_without_context:
            self._metrics.judge_dropped("no_context").inc()
            return False
        self._metrics.quality_samples(decision.reason).inc()
        job = EvaluationJob(
            run_id=run_id,
            trace_id=trace_id,
            item=item,
            sampling=decision.sampling,
            sample_reason=decision.reason,
            request_id=request_id,
            project=self.project,
        )
        return self._quality.submit(job)

    def _judge_after_negative_feedback(self, ref: RunRef) -> None:
        """A user's thumbs-down forces an evaluation of that trace, if it is still remembered and was not judged."""
        trace = self._recent.find(ref.run_id) if self._recent is not None else None
        if trace is None or trace.answer is None or not self._recent.claim_evaluation(trace):  # type: ignore[union-attr]
            return
        decision = SampleDecision(FORCED, "feedback")
        self._submit(decision, trace.run_id, trace.trace_id, trace.request_id, trace.inputs, trace.documents, trace.answer)

    # User feedback --------------------------------------------------------------------------------------------------

    def feedback(
        self,
        run_or_request_id: str | UUID,
        *,
        score: float,
        comment: str | None = None,
        source: str = "api",
        feedback_id: str | UUID | None = None,
    ) -> UserFeedbackRecord:
        """Record a user's rating of a run (by run id or by the request id in `config["metadata"]`).

        Written to the store first and forwarded to LangSmith from the outbox, so it is never lost; a negative rating
        also forces a judge evaluation of the trace. Raises `UnknownRunError` for an id it has never seen and
        `InvalidFeedbackError` for a score off the scale or a comment that is too long. Idempotent by `feedback_id`.
        """
        return self._feedback_recorder().record(
            run_or_request_id, score=score, comment=comment, source=source, feedback_id=feedback_id
        )

    def feedback_token(self, run_id: str | UUID) -> str:
        """A signed, expiring token that lets whoever received this run's answer rate it (needs `feedback_secret`)."""
        if self.feedback_tokens is None:
            raise RuntimeError("feedback tokens need a secret: Monitor(feedback_secret=...)")
        return self.feedback_tokens.issue(run_id)

    def _feedback_recorder(self) -> FeedbackRecorder:
        if self._feedback is None:
            if self.store is None:
                raise RuntimeError("user feedback is stored before it is sent anywhere: Monitor(store='llmmonitor.db')")
            from .feedback import FeedbackRecorder, RatingScale, RunRef

            recent = self._recent

            def resolve(key: str) -> RunRef | None:
                trace = recent.find(key) if recent is not None else None
                if trace is None:
                    return None
                return RunRef(run_id=trace.run_id, trace_id=trace.trace_id, request_id=trace.request_id, project=trace.project)

            self._feedback = FeedbackRecorder(
                self.store,
                metrics=self._metrics,
                logger=self._log,
                scale=RatingScale.named(self._feedback_scale),
                resolve=resolve,
                on_negative=self._judge_after_negative_feedback,
                langsmith_client=self._langsmith_client,
            )
        return self._feedback

    @property
    def feedback_recorder(self) -> FeedbackRecorder:
        """What the feedback API (`api.create_app`) records through."""
        return self._feedback_recorder()

    # Draining -------------------------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until queued evaluations are judged and recorded and invocations are stored (and, when forwarding,
        the outbox delivered); True when all of it drained in time."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        drained = self._quality.flush(remaining())
        if self._invocation_writer is not None:
            drained = self._invocation_writer.flush(remaining()) and drained
        if self.forwarder is not None:
            drained = self.forwarder.flush(remaining() if deadline is not None else 60.0) and drained
        return drained

    def close(self, timeout: float = 5.0) -> bool:
        """Drain and stop the background workers (also done at interpreter exit); later evaluations are dropped."""
        drained = self._quality.close(timeout)
        if self._invocation_writer is not None:
            drained = self._invocation_writer.close(timeout) and drained
        if self.forwarder is not None:
            drained = self.forwarder.stop(timeout) and drained
        if self._owns_store and self.store is not None:
            self.store.close()
        return drained

    # Chains ---------------------------------------------------------------------------------------------------------

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, tags: Any = None, **kwargs: Any
    ) -> None:
        try:
            self._start(CHAIN, run_id, parent_run_id, tags, "", serialized, kwargs, kwargs.get("metadata"), inputs)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_chain_start", failure)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, CHAIN, "on_chain_end")
            if run is not None and run.is_root:
                # A streamed root starts with a placeholder input and gets the real one here.
                self._finish_root(run_id, run, SUCCESS, None, outputs, kwargs.get("inputs"))
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_chain_end", failure)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, CHAIN, "on_chain_error")
            if run is None:
                return
            status = outcome_of(error)
            if run.is_root:
                self._finish_root(run_id, run, status, error if status == ERROR else None)
            elif status == ERROR:
                run.trace.failed_steps += 1
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_chain_error", failure)

    # LLMs and chat models -------------------------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: Any = None,
        metadata: Mapping[str, Any] | None = None,
        invocation_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            first_prompt = messages[0] if isinstance(messages, Sequence) and messages else None
            self._start_llm(serialized, run_id, parent_run_id, tags, metadata, invocation_params, kwargs, first_prompt)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_chat_model_start", failure)

    def on_llm_start(
        self,
        serialized: Any,
        prompts: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: Any = None,
        metadata: Mapping[str, Any] | None = None,
        invocation_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            first_prompt = prompts[0] if isinstance(prompts, Sequence) and prompts else None
            self._start_llm(serialized, run_id, parent_run_id, tags, metadata, invocation_params, kwargs, first_prompt)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_llm_start", failure)

    def _start_llm(
        self,
        serialized: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: Any,
        metadata: Any,
        invocation_params: Any,
        kwargs: Mapping[str, Any],
        first_prompt: Any,
    ) -> None:
        model = model_at_start(
            serialized if isinstance(serialized, Mapping) else None,
            metadata if isinstance(metadata, Mapping) else None,
            invocation_params if isinstance(invocation_params, Mapping) else None,
        )
        run = self._start(LLM, run_id, parent_run_id, tags, model or "", serialized, kwargs, metadata, first_prompt)
        if run is not None:
            self._metrics.active.inc()

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._runs.get(run_id)
            if run is not None and run.first_token_at is None:
                run.first_token_at = self._clock()
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_llm_new_token", failure)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, LLM, "on_llm_end")
            if run is None:
                return
            ended = self._clock()
            if not hasattr(response, "generations"):
                self._malformed("on_llm_end", f"response is {type(response).__name__}, not an LLMResult")
            model = run.label or model_at_end(response) or UNKNOWN_MODEL
            usage = usage_of(response)
            latency = ended - run.started
            metrics = self._metrics
            metrics.requests(model, SUCCESS).inc()
            metrics.request_duration(model).observe(latency)
            ttft = None
            if run.first_token_at is not None:
                ttft = run.first_token_at - run.started
                metrics.time_to_first_token(model).observe(ttft)
            cost = self._record_usage(model, usage, run.trace)
            if self._info_enabled:
                self._log.info(
                    "llm_call",
                    run_id=str(run_id),
                    trace_id=str(run.trace.trace_id),
                    model=model,
                    status=SUCCESS,
                    latency_s=round(latency, 4),
                    ttft_s=None if ttft is None else round(ttft, 4),
                    prompt_tokens=usage.prompt if usage else None,
                    completion_tokens=usage.completion if usage else None,
                    cache_read_tokens=usage.cache_read if usage else None,
                    reasoning_tokens=usage.reasoning if usage else None,
                    cost_usd=None if cost is None else round(cost, 6),
                )
            if run.is_root:
                self._finish_root(run_id, run, SUCCESS, None, _first_generation(response))
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_llm_end", failure)

    def _record_usage(self, model: str, usage: Usage | None, trace: Trace) -> float | None:
        """Token and cost metrics for one call; returns the cost, or None when it is unknown."""
        metrics = self._metrics
        trace.llm_calls += 1
        if usage is None:
            metrics.usage_missing(model).inc()
            trace.unpriced_calls += 1
            return None
        tokens = metrics.tokens
        tokens(model, "prompt").inc(usage.prompt)
        tokens(model, "completion").inc(usage.completion)
        if usage.cache_read:
            tokens(model, "cache_read").inc(usage.cache_read)
        if usage.cache_creation:
            tokens(model, "cache_creation").inc(usage.cache_creation)
        if usage.reasoning:
            tokens(model, "reasoning").inc(usage.reasoning)
        trace.usage.add(usage)
        price = self.prices.lookup(model)
        if price is None:
            metrics.unpriced(model).inc()
            trace.unpriced_calls += 1
            return None
        cost = price.cost(
            prompt=usage.prompt, completion=usage.completion, cache_read=usage.cache_read, cache_creation=usage.cache_creation
        )
        metrics.cost(model).inc(cost)
        trace.cost_usd += cost
        return cost

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, LLM, "on_llm_error")
            if run is None:
                return
            latency = self._clock() - run.started
            model = run.label or UNKNOWN_MODEL
            status = outcome_of(error)
            self._metrics.requests(model, status).inc()
            fields = dict(
                run_id=str(run_id), trace_id=str(run.trace.trace_id), model=model, status=status, latency_s=round(latency, 4)
            )
            if status == ERROR:
                run.trace.failed_steps += 1
                self._metrics.request_duration(model).observe(latency)
                self._metrics.errors(model, type(error).__name__).inc()
                self._log.warning("llm_call", error=describe_error(error), **fields)
            elif self._info_enabled:
                self._log.info("llm_call", **fields)
            if run.is_root:
                self._finish_root(run_id, run, status, error if status == ERROR else None)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_llm_error", failure)

    # Retrievers -----------------------------------------------------------------------------------------------------

    def on_retriever_start(
        self, serialized: Any, query: Any, *, run_id: UUID, parent_run_id: UUID | None = None, tags: Any = None, **kwargs: Any
    ) -> None:
        try:
            self._start(RETRIEVER, run_id, parent_run_id, tags, _run_name(serialized, kwargs, RETRIEVER), serialized, kwargs)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_retriever_start", failure)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, RETRIEVER, "on_retriever_end")
            if run is None:
                return
            self._metrics.retriever_requests(run.label, SUCCESS).inc()
            self._metrics.retriever_duration(run.label).observe(self._clock() - run.started)
            if isinstance(documents, Sequence):
                self._metrics.retriever_documents(run.label).observe(len(documents))
                trace = run.trace
                room = self._capture.max_documents - len(trace.documents)
                if room > 0 and trace.sample is not False:
                    trace.documents.extend(documents[:room])
            else:
                self._malformed("on_retriever_end", f"documents is {type(documents).__name__}, not a sequence")
            if run.is_root:
                self._finish_root(run_id, run, SUCCESS, None)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_retriever_end", failure)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, RETRIEVER, "on_retriever_error")
            if run is not None:
                self._record_failure(run_id, run, error, self._metrics.retriever_requests, self._metrics.retriever_duration)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_retriever_error", failure)

    # Tools ----------------------------------------------------------------------------------------------------------

    def on_tool_start(
        self, serialized: Any, input_str: Any, *, run_id: UUID, parent_run_id: UUID | None = None, tags: Any = None, **kwargs: Any
    ) -> None:
        try:
            self._start(TOOL, run_id, parent_run_id, tags, _run_name(serialized, kwargs, TOOL), serialized, kwargs)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_tool_start", failure)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, TOOL, "on_tool_end")
            if run is None:
                return
            self._metrics.tool_calls(run.label, SUCCESS).inc()
            self._metrics.tool_duration(run.label).observe(self._clock() - run.started)
            if run.is_root:
                self._finish_root(run_id, run, SUCCESS, None)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_tool_end", failure)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, TOOL, "on_tool_error")
            if run is not None:
                self._record_failure(run_id, run, error, self._metrics.tool_calls, self._metrics.tool_duration)
        except Exception as failure:  # noqa: BLE001 - the handler must never raise into the chain
            self._handler_failed("on_tool_error", failure)

    def _record_failure(self, run_id: UUID, run: Run, error: BaseException, calls: Any, duration: Any) -> None:
        status = outcome_of(error)
        calls(run.label, status).inc()
        if status != CANCELLED:
            duration(run.label).observe(self._clock() - run.started)
        if status == ERROR:
            run.trace.failed_steps += 1
        if run.is_root:
            self._finish_root(run_id, run, status, error if status == ERROR else None)

    # Introspection --------------------------------------------------------------------------------------------------

    @property
    def runs_in_flight(self) -> int:
        """Runs started and not yet ended or expired (for health checks and tests)."""
        return len(self._runs)

    def expire_stale_runs(self) -> int:
        """Age out runs that never ended now instead of at the next start; returns how many."""
        return self._runs.sweep()
