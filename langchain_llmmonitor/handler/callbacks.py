"""The LangChain callback handler: run events in; metrics, log events, evaluation jobs and invocation records out.

It runs inline (`run_inline = True`): every callback is a few dictionary operations and metric updates, no I/O and
no locks held across calls, so LangChain need not hop to a thread pool for it in async code. Anything that could be
slow (judging, storing, talking to LangSmith) is handed to a queue: `evaluations.submit(job)` and
`invocations.submit(record)`, both non-blocking.

Every callback body is `try: ... except Exception as failure: self._handler_failed(event, failure)`, the one error
policy: an exception inside the handler is counted, logged (a repeating one at most once a minute) and never reaches
the chain. Not a decorator or a context manager, because a try block costs nothing until it catches (CPython 3.11's
zero-cost exceptions). Measured with callgrind on the reference chain: a `with` guard cost ~1,600 instructions per
event, a seventh of the handler's work, and a decorator forwarding `*args, **kwargs` three times that.

After `close()` the handler sets LangChain's own `ignore_*` switches, so LangChain no longer calls it at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langsmith.run_helpers import get_current_run_tree

from ..config import MonitorConfig
from ..core.records import EvaluationJob, InvocationRecord, RunRef, evaluation_id
from ..core.segments import declared_segments, trace_segments
from ..core.text import describe_error
from ..core.usage import Usage
from ..core.vocabulary import CANCELLED, ERROR, INTERRUPTED, JUDGE_TAG, SUCCESS, UNKNOWN_MODEL
from ..pricing import PriceTable
from ..telemetry.logs import OncePerInterval, info_enabled
from ..telemetry.metrics import MonitorMetrics
from .capture import evaluation_input
from .extract import is_mapping, is_sequence, model_at_end, model_at_start, usage_of
from .recent import FinishedTrace, RecentTraces
from .runs import AGE, CHAIN, LLM, RETRIEVER, TOOL, Entry, Run, RunTable, Trace
from .sampling import AFTER_ERROR, AFTER_FEEDBACK, SampleDecision, Sampler

# LangGraph raises these through the callback chain for interrupts and `Command(graph=PARENT)`: control flow, not failure.
_CONTROL_FLOW_ERRORS = frozenset({"GraphBubbleUp", "GraphInterrupt", "NodeInterrupt", "ParentCommand"})
_CANCELLATION_ERRORS = frozenset({"NodeCancelledError"})  # LangGraph cancelling a node, e.g. when a sibling failed
_MAX_REQUEST_ID_CHARS = 200
_running_loop = asyncio._get_running_loop  # None outside a loop, where `get_running_loop` raises (and costs more)


class JobQueue(Protocol):
    """Takes evaluation jobs off the request path (the judge pool); never blocks, False when the job was dropped."""

    def submit(self, job: EvaluationJob) -> bool: ...


class RecordQueue(Protocol):
    """Takes finished invocations off the request path (the store writer); never blocks."""

    def submit(self, record: InvocationRecord) -> bool: ...


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


@dataclass(slots=True)
class Finish:
    """How a root ended, held until its LLM calls have settled so that the invocation has every call's tokens."""

    run_id: UUID
    status: str
    error: BaseException | None
    elapsed: float
    answer: Any
    inputs: Any
    settle_by: float


class _BindOnFirstUse:
    """Holds the logger until the first event, then puts a bound logger in its place.

    structlog's lazy proxies re-read the configuration on every call, a few microseconds each time; binding at the
    first event (like structlog's `cache_logger_on_first_use`) keeps that off the hot path while still honouring a
    configuration the application sets up after creating the Monitor.
    """

    def __init__(self, handler: CallbackHandler, logger: Any) -> None:
        self._handler = handler
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        bind = getattr(self._logger, "bind", None)
        bound = bind() if callable(bind) else self._logger
        self._handler._log = bound
        self._handler._info_enabled = info_enabled(bound)
        return getattr(bound, name)


