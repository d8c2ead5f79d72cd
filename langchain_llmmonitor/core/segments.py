"""Segments: the few low-cardinality dimensions of a trace (release, prompt version, model, chain) that the store keeps
with its invocation and evaluation, so the weekly review can say which one moved.

An application declares them in the root run's `config["metadata"]` (`{"app_version": "v2"}`) or as tags written
`key:value` / `key=value`; metadata wins. `model` (the model of the trace's last LLM call) and `chain` (the root's
name) are filled in by the handler when the application does not name them. They are never metric labels: a release
a day would grow every series without end.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

MODEL = "model"
CHAIN = "chain"
DEFAULT_SEGMENT_KEYS = ("app_version", "prompt_version", MODEL, CHAIN)
RELEASE_KEYS = ("app_version", "prompt_version")
"""Keys whose new value is a release: the review marks where each was first seen on its trend plots."""
_TAG_SEPARATORS = (":", "=")


def segment_value(value: Any, max_chars: int) -> str | None:
    """A declared value as stored: text, numbers and flags as text, cut to `max_chars`; anything else is ignored."""
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()[:max_chars]
    return value or None


def declared_segments(keys: Collection[str], metadata: Any, tags: Any, max_chars: int) -> dict[str, str] | None:
    """The segments a root run declares in its metadata or tags; None when it declares none (the common case)."""
    found: dict[str, str] = {}
    if isinstance(metadata, Mapping):
        for key in keys:
            value = segment_value(metadata.get(key), max_chars)
            if value is not None:
                found[key] = value
    if tags and len(found) < len(keys) and isinstance(tags, list | tuple):
        for tag in tags:
            if not isinstance(tag, str):
                continue
            for separator in _TAG_SEPARATORS:
                key, sep, value = tag.partition(separator)
                if sep and key in keys and key not in found:
                    text = segment_value(value, max_chars)
                    if text is not None:
                        found[key] = text
                    break
    return found or None


def trace_segments(
    keys: Collection[str], declared: Mapping[str, str] | None, model: str | None, chain: str, max_chars: int
) -> dict[str, str]:
    """All segments of a finished trace: the declared ones, then the model and the chain where not declared."""
    segments = dict(declared) if declared else {}
    if MODEL in keys and MODEL not in segments and model:
        segments[MODEL] = model[:max_chars]
    if CHAIN in keys and CHAIN not in segments and chain:
        segments[CHAIN] = chain[:max_chars]
    return segments
