"""Checks for text that comes from outside (a rating posted by an end user), so that bad input is refused with a
message instead of failing in a database or an encoder: one definition for the HTTP API and the Python API."""

from __future__ import annotations

import re
from typing import Any

# C0 controls and DEL; lone surrogates (valid in a Python str and in JSON escapes, but not Unicode scalar values).
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def text_problem(name: str, value: Any, *, max_chars: int | None, multiline: bool = False) -> str | None:
    """Why `value` is not acceptable as the text field `name`, or None.

    Acceptable: a str of at most `max_chars` (None: any number of) Unicode scalar values without control characters
    (`multiline` allows tab, line feed and carriage return).
    """
    if not isinstance(value, str):
        return f"{name} must be text, got {type(value).__name__}"
    if max_chars is not None and len(value) > max_chars:
        return f"{name} has {len(value)} characters; at most {max_chars} are allowed"
    found = (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value)
    if found is not None:
        char = found.group()
        what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
        return f"{name} contains {what} (U+{ord(char):04X} at position {found.start()}), which is not allowed"
    return None
