"""Per-run state shared by concurrent requests, bounded in age and count.

Every run the monitor sees gets a record keyed by its run id, removed on end or error. Runs that never end
(an abandoned stream, a killed task) would otherwise accumulate forever; the table ages them out and hands them back to the
caller so it can return their share of the in-flight gauge.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import islice
from typing import Any
from uuid import UUID

from ._extract import Usage

CHAIN, LLM, RETRIEVER, TOOL = "chain", "llm", "retriever", "tool"
_SWEEP_CHUNK = 256


class Trace:
    """What the monitor keeps about one root invocation while it runs."""

    __slots__ = (
        "run_id", "trace_id", "name", "started", "llm_calls", "usage", "cost_usd", "unpriced_calls",
        "sample", "inputs", "documents", "failed_steps", "request_id",
    )  # fmt: skip

    def __init__(self, run_id: UUID, trace_id: UUID, name: str, started: float) -> None:
        self.run_id = run_id
        self.trace_id = trace_id
        self.name = name
        self.started = started
        self.llm_calls = 0
        self.usage = Usage()
        self.cost_usd = 0.0
        self.unpriced_calls = 0
        # For the judge: the sampling decision (a SampleDecision, None = not sampled, False = opted out) and
        # references to what it would judge; turned into text only if the trace is evaluated.
        self.sample: Any = None
        self.inputs: Any = None
        self.documents: list[Any] = []
        self.failed_steps = 0
        self.request_id: str | None = None


class Run:
    """One run in flight: a chain step, an LLM call, a retriever or a tool."""

    __slots__ = ("kind", "started", "trace", "label", "first_token_at", "is_root")

    def __init__(self, kind: str, started: float, trace: Trace, label: str, is_root: bool) -> None:
        self.kind = kind
        self.started = started
        self.trace = trace
        self.label = label
        self.first_token_at: float | None = None
        self.is_root = is_root


class RunTable:
    """Run records by id, with a sweep that expires the oldest when they are too old or too many."""

    def __init__(
        self, *, max_age_seconds: float, max_runs: int, on_expired: Callable[[UUID, Run, float], Any], clock: Callable[[], float] = time.perf_counter
    ) -> None:
        if max_age_seconds <= 0:
            raise ValueError(f"max_age_seconds must be > 0, got {max_age_seconds!r}")
        if max_runs < 1:
            raise ValueError(f"max_runs must be >= 1, got {max_runs!r}")
        self._runs: dict[Any, Run] = {}
        self._lock = threading.Lock()
        self._max_age = max_age_seconds
        self._max_runs = max_runs
        self._sweep_every = min(max_age_seconds / 4, 5.0)
        self._next_sweep = clock() + self._sweep_every
        self._on_expired = on_expired
        self._clock = clock

    # get/add/pop are single dictionary operations, atomic under the GIL: the hot path takes no lock. Only sweeps,
    # which must not run twice at once, take one.

    def get(self, run_id: Any) -> Run | None:
        return self._runs.get(run_id)

    def add(self, run_id: Any, run: Run) -> None:
        """Track `run`; a record already under `run_id` (a reused id) is handed back as expired."""
        existing = self._runs.setdefault(run_id, run)
        if existing is not run:
            self._runs[run_id] = run
            self._on_expired(run_id, existing, run.started - existing.started)
        if run.started >= self._next_sweep or len(self._runs) > self._max_runs:
            self._sweep(run.started)

    def pop(self, run_id: Any) -> Run | None:
        return self._runs.pop(run_id, None)

    def sweep(self) -> int:
        """Expire what is due now; returns how many runs were expired."""
        return self._sweep(self._clock())

    def _sweep(self, now: float) -> int:
        with self._lock:
            self._next_sweep = now + self._sweep_every
            expired = self._collect_expired(now)
        for run_id, run in expired:
            self._on_expired(run_id, run, now - run.started)
        return len(expired)

    def _collect_expired(self, now: float) -> list[tuple[Any, Run]]:
        deadline = now - self._max_age
        excess = len(self._runs) - self._max_runs
        if excess > 0:  # evict with some slack, so that a full table is not swept again on every start
            excess += self._max_runs // 10
        expired: list[tuple[Any, Run]] = []
        while True:
            # Insertion order is start order: the oldest runs are at the front. Copying a slice of the items is one C
            # call that runs no Python code, so no other thread can change the dictionary halfway through it.
            oldest = list(islice(self._runs.items(), _SWEEP_CHUNK))
            for run_id, run in oldest:
                if run.started > deadline and excess <= 0:
                    return expired
                if self._runs.pop(run_id, None) is run:  # it may have ended meanwhile
                    expired.append((run_id, run))
                    excess -= 1
            if len(oldest) < _SWEEP_CHUNK:
                return expired

    def __len__(self) -> int:
        return len(self._runs)
