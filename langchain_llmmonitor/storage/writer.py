"""Invocations and judge jobs written to the store in batches from a background thread, so a callback only appends
to a queue, and held through a database outage instead of lost.

- **Outage** (the database unreachable, locked or full: `store.is_outage`): the batch is retried with backoff until it
  is stored, while new rows wait in the queue. The queue is the bound (`StoreConfig.queue_size` rows): only rows
  beyond it are dropped, each counted and logged with its exact number.
- **A bad row** (the statement itself failed): the batch is split until the row is alone, so it loses only itself.
  Text is made storable before every write, so this is rare.
- **Judgement requests**: a user's thumbs-down that reached another process leaves a request in the store; this
  writer looks for requests every few seconds and hands those about runs this process remembers to `fulfil`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..config import StoreConfig
from ..core.judging import scrubbed
from ..core.records import EvaluationJob, InvocationRecord
from ..core.text import describe_error
from ..telemetry.logs import default_logger
from ..telemetry.metrics import MonitorMetrics
from ..workers import SHUTDOWN, Worker
from .store import Store, is_outage

BAD_ROW = "bad_row"
_FIRST_RETRY_S, _MAX_RETRY_S = 0.05, 2.0
_REQUESTS_EVERY_S = 2.0
_DROPS_LOGGED_EVERY_S = 1.0

StoreWrite = InvocationRecord | EvaluationJob


def _scrubbed(item: StoreWrite) -> StoreWrite:
    """A job's captured text without credentials: it is stored, judged, and may be quoted by the judge's reason."""
    return replace(item, item=scrubbed(item.item)) if isinstance(item, EvaluationJob) else item


def _kind(item: StoreWrite) -> str:
    return "invocation" if isinstance(item, InvocationRecord) else "judge_job"


class StoreWriter(Worker[StoreWrite]):
    """Collects finished invocations and the judge jobs of sampled traces from any thread and writes them in batches
    of up to `batch_size`, waiting up to `flush_interval_seconds` after the first for more, so a busy service writes
    one transaction per interval, and a job lands in the same transaction as its invocation.
    """

    def __init__(
        self,
        store: Store,
        *,
        metrics: MonitorMetrics,
        config: StoreConfig | None = None,
        logger: Any = None,
        exit_timeout: float = 5.0,
        jobs_written: Callable[[], None] | None = None,
        fulfil: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        """
        Args:
            jobs_written: called after judge jobs were stored (wakes this process's judge workers).
            fulfil: given run ids whose judgement a user asked for in another process; it submits the jobs of the
                ones this process remembers.
        """
        config = config if config is not None else StoreConfig()
        super().__init__(
            name="llmmonitor-writer",
            capacity=config.queue_size,
            batch_size=config.batch_size,
            linger=config.flush_interval_seconds,
            idle_wait=_REQUESTS_EVERY_S if fulfil is not None else None,
            exit_timeout=exit_timeout,
        )
        self._store = store
        self._metrics = metrics
        self._log = logger if logger is not None else default_logger()
        self._jobs_written = jobs_written
        self._fulfil = fulfil
        self._requests_due = 0.0
        self._tally_lock = threading.Lock()
        self._unlogged: Counter[tuple[str, str]] = Counter()
        self._errors: dict[tuple[str, str], str] = {}  # the last error behind each (what, reason) not yet logged
        self._logged_at = 0.0
        self._outage_since: float | None = None

    # The thread --------------------------------------------------------------------------------------------------

    def _work(self, batch: list[StoreWrite]) -> None:
        if batch:
            self._store_batch(batch)
        if self._fulfil is not None and time.monotonic() >= self._requests_due:
            self._answer_requests()
        self._log_drops()

    def _store_batch(self, batch: list[StoreWrite]) -> None:
        """Write the batch, waiting out an outage with backoff; give up only when the writer stops."""
        batch = [_scrubbed(item) for item in batch]  # once, not at every retry or split
        delay = _FIRST_RETRY_S
        while True:
            try:
                self._write_splitting(batch)
            except Exception as error:  # noqa: BLE001 - only outages come here (see _write_splitting)
                self._outage(error, len(batch))
                self._log_drops()
                if self._wait_unless_stopping(delay):
                    self._lose(batch, SHUTDOWN, error)
                    self._log_drops(force=True)
                    return
                delay = min(delay * 2, _MAX_RETRY_S)
                continue
            break
        if self._outage_since is not None:
            self._log.info("store_available", outage_s=round(time.monotonic() - self._outage_since, 3))
            self._outage_since = None
        if self._jobs_written is not None and any(isinstance(item, EvaluationJob) for item in batch):
            self._jobs_written()

    def _write_splitting(self, batch: list[StoreWrite]) -> None:
        """One transaction for the batch; when a row makes it fail, halves until that row alone is lost."""
        try:
            invocations = [item for item in batch if isinstance(item, InvocationRecord)]
            self._store.add_invocations(invocations, [item for item in batch if isinstance(item, EvaluationJob)])
        except Exception as error:
            if is_outage(error):
                raise
            if len(batch) == 1:
                self._lose(batch, BAD_ROW, error)
                return
            middle = len(batch) // 2
            self._write_splitting(batch[:middle])
            self._write_splitting(batch[middle:])

    def _outage(self, error: Exception, rows: int) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._log.warning("store_unavailable", holding=rows + len(self._board.items), error=describe_error(error))

    def _answer_requests(self) -> None:
        self._requests_due = time.monotonic() + _REQUESTS_EVERY_S
        try:
            requested = self._store.requested_runs()
        except Exception:  # noqa: BLE001 - the store is away: the requests wait for the next look
            return
        if requested:
            self._fulfil(requested)  # type: ignore[misc]

    # Losses: counted at once, logged at most once a second with their exact numbers -----------------------------

    def _refused(self, item: StoreWrite, reason: str) -> None:
        self._lose([item], reason, None)

    def _discarded(self, items: list[StoreWrite]) -> None:
        self._lose(items, SHUTDOWN, None)
        self._log_drops(force=True)

    def _release(self) -> None:
        self._log_drops(force=True)

    def _lose(self, items: Sequence[StoreWrite], reason: str, error: Exception | None) -> None:
        lost = Counter(_kind(item) for item in items)
        for kind, count in lost.items():
            if kind == "invocation":
                self._metrics.dropped("invocation", reason).inc(count)
            else:
                self._metrics.judge_dropped(reason).inc(count)
        with self._tally_lock:  # counted now, logged by the writer thread (never from a callback)
            for kind, count in lost.items():
                self._unlogged[kind, reason] += count
                if error is not None:
                    self._errors[kind, reason] = describe_error(error)

    def _log_drops(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._tally_lock:
            if not self._unlogged or (not force and now - self._logged_at < _DROPS_LOGGED_EVERY_S):
                return
            unlogged, self._unlogged = self._unlogged, Counter()
            errors, self._errors = self._errors, {}
            self._logged_at = now
        for (kind, reason), count in sorted(unlogged.items()):
            error = errors.get((kind, reason))
            self._log.warning("store_rows_dropped", what=kind, reason=reason, lost=count, error=error)
