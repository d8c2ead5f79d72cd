"""Capture the structlog events a Monitor logs, so a test can assert on them instead of parsing log output."""

from __future__ import annotations

from typing import Any

import structlog


class LogCapture:
    """A structlog logger that keeps every event it logs, in order, for a test to assert on.

    Give its `logger` to the Monitor, run the chain, then read `events` or `named(...)`:

        logs = LogCapture()
        monitor = Monitor(logger=logs.logger)
        chain.invoke(question, config={"callbacks": [monitor]})
        assert logs.named("invocation")[0]["status"] == "success"
    """

    def __init__(self) -> None:
        self._capture = structlog.testing.LogCapture()
        self.logger = structlog.wrap_logger(structlog.ReturnLogger(), processors=[self._capture])

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event logged so far, as dicts with the event name under "event" and its fields."""
        return self._capture.entries

    def named(self, event: str) -> list[dict[str, Any]]:
        """The events called `event` (e.g. "llm_call", "invocation"), in the order they were logged."""
        return [entry for entry in self.events if entry["event"] == event]
