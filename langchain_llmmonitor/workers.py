"""One lifecycle for every background worker: start on first use, flush, close, drain at exit, restart after fork.

The store writer, the judge pool and the LangSmith forwarder are all `Worker`s, so they behave alike:

- **start**: threads start with the first submitted item, or with `start()` for a worker that polls (the forwarder,
  and the judge pool claiming jobs from a store), never at construction: an idle Monitor without a store costs no
  thread.
- **submit**: never blocks. An item that cannot be taken (queue full, worker closed, refused by the subclass) is
  reported to `_refused(item, reason)` (by default `_dropped(1, reason)`), and `submit` returns False.
- **flush(timeout)**: waits until everything accepted so far is done.
- **close(timeout)**: idempotent and thread safe. Stops accepting, drains up to `timeout`, stops the threads; what is
  still queued is reported as dropped (`shutdown`).
- **exit**: a started worker that was not closed is closed at interpreter exit.
- **fork**: in a forked child the parent's threads do not exist and its locks may be held forever. The child gets fresh
  locks and an empty queue (what was queued is the parent's to finish) and starts its threads again on next use, or
  at once for a worker that was started explicitly (the forwarder).

Threads hold their worker only weakly while they wait, so an abandoned worker is garbage collected and its idle
threads exit at their next idle check.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")

QUEUE_FULL = "queue_full"
SHUTDOWN = "shutdown"
_STOP_GRACE_SECONDS = 0.2
IDLE_CHECK_SECONDS = 30.0
"""How long an idle thread waits before it checks that its worker still exists."""


class _Board(Generic[Item]):
    """What a worker's threads share with it and may hold strongly: the lock, the queue and the counts."""

    def __init__(self, capacity: int | None, *, closed: bool = False) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # an item arrived, a flush hurries, or stop
        self.idle = threading.Condition(self.lock)  # nothing queued and nothing in flight
        self.halt = threading.Condition(self.lock)  # the threads must stop
        self.items: deque[Item] = deque()
        self.capacity = capacity
        self.in_flight = 0
        self.hurry = 0  # flushes waiting: no lingering for a fuller batch
        self.closed = closed  # no new items
        self.stopping = False  # threads exit

    def take(self, size: int, wait: float, linger: float) -> list[Item] | None:
        """Up to `size` items, now in flight: [] when none came within `wait`, None when the threads must stop.

        With `linger`, a first item waits up to that long for more, so that a batch is written in one transaction.
        """
        with self.lock:
            if not self.items and not self.stopping:
                self.wake.wait(wait)
            if self.stopping:
                return None
            if linger > 0 and 0 < len(self.items) < size:
                deadline = time.monotonic() + linger
                while len(self.items) < size and not (self.hurry or self.stopping):
                    left = deadline - time.monotonic()
                    if left <= 0 or not self.wake.wait(left):
                        break
            batch = [self.items.popleft() for _ in range(min(size, len(self.items)))]
            self.in_flight += 1
            return batch

    def done(self) -> None:
        with self.lock:
            self.in_flight -= 1
            if not self.items and not self.in_flight:
                self.idle.notify_all()

    def stop(self) -> list[Item]:
        """Stop the threads and discard what is still queued; returns the discarded items."""
        with self.lock:
            self.closed = self.stopping = True
            discarded = list(self.items)
            self.items.clear()
            self.wake.notify_all()
            self.halt.notify_all()
            if not self.in_flight:
                self.idle.notify_all()
            return discarded


