"""Invocations written to the store in batches from a background thread, so a callback only appends to a queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..config import StoreConfig
from ..core.records import InvocationRecord
from ..core.text import describe_error
from ..telemetry.logs import default_logger
from ..telemetry.metrics import MonitorMetrics
from ..workers import Worker

STORE_ERROR = "store_error"


class InvocationWriter(Worker[InvocationRecord]):
    """Collects finished invocations from any thread and writes them in batches of up to `batch_size`, waiting up to
    `flush_interval_seconds` after the first for more, so a busy service writes one transaction per interval.

    A full queue drops the record; a failing write drops its batch. Either is counted with its exact number
    (`llm_monitor_dropped_total{what="invocation"}`) and logged.
    """

    def __init__(
        self,
        write: Callable[[Sequence[InvocationRecord]], Any],
        *,
        metrics: MonitorMetrics,
        config: StoreConfig | None = None,
        logger: Any = None,
        exit_timeout: float = 5.0,
    ) -> None:
        config = config if config is not None else StoreConfig()
        super().__init__(
            name="llmmonitor-invocations",
            capacity=config.queue_size,
            batch_size=config.batch_size,
            linger=config.flush_interval_seconds,
            exit_timeout=exit_timeout,
        )
        self._write = write
        self._metrics = metrics
        self._log = logger if logger is not None else default_logger()

    def _work(self, batch: list[InvocationRecord]) -> None:
        if not batch:
            return
        try:
            self._write(batch)
        except Exception as error:  # noqa: BLE001 - a database hiccup must not kill the writer
            self._lost(len(batch), STORE_ERROR, error)

    def _dropped(self, count: int, reason: str) -> None:
        self._lost(count, reason, None)

    def _lost(self, count: int, reason: str, error: Exception | None) -> None:
        self._metrics.dropped("invocation", reason).inc(count)
        self._log.warning(
            "store_write_failed",
            what="invocations",
            reason=reason,
            lost=count,
            error=None if error is None else describe_error(error),
        )
