"""Text that leaves the process (log lines, stored errors, judge reasons) never carries a credential, and text that is
stored is valid for every backend."""

from __future__ import annotations

import re

_SECRET = re.compile(
    r"(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic style keys
    r"|lsv2_[A-Za-z0-9_]{8,}"  # LangSmith keys
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|(?i:(?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]{4,}"
)
MAX_ERROR_CHARS = 300
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def scrub(text: str) -> str:
    """Text with anything that looks like a credential replaced."""
    return _SECRET.sub("[REDACTED]", text)


def describe_error(error: BaseException, limit: int = MAX_ERROR_CHARS) -> str:
    """A short, credential-free description of an exception for a log line."""
    return scrub(f"{type(error).__name__}: {error}")[:limit]


def clip(text: str | None, limit: int) -> str | None:
    """Scrubbed and cut to `limit` characters; None stays None."""
    return None if text is None else scrub(text)[:limit]


def storable(text: str, limit: int | None = None) -> str:
    """`text` as every database accepts it: NUL (refused by PostgreSQL) and lone surrogates (refused by SQLite's UTF-8
    encoder) become U+FFFD, and it is cut to `limit` characters."""
    if _UNSTORABLE.search(text) is not None:
        text = _UNSTORABLE.sub(REPLACEMENT, text)
    return text if limit is None else text[:limit]
