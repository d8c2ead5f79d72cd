"""Per-run state shared by concurrent requests, bounded in age and count.

Only what the metrics need is tracked: each root (a `Trace`) and each LLM, retriever and tool call (a `Run`). A nested
chain step (a prompt, a parser, a branch of a parallel) is only a link to its trace: its table entry is the `Trace`
itself, so it costs one dictionary entry and no clock read.

Runs that never end (an abandoned stream, a killed task) would otherwise accumulate forever; the table ages them out
and hands them back to the caller so it can return their share of the in-flight gauge. Runs forgotten for another
reason (the table is full, the monitor closed) are handed back with that reason, so they are counted apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import islice
from typing import Any
from uuid import UUID

from ..core.usage import Usage

CHAIN, LLM, RETRIEVER, TOOL = "chain", "llm", "retriever", "tool"
AGE, CAPACITY, CLOSED = "age", "capacity", "closed"
_SWEEP_CHUNK = 256


class Trace:
    """What the monitor keeps about one root invocation while it runs.

    It is also the table entry of each nested chain step of the trace, which is why it answers like a `Run` of kind
    chain that is not the root.
    """

    kind = CHAIN
    is_root = False
    label = ""

    __slots__ = (
        "cost_usd",
        "documents",
        "failed_llm_calls",
        "failed_steps",
        "finish",
        "inputs",
        "llm_calls",
        "model",
        "name",
        "open_llm_runs",
        "paused",
        "request_id",
        "run_id",
        "sample",
        "segments",
        "started",
        "trace_id",
        "unpriced_calls",
        "usage",
    )  # fmt: skip

    def __init__(self, run_id: UUID, trace_id: UUID, name: str, started: float) -> None:
        self.run_id = run_id
        self.trace_id = trace_id
        self.name = name
        self.started = started
        self.llm_calls = 0  # every call, whatever its outcome
        self.failed_llm_calls = 0
        self.open_llm_runs: set[int] = set()  # keys of the trace's LLM calls still in flight
        self.finish: Any = None  # the root's outcome, held while its LLM calls settle (handler.callbacks.Finish)
        self.usage = Usage()
        self.cost_usd = 0.0
        self.unpriced_calls = 0
        # For the judge: the sampling decision (a SampleDecision, None = not sampled, False = opted out) and
        # references to what it would judge; turned into text only if the trace is evaluated.
        self.sample: Any = None
        self.inputs: Any = None
        self.documents: list[Any] = []
        self.failed_steps = 0
        self.paused = False  # a step called LangGraph's interrupt(): the root returns normally, waiting for a human
        self.request_id: str | None = None
        self.segments: dict[str, str] | None = None  # declared in the root's metadata or tags (core.segments)
        self.model: str | None = None  # of the latest LLM call

    @property
    def trace(self) -> Trace:
        return self


class Run:
    """One root, LLM call, retriever or tool in flight."""

    __slots__ = ("first_token_at", "is_root", "kind", "label", "provider", "started", "trace", "watch")

    def __init__(self, kind: str, started: float, trace: Trace, label: str, is_root: bool) -> None:
        self.kind = kind
        self.started = started
        self.trace = trace
        self.label = label
        self.first_token_at: float | None = None
        self.is_root = is_root
        self.provider: str | None = None  # LangChain's `ls_provider` of an LLM call, for its price
        self.watch: Any = None  # (asyncio task, its done callback) of an LLM call made from a task


Entry = Run | Trace
Forget = Callable[[int, Entry, float, str], Any]  # (key, entry, age in seconds, reason)


class RunTable:
    """Entries by run id, with a sweep that forgets the oldest when they are too old or too many.

    Keys are the run ids' 128-bit integers (`run_id.int`): hashing an int is a C call, hashing a UUID a Python one,
    and a table lookup happens some thirty times per invocation.
    """

    def __init__(
        self,
        *,
        max_age_seconds: float,
        max_runs: int,
        on_forget: Forget,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._runs: dict[int, Entry] = {}
        # Lookups, insertions and removals are single dict operations, atomic under the GIL: the hot path takes no
        # lock (only sweeps, which must not run twice at once, take one). `get` and `pop` are the dict's own, so a
        # call costs no Python frame; `pop(key, None)` as for a dict.
        self.get: Callable[[int], Entry | None] = self._runs.get
        self.pop: Callable[[int, None], Entry | None] = self._runs.pop
        self._lock = threading.Lock()
        self._max_age = max_age_seconds
        self._max_runs = max_runs
        self._sweep_every = min(max_age_seconds / 4, 5.0)
        self._next_sweep = clock() + self._sweep_every
        self._on_forget = on_forget
        self._clock = clock

    def add(self, key: int, run: Run) -> None:
        """Track `run`; an entry already under `key` (a reused run id) is handed back as expired."""
        existing = self._runs.setdefault(key, run)
        if existing is not run:
            self._replace(key, run, existing, run.started)
        if run.started >= self._next_sweep or len(self._runs) > self._max_runs:
            self._sweep(run.started)

    def link(self, key: int, trace: Trace) -> None:
        """Track a nested chain step of `trace` (swept with the rest, and held to the count bound like a run)."""
        existing = self._runs.setdefault(key, trace)
        if existing is not trace:
            self._replace(key, trace, existing, self._clock())
        if len(self._runs) > self._max_runs:
            self._sweep(self._clock())

    def _replace(self, key: int, entry: Entry, existing: Entry, now: float) -> None:
        self._runs[key] = entry
        self._on_forget(key, existing, now - existing.started, AGE)

    def sweep(self) -> int:
        """Forget what is due now; returns how many entries were forgotten."""
        return self._sweep(self._clock())

    def drain(self) -> int:
        """Forget every entry (the monitor is closing); returns how many there were."""
        now = self._clock()
        with self._lock:
            entries = list(self._runs.items())
            self._runs.clear()
        for key, entry in entries:
            self._on_forget(key, entry, now - entry.started, CLOSED)
        return len(entries)

    def _sweep(self, now: float) -> int:
        with self._lock:
            self._next_sweep = now + self._sweep_every
            forgotten = self._collect(now)
        for key, entry, reason in forgotten:
            self._on_forget(key, entry, now - entry.started, reason)
        return len(forgotten)

    def _collect(self, now: float) -> list[tuple[Any, Entry, str]]:
        deadline = now - self._max_age
        excess = len(self._runs) - self._max_runs
        if excess > 0:  # evict with some slack, so that a full table is not swept again on every start
            excess += self._max_runs // 10
        forgotten: list[tuple[Any, Entry, str]] = []
        while True:
            # Insertion order is start order: the oldest entries are at the front. Copying a slice of the items is
            # one C call that runs no Python code, so no other thread can change the dictionary halfway through it.
            oldest = list(islice(self._runs.items(), _SWEEP_CHUNK))
            for key, entry in oldest:
                expired = entry.started <= deadline
                if not expired and excess <= 0:
                    return forgotten
                if self._runs.pop(key, None) is entry:  # it may have ended meanwhile
                    forgotten.append((key, entry, AGE if expired else CAPACITY))
                    excess -= 1
            if len(oldest) < _SWEEP_CHUNK:
                return forgotten

    def __len__(self) -> int:
        return len(self._runs)
