"""Plain values for the JSON records: numbers that may be missing, and NaN-free JSON."""

from __future__ import annotations

import math
from typing import Any


def to_float(value: Any) -> float:
    """`float(value)`, or NaN for what is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def to_json_value(value: Any) -> Any:
    """Converts to what `json.dumps(allow_nan=False)` accepts: NaN and infinity become None."""
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


