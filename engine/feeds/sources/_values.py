"""Reading numbers and times out of other people's JSON, value by value.

Services drift: a number arrives as a string, a field goes missing, a value is null. Each helper returns
None for what it cannot read, so a source skips that one value and keeps the rest of the answer.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from engine.feeds.observations import NS_PER_SECOND

__all__ = ["MISSING", "dotted", "number", "time_ns"]

MISSING = object()


def number(value: Any) -> float | None:
    """A finite float from a JSON number or a numeric string; None for null, bools, text, NaN/inf."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip().replace(",", ""))
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def dotted(data: Any, path: str) -> Any:
    """``data["a"]["b"][0]`` for ``"a.b.0"`` (digits index lists); MISSING when any step is absent.
    An empty path is ``data`` itself."""
    current = data
    for step in (p for p in path.split(".") if p) if path else ():
        if isinstance(current, dict):
            if step not in current:
                return MISSING
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit():
            index = int(step)
            if not -len(current) <= index < len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def time_ns(value: Any, unit: str | None = None) -> int | None:
    """A time in ns from unix seconds/milliseconds (numbers or numeric strings) or ISO 8601 text.

    ``unit``: ``s``, ``ms`` or ``iso``; None guesses (numbers above 1e11 are milliseconds: seconds stay
    below that until the year 5138). Naive ISO times are UTC."""
    if value is None or isinstance(value, bool):
        return None
    if unit != "iso":
        amount = number(value)
        if amount is not None:
            if unit is None:
                unit = "ms" if abs(amount) > 1e11 else "s"
            scale = NS_PER_SECOND // 1000 if unit == "ms" else NS_PER_SECOND
            return int(amount) * scale if amount.is_integer() else round(amount * scale)
        if unit in ("s", "ms"):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * NS_PER_SECOND + parsed.microsecond * 1000
