"""Records as JSON types, for `to_dict()` of the review and the metrics snapshot: one conversion, so both agree."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


def to_plain(value: Any) -> Any:
    """Dataclasses, mappings and sequences to dicts and lists; datetimes to ISO strings; NaN and inf to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # a numpy scalar that slipped through
        return to_plain(value.item())
    return value
