"""Helpers for testing an application that runs with a Monitor: captured log events, metric values, and a local
LangSmith-compatible server to receive its feedback."""

from typing import TYPE_CHECKING

from .logs import LogCapture
from .metrics import metric_value

if TYPE_CHECKING:
    from .langsmith_server import FakeLangSmith, FakeLangSmithProcess, fast_client

__all__ = ["FakeLangSmith", "FakeLangSmithProcess", "LogCapture", "fast_client", "metric_value"]

_SERVER_NAMES = frozenset({"FakeLangSmith", "FakeLangSmithProcess", "fast_client"})


def __getattr__(name: str) -> object:
    # Imported on use: `python -m langchain_llmmonitor.testing.langsmith_server` imports this package first, and a
    # server module already imported here would then run twice (runpy warns).
    if name in _SERVER_NAMES:
        from . import langsmith_server

        return getattr(langsmith_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