class CallbackHandler(BaseCallbackHandler):
    """Turns the run events of any LangChain runnable into metrics, logs, evaluation jobs and invocation records.

    One instance can be shared by every request of an application, from threads and from asyncio tasks.
    """

    run_inline = True
    raise_error = False
    # LangChain's switches, as plain attributes (cheaper to read than the base class's properties); `close()` turns
    # them on, so that LangChain stops calling a closed monitor.
    ignore_llm = ignore_chat_model = ignore_chain = ignore_retriever = ignore_agent = False
    ignore_retry = ignore_custom_event = True  # events the monitor has no use for

    def __init__(
        self,
        *,
        config: MonitorConfig,
        metrics: MonitorMetrics,
        logger: Any,
        prices: PriceTable,
        clock: Callable[[], float],
        evaluations: JobQueue,
        invocations: RecordQueue | None = None,
    ) -> None:
        super().__init__()
        self._metrics = metrics
        self._log: Any = _BindOnFirstUse(self, logger)
        self._info_enabled = True  # settled when the logger is bound, at the first event
        self._error_log = OncePerInterval()
        self._prices = prices
        self._clock = clock
        self._runs = RunTable(
            max_age_seconds=config.runs.max_age_seconds,
            max_runs=config.runs.max_tracked,
            on_forget=self._forget,
            clock=clock,
        )
        self._request_id_key = config.runs.request_id_key
        self._settle_seconds = config.runs.settle_seconds
        self._unsettled: deque[Trace] = deque()  # finished roots waiting for late LLM ends, in finish order
        self._settle_lock = threading.RLock()
        self._sampler = Sampler(config.sampling)
        self._evaluate_errors = config.sampling.evaluate_errors
        self._evaluate_without_context = config.sampling.evaluate_without_context
        self._capture = config.capture
        self._segment_keys = frozenset(config.segments.keys)
        self._segment_chars = config.segments.max_value_chars
        self._labelled = bool(metrics.segment_labels.keys)
        self._project = config.langsmith.project
        self._evaluations = evaluations
        self._invocations = invocations
        self._recent = RecentTraces(config.feedback.window) if invocations is not None else None

    # Chains ---------------------------------------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: Any = None,
        metadata: Any = None,
        **kwargs: Any,
    ) -> None:
        try:
            if tags and JUDGE_TAG in tags:  # the judge's own calls are not application traffic (tags are inherited)
                return
            if parent_run_id is not None:
                parent = self._runs.get(parent_run_id.int)
                if parent is not None:  # a nested step: only a link to its trace (a Trace is its own trace)
                    self._runs.link(run_id.int, parent if type(parent) is Trace else parent.trace)
                    return
            now = self._clock()
            trace = self._new_trace(run_id, parent_run_id, _run_name(serialized, kwargs, CHAIN), now, metadata, tags)
            trace.inputs = inputs
            self._runs.add(run_id.int, Run(CHAIN, now, trace, "", True))
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_chain_start", failure)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, inputs: Any = None, **kwargs: Any) -> None:
        try:
            entry = self._runs.pop(run_id.int, None)
            if entry is None or type(entry) is Trace:  # unknown, or a nested step: a link, nothing to record
                return
            run = self._ended(entry, run_id.int, CHAIN, "on_chain_end")
            if run is not None and run.is_root:  # a streamed root gets its real input only here
                status = INTERRUPTED if run.trace.paused else SUCCESS  # LangGraph returns normally from interrupt()
                self._finish_root(run_id, run, status, None, outputs, inputs)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_chain_end", failure)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, CHAIN, "on_chain_error")
            if run is None:
                return
            status = outcome_of(error)
            if run.is_root:
                self._finish_root(run_id, run, status, error if status == ERROR else None)
            else:
                self._step_outcome(run.trace, status, error)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_chain_error", failure)

    # LLMs and chat models -------------------------------------------------------------------------------------------

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        try:
            first_prompt = messages[0] if is_sequence(messages) and messages else None
            self._start_llm(serialized, run_id, parent_run_id, kwargs, first_prompt)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_chat_model_start", failure)

    def on_llm_start(
        self, serialized: Any, prompts: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        try:
            first_prompt = prompts[0] if is_sequence(prompts) and prompts else None
            self._start_llm(serialized, run_id, parent_run_id, kwargs, first_prompt)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_llm_start", failure)

    def _start_llm(
        self, serialized: Any, run_id: UUID, parent_run_id: UUID | None, kwargs: Mapping[str, Any], first_prompt: Any
    ) -> None:
        tags, metadata = kwargs.get("tags"), kwargs.get("metadata")
        if tags and JUDGE_TAG in tags:
            return
        model = self._extract("on_llm_start", model_at_start, serialized, metadata, kwargs.get("invocation_params"))
        now = self._clock()
        parent = self._runs.get(parent_run_id.int) if parent_run_id is not None else None
        if parent is not None:
            run = Run(LLM, now, parent.trace, model or "", False)
        else:
            trace = self._new_trace(run_id, parent_run_id, _run_name(serialized, kwargs, LLM), now, metadata, tags)
            trace.inputs = first_prompt
            run = Run(LLM, now, trace, model or "", True)
        if metadata and is_mapping(metadata):
            run.provider = metadata.get("ls_provider")
        if model:
            run.trace.model = model  # the last call's model is the trace's `model` segment
        key = run_id.int
        self._runs.add(key, run)
        run.trace.open_llm_runs.add(key)
        self._metrics.active.inc()
        loop = _running_loop()
        if loop is not None:
            self._watch_task(key, run, loop)

    def _watch_task(self, key: int, run: Run, loop: asyncio.AbstractEventLoop) -> None:
        """Close the call when its task is cancelled: LangChain then sends neither an end nor an error."""
        task = asyncio.current_task(loop)
        if task is not None:
            callback = partial(self._task_done, key)
            task.add_done_callback(callback)
            run.watch = (task, callback)

    def _task_done(self, key: int, task: asyncio.Task[Any]) -> None:
        try:
            if task.cancelled():
                run = self._runs.pop(key, None)
                if run is not None and self._ended(run, key, LLM, "llm_task_cancelled") is not None:
                    self._llm_failed(UUID(int=key), run, CANCELLED, None)  # type: ignore[arg-type]
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("llm_task_cancelled", failure)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._runs.get(run_id.int)
            if run is not None and run.kind == LLM and run.first_token_at is None:  # type: ignore[union-attr]
                run.first_token_at = self._clock()  # type: ignore[union-attr]
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_llm_new_token", failure)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, LLM, "on_llm_end")
            if run is None:
                return
            latency = self._clock() - run.started
            if not hasattr(response, "generations"):
                self._malformed("on_llm_end", f"response is {type(response).__name__}, not an LLMResult")
            # The model the provider says answered is what was billed (a dated snapshot; Azure's model, not a deployment).
            answered_by = self._extract("on_llm_end", model_at_end, response)
            model = run.label or answered_by or UNKNOWN_MODEL
            if answered_by and run.provider == "azure":  # Azure's label is a deployment name, not a model
                model = answered_by
            usage = self._extract("on_llm_end", usage_of, response)
            self._record_llm_call(run_id, run, model, answered_by or model, usage, latency)
            if run.is_root:
                self._finish_root(run_id, run, SUCCESS, None, self._extract("on_llm_end", _first_generation, response))
            elif run.trace.finish is not None:  # the root ended first (an abandoned stream): the last end writes it
                self._settle_if_done(run.trace)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_llm_end", failure)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, LLM, "on_llm_error")
            if run is not None:
                self._llm_failed(run_id, run, outcome_of(error), error, kwargs.get("response"))  # type: ignore[arg-type]
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_llm_error", failure)

    def _llm_failed(
        self, run_id: UUID, run: Run, status: str, error: BaseException | None, cut_short: Any = None
    ) -> None:
        """An LLM call that ended without a result: failed, cancelled (by its task or its root) or interrupted.

        `cut_short` is what a stream produced before it was cut short (an LLMResult); the tokens it reports were billed.
        """
        latency = self._clock() - run.started
        model = run.label or UNKNOWN_MODEL
        trace = run.trace
        trace.llm_calls += 1
        self._metrics.requests(model, status).inc()
        usage = self._extract("on_llm_error", usage_of, cut_short) if cut_short is not None else None
        if usage is not None:
            self._record_usage(model, usage, trace, model, run.provider)
        ttft = self._first_token_wait(run, model)  # a token that came before the call was cut short: a real wait
        if status == ERROR:
            trace.failed_llm_calls += 1
            trace.failed_steps += 1
            self._metrics.request_duration(model).observe(latency)
            self._metrics.errors(model, type(error).__name__).inc()
        if status == ERROR or self._info_enabled:
            fields = dict(run_id=str(run_id), trace_id=str(trace.trace_id), model=model, status=status)
            ttft_s = None if ttft is None else round(ttft, 4)
            if status == ERROR:
                self._log.warning("llm_call", error=describe_error(error), latency_s=round(latency, 4), **fields)
            else:
                self._log.info("llm_call", latency_s=round(latency, 4), ttft_s=ttft_s, **fields)
        if run.is_root:
            self._finish_root(run_id, run, status, error if status == ERROR else None)
        elif trace.finish is not None:
            self._settle_if_done(trace)

    def _record_llm_call(
        self, run_id: UUID, run: Run, model: str, billed_model: str, usage: Usage | None, latency: float
    ) -> None:
        metrics = self._metrics
        run.trace.llm_calls += 1
        metrics.requests(model, SUCCESS).inc()
        metrics.request_duration(model).observe(latency)
        ttft = self._first_token_wait(run, model)
        cost = self._record_usage(model, usage, run.trace, billed_model, run.provider)
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
                cache_write_tokens=usage.cache_creation if usage else None,
                reasoning_tokens=usage.reasoning if usage else None,
                cost_usd=None if cost is None else round(cost, 6),
            )

    def _first_token_wait(self, run: Run, model: str) -> float | None:
        """Time to the first token of a streamed call (observed), None when no token came."""
        if run.first_token_at is None:
            return None
        ttft = run.first_token_at - run.started
        self._metrics.time_to_first_token(model).observe(ttft)
        return ttft

    def _record_usage(
        self, model: str, usage: Usage | None, trace: Trace, billed_model: str, provider: str | None
    ) -> float | None:
        """Token and cost metrics for one call, priced as the model the provider says answered; returns the cost, or
        None when it is unknown."""
        metrics = self._metrics
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
        price = self._prices.lookup(billed_model, provider, usage.service_tier)
        if price is None:
            metrics.unpriced(model).inc()
            trace.unpriced_calls += 1
            return None
        cost = price.cost(usage)
        metrics.cost(model).inc(cost)
        trace.cost_usd += cost
        return cost

    # Retrievers and tools -------------------------------------------------------------------------------------------

    def on_retriever_start(
        self, serialized: Any, query: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        try:
            self._start_step(RETRIEVER, serialized, run_id, parent_run_id, kwargs, query)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_retriever_start", failure)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, RETRIEVER, "on_retriever_end")
            if run is None:
                return
            self._extract("on_retriever_end", self._keep_documents, run, documents)  # an odd list loses only itself
            self._step_succeeded(run_id, run, self._metrics.retriever_requests, self._metrics.retriever_duration)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_retriever_end", failure)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, RETRIEVER, "on_retriever_error")
            if run is not None:
                self._step_failed(
                    run_id, run, error, self._metrics.retriever_requests, self._metrics.retriever_duration
                )
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_retriever_error", failure)

    def on_tool_start(
        self, serialized: Any, input_str: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        try:
            self._start_step(TOOL, serialized, run_id, parent_run_id, kwargs, input_str)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_tool_start", failure)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, TOOL, "on_tool_end")
            if run is not None:
                self._step_succeeded(run_id, run, self._metrics.tool_calls, self._metrics.tool_duration)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_tool_end", failure)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._end(run_id, TOOL, "on_tool_error")
            if run is not None:
                self._step_failed(run_id, run, error, self._metrics.tool_calls, self._metrics.tool_duration)
        except Exception as failure:  # noqa: BLE001 - the one error policy (module docstring)
            self._handler_failed("on_tool_error", failure)

    def _start_step(
        self,
        kind: str,
        serialized: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        kwargs: Mapping[str, Any],
        inputs: Any,
    ) -> None:
        tags = kwargs.get("tags")
        if tags and JUDGE_TAG in tags:
            return
        label = _run_name(serialized, kwargs, kind)
        now = self._clock()
        parent = self._runs.get(parent_run_id.int) if parent_run_id is not None else None
        if parent is not None:
            self._runs.add(run_id.int, Run(kind, now, parent.trace, label, False))
            return
        trace = self._new_trace(run_id, parent_run_id, label, now, kwargs.get("metadata"), tags)
        trace.inputs = inputs
        self._runs.add(run_id.int, Run(kind, now, trace, label, True))

    @staticmethod
    def _step_outcome(trace: Trace, status: str, error: BaseException) -> None:
        """What a step that raised tells about its trace: a failure, or a pause for a human (LangGraph interrupt)."""
        if status == ERROR:
            trace.failed_steps += 1
        elif status == INTERRUPTED and _pauses(error):
            trace.paused = True

    def _keep_documents(self, run: Run, documents: Any) -> None:
        """Count what a retriever returned and keep the first few for the judge, unless the trace opted out."""
        if not is_sequence(documents):
            self._malformed("on_retriever_end", f"documents is {type(documents).__name__}, not a sequence")
            return
        self._metrics.retriever_documents(run.label).observe(len(documents))
        trace = run.trace
        room = self._capture.max_documents - len(trace.documents)
        if room > 0 and trace.sample is not False:
            trace.documents.extend(documents[:room])

    def _step_succeeded(self, run_id: UUID, run: Run, calls: Any, duration: Any) -> None:
        calls(run.label, SUCCESS).inc()
        duration(run.label).observe(self._clock() - run.started)
        if run.is_root:
            self._finish_root(run_id, run, SUCCESS, None)

    def _step_failed(self, run_id: UUID, run: Run, error: BaseException, calls: Any, duration: Any) -> None:
        status = outcome_of(error)
        calls(run.label, status).inc()
        if status != CANCELLED:
            duration(run.label).observe(self._clock() - run.started)
        self._step_outcome(run.trace, status, error)
        if run.is_root:
            self._finish_root(run_id, run, status, error if status == ERROR else None)

    # Run bookkeeping ------------------------------------------------------------------------------------------------

    def _new_trace(
        self, run_id: UUID, parent_run_id: UUID | None, name: str, now: float, metadata: Any, tags: Any
    ) -> Trace:
        trace = Trace(run_id, _trace_id(run_id, parent_run_id), name, now)
        if is_mapping(metadata):
            request_id = metadata.get(self._request_id_key)
            if request_id is not None:
                trace.request_id = str(request_id)[:_MAX_REQUEST_ID_CHARS]
        trace.sample = self._sampler.at_start(trace.trace_id, metadata, tags)
        if metadata or tags:
            trace.segments = declared_segments(self._segment_keys, metadata, tags, self._segment_chars)
        return trace

    def _end(self, run_id: UUID, kind: str, event: str) -> Entry | None:
        """Forget a run that ended; None when it is unknown (never seen, expired) or ended as a different kind."""
        key = run_id.int
        run = self._runs.pop(key, None)
        return None if run is None else self._ended(run, key, kind, event)

    def _ended(self, run: Entry, key: int, kind: str, event: str) -> Entry | None:
        """A run just taken out of the table, checked against the kind of its end event."""
        if run.kind == LLM:
            self._llm_left(key, run)  # type: ignore[arg-type]
        if run.kind != kind:
            self._malformed(event, f"run {UUID(int=key)} started as {run.kind}")
            return None
        return run

    def _llm_left(self, key: int, run: Run) -> None:
        """An LLM call is out of the table, however it ended: it is no longer in flight."""
        self._metrics.active.dec()
        run.trace.open_llm_runs.discard(key)
        if run.watch is not None:
            task, callback = run.watch
            task.remove_done_callback(callback)

    def _forget(self, key: int, run: Entry, age: float, reason: str) -> None:
        """A run that will never end here: counted apart by why (aged out, table full, monitor closed)."""
        if reason == AGE:
            self._metrics.runs_expired(run.kind).inc()
        else:
            self._metrics.runs_evicted(run.kind, reason).inc()
        if run.kind == LLM:
            self._llm_left(key, run)  # type: ignore[arg-type]
            if run.trace.finish is not None:
                self._settle_if_done(run.trace)
        self._log.warning(
            "run_expired" if reason == AGE else "run_evicted",
            run_id=str(UUID(int=key)),
            trace_id=str(run.trace.trace_id),
            kind=run.kind,
            label=run.label,
            reason=reason,
            age_s=round(age, 3),
        )

    # Failures of the handler itself ---------------------------------------------------------------------------------

    def _extract(self, event: str, extractor: Callable[..., Any], *args: Any) -> Any:
        """One field out of an event payload; a failure loses that field (None), not the event."""
        try:
            return extractor(*args)
        except Exception as failure:  # noqa: BLE001 - one bad field must not cost the rest of the event
            self._handler_failed(event, failure, extractor.__name__)
            return None

    def _handler_failed(self, event: str, error: Exception, field: str | None = None) -> None:
        """The error policy of every callback (and of each extracted field): count, log rate-limited, never raise."""
        try:
            self._metrics.handler_errors(event).inc()
            held = self._error_log.admit(event, field or "", type(error).__name__)
            if held is not None:
                extra = {"field": field} if field else {}
                if held:
                    extra["suppressed"] = held
                self._log.warning("monitor_handler_error", callback=event, error=describe_error(error), **extra)
        except Exception:  # noqa: BLE001, S110 - a broken logger must not break the chain either
            pass

    def _malformed(self, event: str, what: str) -> None:
        self._metrics.handler_errors(event).inc()
        held = self._error_log.admit(event, "malformed")
        if held is not None:
            extra = {"suppressed": held} if held else {}
            self._log.warning("monitor_malformed_event", callback=event, problem=what, **extra)

    # Finished traces ------------------------------------------------------------------------------------------------

    def _finish_root(
        self, run_id: UUID, run: Run, status: str, error: BaseException | None, answer: Any = None, inputs: Any = None
    ) -> None:
        """Metrics of a finished root now; its log event, record and evaluation once its LLM calls have settled."""
        now = self._clock()
        elapsed = now - run.started
        trace = run.trace
        if self._labelled:  # opted-in segment labels (SegmentConfig.metric_labels)
            extra = self._metrics.segment_labels.values(self._segments(trace))
            self._metrics.invocations(trace.name, status, *extra).inc()
            duration = self._metrics.invocation_duration(trace.name, *extra)
        else:
            self._metrics.invocations(trace.name, status).inc()
            duration = self._metrics.invocation_duration(trace.name)
        if status != CANCELLED:
            duration.observe(elapsed)
        if self._unsettled:
            self._settle_due(now)
        inputs = inputs if inputs is not None else trace.inputs
        if not trace.open_llm_runs:  # nearly always: written now, nothing held
            self._settled(trace, run_id, status, error, elapsed, answer, inputs)
            return
        trace.finish = Finish(run_id, status, error, elapsed, answer, inputs, now + self._settle_seconds)
        self._unsettled.append(trace)
        if not self._settle_seconds:
            self._settle_due(now)

    def _settle_if_done(self, trace: Trace) -> None:
        """Write a finished root whose last LLM call just ended (once, whichever thread gets here first)."""
        if trace.open_llm_runs:
            return
        with self._settle_lock:
            finish, trace.finish = trace.finish, None
        if finish is not None:
            self._settled(
                trace, finish.run_id, finish.status, finish.error, finish.elapsed, finish.answer, finish.inputs
            )

    def _settle_due(self, now: float, *, everything: bool = False) -> None:
        """Close the LLM calls that outlived their root's grace as cancelled; their root is then written."""
        with self._settle_lock:
            while self._unsettled:
                trace = self._unsettled[0]
                if trace.finish is not None and trace.finish.settle_by > now and not everything:
                    return
                self._unsettled.popleft()
                for key in list(trace.open_llm_runs):
                    run = self._runs.pop(key, None)
                    if run is not None and self._ended(run, key, LLM, "settle") is not None:
                        self._llm_failed(UUID(int=key), run, CANCELLED, None)  # type: ignore[arg-type]
                trace.open_llm_runs.clear()  # any left had already been forgotten (expired, evicted)
                self._settle_if_done(trace)

    def _settled(
        self,
        trace: Trace,
        run_id: UUID,
        status: str,
        error: BaseException | None,
        elapsed: float,
        answer: Any,
        inputs: Any,
    ) -> None:
        """The root's log event, evaluation and record, with the tokens and cost of every one of its calls."""
        if error is not None or self._info_enabled:
            self._log_invocation(run_id, trace, status, elapsed, error)
        evaluated = False
        decision = None
        if status == SUCCESS and answer is not None:
            decision = trace.sample
            if decision is None and trace.failed_steps and self._evaluate_errors:
                decision = AFTER_ERROR
        if not decision and self._invocations is None:
            return
        segments = self._segments(trace)
        if decision:
            evaluated = self._submit(decision, run_id, trace, inputs, trace.documents, answer, segments)
        if self._invocations is not None:
            self._record_invocation(run_id, trace, status, elapsed, inputs, answer, evaluated, segments)

    def _segments(self, trace: Trace) -> dict[str, str]:
        return trace_segments(self._segment_keys, trace.segments, trace.model, trace.name, self._segment_chars)

    def _log_invocation(
        self, run_id: UUID, trace: Trace, status: str, elapsed: float, error: BaseException | None
    ) -> None:
        fields = dict(
            run_id=str(run_id),
            trace_id=str(trace.trace_id),
            name=trace.name,
            status=status,
            latency_s=round(elapsed, 4),
            llm_calls=trace.llm_calls,
            failed_llm_calls=trace.failed_llm_calls,
            prompt_tokens=trace.usage.prompt,
            completion_tokens=trace.usage.completion,
            cost_usd=round(trace.cost_usd, 6) if not trace.unpriced_calls else None,
        )
        if error is None:
            self._log.info("invocation", **fields)
        else:
            self._log.warning("invocation", error=describe_error(error), **fields)

    def _record_invocation(
        self,
        run_id: UUID,
        trace: Trace,
        status: str,
        elapsed: float,
        inputs: Any,
        answer: Any,
        evaluated: bool,
        segments: dict[str, str],
    ) -> None:
        """Queue the invocation for the store and remember it for feedback; the write happens on a background thread."""
        project = self.project
        self._invocations.submit(  # type: ignore[union-attr]
            InvocationRecord(
                run_id=str(run_id),
                trace_id=str(trace.trace_id),
                name=trace.name[:200],
                status=status,
                started_at=datetime.now(UTC) - timedelta(seconds=elapsed),
                latency_s=elapsed,
                prompt_tokens=trace.usage.prompt,
                completion_tokens=trace.usage.completion,
                cost_usd=None if trace.unpriced_calls else trace.cost_usd,
                request_id=trace.request_id,
                project=project,
                segments=segments,
            )
        )
        self._recent.remember(  # type: ignore[union-attr]
            FinishedTrace(
                run_id=str(run_id),
                trace_id=str(trace.trace_id),
                request_id=trace.request_id,
                project=project,
                inputs=inputs,
                documents=trace.documents,
                answer=answer if status == SUCCESS else None,
                evaluated=evaluated or trace.sample is False,
                segments=segments,
            )
        )

    def _submit(
        self,
        decision: SampleDecision,
        run_id: Any,
        trace: Any,
        inputs: Any,
        documents: Sequence[Any],
        answer: Any,
        segments: dict[str, str],
    ) -> bool:
        """Queue a judge evaluation of a finished trace; cheap, never blocks (the judge runs on a worker)."""
        item = evaluation_input(self._capture, inputs, documents, answer)
        if item is None:
            self._metrics.judge_dropped("no_answer").inc()
            return False
        if not item.context and not self._evaluate_without_context:
            self._metrics.judge_dropped("no_context").inc()
            return False
        self._metrics.quality_samples(decision.reason).inc()
        job = EvaluationJob(
            id=evaluation_id(str(run_id)),
            run_id=str(run_id),
            trace_id=str(trace.trace_id),
            item=item,
            sampling=decision.sampling,
            sample_reason=decision.reason,
            request_id=trace.request_id,
            project=self.project,
            segments=segments,
        )
        return self._evaluations.submit(job)

    # What the Monitor's feedback side asks of the handler -----------------------------------------------------------

    @property
    def project(self) -> str | None:
        """The LangSmith project of the monitored runs (LANGSMITH_PROJECT unless configured)."""
        if self._project is None:
            from langsmith.utils import get_tracer_project

            self._project = get_tracer_project()
        return self._project

    def _recent_run(self, key: str) -> RunRef | None:
        """A run that finished a moment ago, by run id or request id, even before it reaches the store."""
        trace = self._recent.find(key) if self._recent is not None else None
        if trace is None:
            return None
        return RunRef(run_id=trace.run_id, trace_id=trace.trace_id, request_id=trace.request_id, project=trace.project)

    def _judge_after_negative_feedback(self, run_id: str) -> bool:
        """A user's thumbs-down forces an evaluation of that trace, if it is remembered here and was not judged;
        False when this process does not remember the trace (another one may)."""
        recent = self._recent
        trace = recent.find(run_id) if recent is not None else None
        if trace is None:
            return False
        if trace.answer is not None and recent.claim_evaluation(trace):  # type: ignore[union-attr]
            self._submit(
                AFTER_FEEDBACK, trace.run_id, trace, trace.inputs, trace.documents, trace.answer, trace.segments
            )
        return True

    def _fulfil_judgement_requests(self, run_ids: Sequence[str]) -> None:
        """Judge the runs that users rated down in other processes, when this process holds their traces."""
        for run_id in run_ids:
            self._judge_after_negative_feedback(run_id)

    def _stop_receiving(self) -> None:
        """From now on LangChain does not call this handler; runs still in flight are given up (and counted)."""
        for switch in ("ignore_llm", "ignore_chat_model", "ignore_chain", "ignore_retriever", "ignore_agent"):
            setattr(self, switch, True)
        self._runs.drain()
        self._settle_due(self._clock(), everything=True)

    # Introspection --------------------------------------------------------------------------------------------------

    @property
    def runs_in_flight(self) -> int:
        """Runs started and not yet ended or expired (for health checks and tests)."""
        return len(self._runs)

    def expire_stale_runs(self) -> int:
        """Age out runs that never ended now instead of at the next start, and write finished roots whose LLM calls
        outlived the settle grace; returns how many runs were aged out."""
        expired = self._runs.sweep()
        self._settle_due(self._clock())
        return expired


def _pauses(error: BaseException) -> bool:
    """LangGraph's interrupt(): the graph stops and waits to be resumed (unlike `Command(graph=PARENT)` routing)."""
    return any(cls.__name__ == "GraphInterrupt" for cls in type(error).__mro__)


def _trace_id(run_id: UUID, parent_run_id: UUID | None) -> UUID:
    """A root's trace id is its own run id, unless it runs inside a LangSmith `@traceable` span."""
    if parent_run_id is None:
        return run_id
    trace_id = getattr(get_current_run_tree(), "trace_id", None)
    return trace_id if isinstance(trace_id, UUID) else run_id


def _run_name(serialized: Any, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if is_mapping(serialized):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ids = serialized.get("id")
        if ids and is_sequence(ids) and isinstance(ids[-1], str):
            return ids[-1]
    return default


def _first_generation(response: Any) -> Any:
    """The answer of an LLM call that is itself the root: its first generation's message, or text."""
    generations = getattr(response, "generations", None)
    if not generations or not generations[0]:
        return None
    generation = generations[0][0]
    return getattr(generation, "message", None) or getattr(generation, "text", None)
