"""Batched writes to the store from a background thread, so a callback only ever appends to a queue."""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class BatchWriter(Generic[Item]):
    """Collects items from any thread and hands them to `write` in batches, off the caller's path.

    A full queue drops the item and reports it (`on_drop`); a failing `write` is reported (`on_error`) and its batch is
    dropped rather than retried forever. The thread starts with the first item and drains at interpreter exit.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Any],
        *,
        name: str,
        on_drop: Callable[[], Any],
        on_error: Callable[[Exception, int], Any],
        queue_size: int = 10_000,
        max_batch: int = 500,
        interval: float = 0.5,
    ) -> None:
        self._write = write
        self._name = name
        self._on_drop = on_drop
        self._on_error = on_error
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self._max_batch = max_batch
        self._interval = interval
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, item: Item) -> bool:
        """Queue one item; never blocks. False when it was dropped."""
        if self._closed:
            self._on_drop()
            return False
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._on_drop()
            return False
        return True

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=_run, args=(weakref.ref(self),), name=self._name, daemon=True)
                self._thread.start()
                atexit.register(_close_at_exit, weakref.ref(self))

    def _drain(self, block: bool) -> bool:
        """Write one batch; False when there was nothing to write."""
        try:
            first = self._queue.get(timeout=self._interval) if block else self._queue.get_nowait()
        except queue.Empty:
            return False
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        try:
            self._write(batch)
        except Exception as error:  # noqa: BLE001 - a database hiccup must not kill the writer
            self._on_error(error, len(batch))
        finally:
            for _ in batch:
                self._queue.task_done()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written; True when it was within `timeout`."""
        if self._thread is None:
            return True
        pending = self._queue
        with pending.all_tasks_done:  # the condition `Queue.join` waits on, here with a timeout
            return pending.all_tasks_done.wait_for(lambda: pending.unfinished_tasks == 0, timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued, then stop; later submits are dropped."""
        drained = self.flush(timeout)
        self._closed = True
        return drained


def _run(ref: weakref.ReferenceType[BatchWriter[Any]]) -> None:
    while True:
        writer = ref()
        if writer is None or (writer._closed and writer._queue.empty()):
            return
        writer._drain(block=True)
        del writer


def _close_at_exit(ref: weakref.ReferenceType[BatchWriter[Any]]) -> None:
    writer = ref()
    if writer is not None:
        writer.close(timeout=5.0)
