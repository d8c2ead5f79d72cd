"""Structured logging helpers: the library logs through structlog and never writes a secret."""

from __future__ import annotations

import logging
import re
from typing import Any

import structlog

LOGGER_NAME = "langchain_llmmonitor"

_SECRET = re.compile(
    r"(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic style keys
    r"|lsv2_[A-Za-z0-9_]{8,}"  # LangSmith keys
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|(?i:(?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]{4,}"
)
_MAX_ERROR_CHARS = 300


def default_logger() -> Any:
    """The library's logger; it follows whatever structlog configuration the application set up."""
    return structlog.get_logger(LOGGER_NAME)


def info_enabled(logger: Any) -> bool:
    """False only when the logger is a structlog filtering logger set above INFO, whose level cannot change later.

    The Monitor then skips building INFO events no one will see. Other loggers (stdlib, test loggers) decide per call.
    """
    is_enabled_for = getattr(logger, "is_enabled_for", None)
    if not callable(is_enabled_for):
        return True
    try:
        return bool(is_enabled_for(logging.INFO))
    except Exception:  # noqa: BLE001 - an unusual logger: log and let it decide
        return True


def scrub(text: str) -> str:
    """Text with anything that looks like a credential replaced."""
    return _SECRET.sub("[REDACTED]", text)


def describe_error(error: BaseException) -> str:
    """A short, credential-free description of an exception for a log line."""
    return scrub(f"{type(error).__name__}: {error}")[:_MAX_ERROR_CHARS]
