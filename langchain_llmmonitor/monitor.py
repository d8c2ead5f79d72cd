"""`Monitor`: the one object an application adds, `callbacks=[Monitor()]`.

This is the composition root: it builds the callback handler and the background workers it feeds (judge pool,
store writer, LangSmith forwarder) from one `MonitorConfig`, offers users' feedback, and owns the lifecycle
(`flush`, `close`, `with Monitor() as monitor:`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prometheus_client import CollectorRegistry

from .config import MonitorConfig
from .core.judging import Judge
from .core.records import RunRef, UserFeedbackRecord
from .handler import CallbackHandler
from .pricing import PriceTable
from .quality import QualityPipeline
from .quality.judges import default_judge
from .telemetry.logs import default_logger
from .telemetry.metrics import MonitorMetrics, SegmentLabels, metrics_for
from .telemetry.snapshot import MetricsSnapshot, read_snapshot

if TYPE_CHECKING:
    from .feedback import FeedbackRecorder, FeedbackTokens
    from .langsmith import Forwarder
    from .storage.store import Store
    from .storage.writer import StoreWriter


class Monitor(CallbackHandler):
    """Production monitoring for any LangChain runnable: `chain.invoke(x, config={"callbacks": [Monitor()]})`.

    One instance can be shared by every request of an application, from threads and from asyncio tasks. After
    `close()` (or the end of a `with` block) LangChain no longer calls it, and runs still in flight are given up and
    counted (`llm_monitor_runs_evicted_total{reason="closed"}`).
    """

    def __init__(
        self,
        config: MonitorConfig | None = None,
        *,
        registry: CollectorRegistry | None = None,
        logger: Any = None,
        judge: Judge | None = None,
        sample_rate: float | None = None,
        store: Store | str | Path | None = None,
        langsmith_client: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """
        Args:
            config: every setting (`MonitorConfig`); the keyword shortcuts below win over it.
            registry: where the metrics live; a fresh registry by default so monitors never collide. Pass
                `prometheus_client.REGISTRY` to expose them with the process's default collectors.
            logger: a structlog logger; by default `structlog.get_logger("langchain_llmmonitor")`, which follows the
                application's structlog configuration.
            judge: scores sampled traces; by default OpenAI's gpt-4o-mini when `OPENAI_API_KEY` is set, else the
                offline judge.
            sample_rate: share of traces judged (`config.sampling.rate`).
            store: a `Store`, or a SQLite path or SQLAlchemy URL (`config.store.url`): invocations, judge scores and
                user feedback are written there from background threads, and its outbox forwards scores and feedback
                to LangSmith. Without one, scores reach only metrics and logs.
            langsmith_client: a `langsmith.Client(auto_batch_tracing=False)` for feedback; by default one is built from
                the LANGSMITH_* environment when there is something to send.
            clock: a monotonic clock in seconds (tests pass a fake one).
        """
        store_url = store if isinstance(store, (str, Path)) else None
        config = (config if config is not None else MonitorConfig()).with_shortcuts(
            sample_rate=sample_rate, store_url=store_url
        )
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        segments = config.segments
        metrics = metrics_for(self.registry, SegmentLabels(segments.metric_labels, segments.max_label_values))
        self.prices = config.prices if config.prices is not None else PriceTable.default()
        metrics.prices(self.prices.version).set(1)  # "prices as of" on a dashboard
        self._judge = judge if judge is not None else default_judge(self.prices)
        self._langsmith_client = langsmith_client
        self._owns_store = store is None or store_url is not None
        self.store: Store | None = store if store_url is None and store is not None else _open(config)
        if self.store is None and not config.judge.in_process:
            raise ValueError("judge.in_process=False leaves jobs for `llmmonitor worker`, which needs a store")
        forward = self._forwarding()
        if self.store is not None:
            self.store.outbox = forward if config.store.outbox is None else config.store.outbox
            self.store.gauges.register(self.registry)
        self.judging_in_process = config.judge.in_process
        """False: sampled traces are only stored as jobs, for `llmmonitor worker` processes to judge."""
        self._quality = QualityPipeline(
            self._judge,
            metrics=metrics,
            config=config.judge,
            logger=logger,
            store=self.store,
            jobs=self.store if self.judging_in_process else None,
            exit_timeout=config.shutdown_timeout_seconds,
        )
        self._writer = self._store_writer(metrics, logger)
        super().__init__(
            config=config,
            metrics=metrics,
            logger=logger if logger is not None else default_logger(),
            prices=self.prices,
            clock=clock,
            evaluations=self._writer if self._writer is not None else self._quality,
            invocations=self._writer,
        )
        self.feedback_tokens = _feedback_tokens(config)
        self._feedback: FeedbackRecorder | None = None
        self.forwarder = self._start_forwarder(logger) if forward else None
        if self.store is not None and self.judging_in_process:
            self._quality.start()  # jobs a previous process left in the store are judged now, not at the next trace
        self._close_result: bool | None = None

    def _store_writer(self, metrics: MonitorMetrics, logger: Any) -> StoreWriter | None:
        if self.store is None:
            return None
        from .storage.writer import StoreWriter

        return StoreWriter(
            self.store,
            metrics=metrics,
            config=self.config.store,
            logger=logger,
            exit_timeout=self.config.shutdown_timeout_seconds,
            jobs_written=self._quality.wake if self.judging_in_process else None,
            fulfil=self._fulfil_judgement_requests,
        )

    def _forwarding(self) -> bool:
        """Whether this process delivers the store's outbox to LangSmith."""
        forward = self.config.langsmith.forward
        if forward and self.store is None:
            raise ValueError("LangSmith forwarding needs a store: feedback is written there first (Monitor(store=...))")
        if forward is None:
            key_set = bool(os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY"))
            forward = self.store is not None and (self._langsmith_client is not None or key_set)
        return bool(forward)

    def _start_forwarder(self, logger: Any) -> Forwarder:
        from .langsmith import Forwarder

        forwarder = Forwarder(
            self.store,  # type: ignore[arg-type]
            client=self._langsmith_client,
            config=self.config.langsmith,
            registry=self.registry,
            logger=logger,
        )
        forwarder.start()
        return forwarder

    @property
    def judge(self) -> Judge:
        """The judge of sampled traces (fixed at construction: build another Monitor to change it)."""
        return self._judge

    def snapshot(self) -> MetricsSnapshot:
        """This monitor's metrics now, as numbers read from its registry (no scrape, no parsing): call counts, error
        rates, latency percentiles (estimated from the buckets), tokens, cost, judge scores, feedback and drops. A
        table in Jupyter."""
        return read_snapshot(self.registry)

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
        return self.feedback_recorder.record(
            run_or_request_id, score=score, comment=comment, source=source, feedback_id=feedback_id
        )

    def feedback_token(self, run_id: str | UUID) -> str:
        """A signed, expiring token that lets whoever received this run's answer rate it (needs a feedback secret)."""
        if self.feedback_tokens is None:
            raise RuntimeError("feedback tokens need a secret: MonitorConfig(feedback=FeedbackConfig(secret=...))")
        return self.feedback_tokens.issue(run_id)

    @property
    def feedback_recorder(self) -> FeedbackRecorder:
        """What `feedback()` and the feedback API (`feedback.create_app`) record through."""
        if self._feedback is None:
            if self.store is None:
                raise RuntimeError("user feedback is stored before it is sent anywhere: Monitor(store='llmmonitor.db')")
            from .feedback import FeedbackRecorder

            self._feedback = FeedbackRecorder(
                self.store,
                config=self.config.feedback,
                registry=self.registry,
                logger=self._log,
                resolve=self._recent_run,
                on_negative=self._judge_rated_down,
                langsmith_client=self._langsmith_client,
            )
        return self._feedback

    def _judge_rated_down(self, ref: RunRef) -> None:
        """A thumbs-down forces a judgement: here when this process holds the trace, else by whichever process on
        the store does (under `uvicorn --workers N` the rating often reaches another process than the answer)."""
        if not self._judge_after_negative_feedback(ref.run_id) and self.store is not None:
            self.store.request_judgement(ref.run_id, ref.trace_id, request_id=ref.request_id, project=ref.project)

    # Lifecycle ------------------------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until queued evaluations are judged and recorded and invocations are stored (and, when forwarding,
        the outbox delivered); True when all of it drained in time."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        drained = self._writer is None or self._writer.flush(remaining())  # first: the jobs reach the store
        drained = self._quality.flush(remaining()) and drained
        if self.forwarder is not None:
            drained = self.forwarder.flush(remaining()) and drained
        return drained

    def close(self, timeout: float | None = None) -> bool:
        """Stop monitoring: callbacks do nothing from now on, what is queued for the store is written and the
        evaluations in progress finish (up to `timeout` each, `config.shutdown_timeout_seconds` by default), and the
        workers stop. With a store, jobs not yet judged stay there for the next process (their number is logged);
        without one, queued evaluations are judged within the timeout. Idempotent; also done at interpreter exit.
        True when everything queued was finished or stored."""
        if self._close_result is not None:
            return self._close_result
        self._stop_receiving()
        drained = self._writer is None or self._writer.close(timeout)  # first: the last jobs reach the store
        drained = self._quality.close(timeout) and drained
        if self.forwarder is not None:
            drained = self.forwarder.close(timeout) and drained
        if self._owns_store and self.store is not None:
            self.store.close()
        self._close_result = drained
        return drained

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _open(config: MonitorConfig) -> Store | None:
    if config.store.url is None:
        return None
    from .storage import open_store

    return open_store(config.store.url)


def _feedback_tokens(config: MonitorConfig) -> FeedbackTokens | None:
    if config.feedback.secret is None:
        return None
    from .feedback import FeedbackTokens

    return FeedbackTokens(config.feedback.secret, ttl=timedelta(seconds=config.feedback.token_ttl_seconds))