class Worker(Generic[Item]):
    """Daemon threads that do one owner's background work, with the lifecycle described in the module docstring.

    Subclasses implement `_work(batch)` and may override the hooks `_dropped`, `_refused`, `_discarded`,
    `_admit_locked`, `_accepted_locked`, `_drain`, `_release` and `_reset_after_fork`.
    """

    def __init__(
        self,
        *,
        name: str,
        threads: int = 1,
        capacity: int | None = None,
        batch_size: int = 1,
        linger: float = 0.0,
        idle_wait: float | None = None,
        exit_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self._thread_count = threads
        self._batch_size = batch_size
        self._linger = linger
        self._idle_wait = IDLE_CHECK_SECONDS if idle_wait is None else idle_wait
        self._exit_timeout = exit_timeout
        self._board: _Board[Item] = _Board(capacity)
        self._threads: list[threading.Thread] = []
        self._started_explicitly = False
        self._hooked = False
        self._close_lock = threading.Lock()
        self._close_result: bool | None = None
        self._exit_hook = functools.partial(_close_at_exit, weakref.ref(self))

    # What subclasses implement -----------------------------------------------------------------------------------

    def _work(self, batch: list[Item]) -> float | None:
        """Process `batch` (empty when the wait for items ran out); returns how long to wait for the next items,
        None for the default. Exceptions are passed to `_work_failed`; the thread goes on."""
        raise NotImplementedError

    def _work_failed(self, error: Exception) -> None:
        """`_work` raised: subclasses count it; the thread goes on regardless."""

    def _dropped(self, count: int, reason: str) -> None:
        """`count` items were not taken or not done (`reason`): subclasses count and log them."""

    def _refused(self, item: Item, reason: str) -> None:
        """`submit` did not take `item` (`reason`)."""
        self._dropped(1, reason)

    def _discarded(self, items: list[Item]) -> None:
        """`items` were still queued when the worker closed."""
        self._dropped(len(items), SHUTDOWN)

    def _admit_locked(self, item: Item) -> str | None:
        """A reason to refuse `item` (e.g. a budget), checked under the lock before the capacity; None accepts."""
        return None

    def _accepted_locked(self, item: Item) -> None:
        """`item` was queued (under the lock)."""

    def _drain(self, timeout: float) -> bool:
        """At close: finish the accepted work within `timeout`; True when all of it was done."""
        return self.flush(timeout)

    def _release(self) -> None:
        """After close: release what the worker holds (connections, clients)."""

    def _reset_after_fork(self) -> None:
        """In a forked child: replace the subclass's own locks and per-process resources."""

    # The lifecycle --------------------------------------------------------------------------------------------------

    def submit(self, item: Item) -> bool:
        """Queue one item; never blocks. False (and reported to `_refused`) when it was not taken."""
        board = self._board
        new_threads: list[threading.Thread] = []
        with board.lock:
            if board.closed:
                reason: str | None = SHUTDOWN
            else:
                reason = self._admit_locked(item)
                if reason is None and board.capacity is not None and len(board.items) >= board.capacity:
                    reason = QUEUE_FULL
            if reason is None:
                board.items.append(item)
                self._accepted_locked(item)
                board.wake.notify()
                if len(self._threads) < self._thread_count:
                    new_threads = self._new_threads_locked()
        if new_threads:
            self._start(new_threads)
        if reason is not None:
            self._refused(item, reason)
            return False
        return True

    def start(self) -> None:
        """Start the threads now (for a worker that polls rather than waits for items); idempotent."""
        self._started_explicitly = True
        with self._board.lock:
            new_threads = [] if self._board.closed else self._new_threads_locked()
        self._start(new_threads)

    @property
    def pending(self) -> int:
        """Items queued or in progress."""
        board = self._board
        with board.lock:
            return len(board.items) + board.in_flight

    @property
    def closed(self) -> bool:
        return self._board.closed

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything accepted so far is done; True when it was within `timeout`."""
        board = self._board
        with board.lock:
            board.hurry += 1
            board.wake.notify_all()
            try:
                return board.idle.wait_for(lambda: not board.items and not board.in_flight, timeout)
            finally:
                board.hurry -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting, finish what was accepted within `timeout`, stop the threads; True when all of that happened
        in time.

        Idempotent: a second call waits for the first and returns its result.
        """
        with self._close_lock:
            if self._close_result is not None:
                return self._close_result
            timeout = self._exit_timeout if timeout is None else timeout
            deadline = time.monotonic() + timeout
            with self._board.lock:
                self._board.closed = True
                threads = list(self._threads)
            drained = self._drain(timeout)
            discarded = self._board.stop()
            if discarded:
                self._discarded(discarded)
            for thread in threads:
                if thread.ident is not None:  # started (a concurrent submit may have made it a moment ago)
                    # a thread the stop woke from a backoff gets a moment to record what it gives up
                    thread.join(max(_STOP_GRACE_SECONDS, deadline - time.monotonic()))
            stopped = not any(thread.is_alive() for thread in threads)
            atexit.unregister(self._exit_hook)
            self._release()
            self._close_result = drained and not discarded and stopped
            return self._close_result

    def _wait_unless_stopping(self, seconds: float) -> bool:
        """In a worker thread: sleep up to `seconds` (a backoff), waking early only when the worker stops; True then."""
        board = self._board
        with board.lock:
            if not board.stopping:
                board.halt.wait(seconds)
            return board.stopping

    # Threads, exit and fork ----------------------------------------------------------------------------------------

    def _new_threads_locked(self) -> list[threading.Thread]:
        ref = weakref.ref(self)
        args = (self._board, ref, self._batch_size, self._idle_wait, self._linger)
        new = [
            threading.Thread(target=_serve, args=args, name=f"{self.name}-{index}", daemon=True)
            for index in range(len(self._threads), self._thread_count)
        ]
        self._threads.extend(new)
        if new and not self._hooked:  # only a worker that ever ran needs draining at exit or resetting after fork
            self._hooked = True
            atexit.register(self._exit_hook)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=functools.partial(_after_fork, ref))
        return new

    def _start(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            try:
                thread.start()
            except RuntimeError:  # no new threads at interpreter shutdown, or the OS refused: retry on next use
                with self._board.lock:
                    self._threads.remove(thread)

    def _after_fork_in_child(self) -> None:
        parent = self._board
        self._board = _Board(parent.capacity, closed=parent.closed)
        self._threads = []
        self._close_lock = threading.Lock()
        self._reset_after_fork()
        if self._started_explicitly and not parent.closed:
            self.start()


def _serve(board: _Board[Any], ref: weakref.ReferenceType[Worker[Any]], size: int, idle: float, linger: float) -> None:
    """A worker thread: waits holding only the board, and holds the worker only while it works."""
    wait: float | None = idle
    while (batch := board.take(size, idle if wait is None else wait, linger)) is not None:
        try:
            worker = ref()
            if worker is None:  # abandoned: nobody can flush or close it any more
                return
            try:
                wait = worker._work(batch)
            except Exception as error:  # noqa: BLE001 - a worker thread outlives any failure of its work
                wait = None
                worker._work_failed(error)
            finally:
                worker = None
        finally:
            board.done()


def _close_at_exit(ref: weakref.ReferenceType[Worker[Any]]) -> None:
    worker = ref()
    if worker is not None:
        worker.close()


def _after_fork(ref: weakref.ReferenceType[Worker[Any]]) -> None:
    worker = ref()
    if worker is not None:
        worker._after_fork_in_child()
