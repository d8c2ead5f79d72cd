"""`llmmonitor demo`: an offline retrieval chain under the Monitor, the whole monitoring loop, and its summary."""

from .run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
