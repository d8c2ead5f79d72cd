"""Frozen settings dataclasses: built from a mapping (a file, flags) and checked at construction, with messages that
say what is allowed. `MonitorConfig` and `AlertConfig` share these."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any, TypeVar

Settings = TypeVar("Settings")


def from_mapping(
    cls: type[Settings], overrides: Mapping[str, Any], *, base: Settings | None = None, what: str | None = None
) -> Settings:
    """`base` (or the defaults) with `overrides` applied.

    Keys may use dashes or underscores; a nested settings group takes a mapping of its own settings; an unknown key is
    refused naming the closest known one. `what` names the settings in messages (the class name by default).
    """
    what = what or cls.__name__
    if not isinstance(overrides, Mapping):
        raise TypeError(f"{what} configuration must be a mapping of setting to value, got {type(overrides).__name__}")
    start = base if base is not None else cls()
    known = [spec.name for spec in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        name = str(key).replace("-", "_")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known settings: {', '.join(known)}"
            raise ValueError(f"unknown {what} setting {key!r}{hint}")
        current = getattr(start, name)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = from_mapping(type(current), value, base=current)
        values[name] = value
    return dataclasses.replace(start, **values)  # type: ignore[type-var]


def number_problem(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    optional: bool = False,
) -> str | None:
    """Why `value` is not an allowed number for the setting `name`, or None when it is."""
    if value is None and optional:
        return None
    allowed = _allowed(integer, minimum, above, maximum, optional)
    wrong_type = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if wrong_type or not math.isfinite(value):
        return f"{name} must be {allowed}, got {value!r}"
    too_low = (minimum is not None and value < minimum) or (above is not None and value <= above)
    if too_low or (maximum is not None and value > maximum):
        return f"{name} must be {allowed}, got {value!r}"
    return None


def _allowed(integer: bool, minimum: float | None, above: float | None, maximum: float | None, optional: bool) -> str:
    kind = "an integer" if integer else "a number"
    if minimum is not None and maximum is not None:
        text = f"{kind} from {minimum:g} to {maximum:g}"
    elif minimum is not None:
        text = f"{kind} >= {minimum:g}"
    elif above is not None:
        text = f"{kind} > {above:g}"
    else:
        text = kind
    return f"{text} or None" if optional else text


def check(owner: object, problems: list[str | None]) -> None:
    """Raise one ValueError listing every problem found, naming the settings group."""
    found = [problem for problem in problems if problem]
    if found:
        raise ValueError(f"invalid {type(owner).__name__}: " + "; ".join(found))
