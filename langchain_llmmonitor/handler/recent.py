"""Traces that finished a moment ago, kept so user feedback can find them before the store has, and judge them.

A thumbs-down usually arrives seconds after the answer: earlier than the batched invocation write, and for a trace that
was probably not sampled. The last few thousand traces are kept as references (nothing is copied) in a bounded map.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class FinishedTrace:
    """A finished root run: what feedback needs to find it, and what a judge needs to score it."""

    run_id: str
    trace_id: str
    request_id: str | None
    project: str | None
    inputs: Any
    documents: list[Any]
    answer: Any
    evaluated: bool
    segments: dict[str, str]


class RecentTraces:
    """The latest `capacity` finished traces, by run id and by request id."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"the feedback window must be >= 1, got {capacity!r}")
        self._capacity = capacity
        self._by_key: OrderedDict[str, FinishedTrace] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, trace: FinishedTrace) -> None:
        with self._lock:
            self._by_key[trace.run_id] = trace
            if trace.request_id is not None:
                self._by_key[trace.request_id] = trace
                self._by_key.move_to_end(trace.request_id)  # a reused request id points at its latest run
            while len(self._by_key) > self._capacity:
                self._by_key.popitem(last=False)

    def find(self, run_or_request_id: str) -> FinishedTrace | None:
        return self._by_key.get(run_or_request_id)

    def claim_evaluation(self, trace: FinishedTrace) -> bool:
        """Mark the trace as judged; False if it already was (feedback must not judge a trace twice)."""
        with self._lock:
            if trace.evaluated:
                return False
            trace.evaluated = True
            return True
