"""Structured logging: the library logs through structlog, never writes a secret, and cannot flood the logs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

LOGGER_NAME = "langchain_llmmonitor"


def default_logger() -> Any:
    """The library's logger; it follows whatever structlog configuration the application set up."""
    return structlog.get_logger(LOGGER_NAME)


def info_enabled(logger: Any) -> bool:
    """False only when the logger is a structlog filtering logger set above INFO, whose level cannot change later.

    The handler then skips building INFO events no one will see. Other loggers (stdlib, test loggers) decide per call.
    """
    is_enabled_for = getattr(logger, "is_enabled_for", None)
    if not callable(is_enabled_for):
        return True
    try:
        return bool(is_enabled_for(logging.INFO))
    except Exception:  # noqa: BLE001 - an unusual logger: log and let it decide
        return True


class OncePerInterval:
    """Lets the first occurrence of each kind of failure through, then at most one per `interval` seconds.

    A handler failure that repeats on every event (a broken logger processor, a malformed payload from one
    integration) would otherwise write a warning per callback; the metric still counts every occurrence, and the
    next line that gets through says how many were held back.
    """

    def __init__(
        self, interval: float = 60.0, *, max_kinds: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._max_kinds = max_kinds
        self._clock = clock
        self._kinds: dict[tuple[str, ...], list[float]] = {}  # kind -> [next allowed time, held back]
        self._lock = threading.Lock()

    def admit(self, *kind: str) -> int | None:
        """None to hold this occurrence back, else how many of this kind were held back since the last one let through."""
        now = self._clock()
        with self._lock:
            state = self._kinds.get(kind)
            if state is None:
                if len(self._kinds) >= self._max_kinds:  # bounded: kinds come from exception types
                    self._kinds.pop(next(iter(self._kinds)))
                self._kinds[kind] = [now + self._interval, 0]
                return 0
            if now < state[0]:
                state[1] += 1
                return None
            held, state[0], state[1] = int(state[1]), now + self._interval, 0
            return held
