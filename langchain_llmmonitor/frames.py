"""pandas DataFrames for notebooks (the `frames` extra): records in, one row per record and one column per field out.

pandas is imported here only, when a frame is asked for, so the base install never needs it. The columns follow the
dataclass's fields and their annotations, not a list kept by hand, so a field added to a record shows up in its frame:
times become timezone-aware UTC datetime64 columns, ints and bools pandas' nullable `Int64` and `boolean` (a missing
score stays missing instead of turning the column into floats or objects), floats keep NaN for missing, text is
`string`, and a mapping-valued field such as `segments` is spread into one column per key, `segments.model`, with NA
where a record lacks the key.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

INSTALL_HINT = "pip install 'langchain-llmmonitor[frames]'"


def require_pandas() -> Any:
    """The pandas module, or ImportError naming the extra to install."""
    try:
        return importlib.import_module("pandas")
    except ImportError as missing:
        raise ImportError(f"DataFrames need pandas: {INSTALL_HINT} ({missing})") from missing


def records_frame(records: Iterable[Any], cls: type) -> Any:
    """A DataFrame of `cls` dataclass instances: one row each, one column per field (mappings spread by key)."""
    pd = require_pandas()
    rows = list(records)
    hints = _hints(cls)
    columns: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        values = [getattr(row, field.name) for row in rows]
        kinds = kinds_of(hints.get(field.name, Any))
        if Mapping in kinds or any(isinstance(value, Mapping) for value in values):
            columns.update(_spread(pd, field.name, values))
        else:
            columns[field.name] = series(pd, values, kinds)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))


def series(pd: Any, values: list[Any], kinds: set[type]) -> Any:
    """One column typed by what it holds (`kinds`, else the values): UTC times, nullable ints, bools and text."""
    kinds = kinds or {type(value) for value in values if value is not None}
    if kinds and kinds <= {datetime, date}:
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True).dt.as_unit("us")  # a datetime's resolution
    if kinds == {bool}:
        return pd.Series(values, dtype="boolean")
    if kinds and kinds <= {int, bool}:
        return pd.Series(values, dtype="Int64")
    if kinds and kinds <= {int, float}:
        return pd.Series(values, dtype="float64")
    if kinds == {str}:
        return pd.Series(values, dtype=pd.StringDtype())
    return pd.Series(values, dtype=object)


def _spread(pd: Any, name: str, values: list[Any]) -> dict[str, Any]:
    """`name.key` columns, keys in order of first appearance; a row without the key (or the mapping) gets NA."""
    mappings = [value if isinstance(value, Mapping) else {} for value in values]
    keys = dict.fromkeys(key for mapping in mappings for key in mapping)
    return {f"{name}.{key}": series(pd, [mapping.get(key) for mapping in mappings], set()) for key in keys}


def kinds_of(annotation: Any) -> set[type]:
    """The classes an annotation allows, None left out: `int | None` -> {int}, `Mapping[str, str]` -> {Mapping}."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return {kind for arg in typing.get_args(annotation) for kind in kinds_of(arg)}
    if origin is typing.Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    origin = origin or annotation
    if origin is type(None) or not isinstance(origin, type):
        return set()
    return {Mapping} if issubclass(origin, Mapping) else {origin}


def _hints(cls: type) -> dict[str, Any]:
    """The fields' annotations; none when one names a type only imported for type checkers (values decide then)."""
    try:
        return typing.get_type_hints(cls)
    except NameError:
        return {}
