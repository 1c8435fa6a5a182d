"""Column types that behave the same on SQLite and PostgreSQL.

``Money`` keeps ledger quantities (amounts, prices, fees, balances) exact. PostgreSQL stores them as
``NUMERIC(38, 18)``. SQLite has no decimal type: a column declared NUMERIC would turn ``'0.1'`` into a
binary float, so on SQLite the value is kept as text and converted back to :class:`~decimal.Decimal` on
read. The consequence: never do arithmetic or ordering on money columns in SQL (it would compare text on
SQLite); the repositories load the rows and compute in Python with ``Decimal``.

``UTCDateTime`` accepts timezone-aware datetimes only and always returns them in UTC (SQLite would
otherwise hand back naive values). ``JSONDoc`` is JSON, stored as JSONB on PostgreSQL.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["MONEY_CONTEXT", "MONEY_SCALE", "JSONDoc", "Money", "UTCDateTime", "json_safe", "to_decimal"]

MONEY_SCALE = 18
_MONEY_PRECISION = 38
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
# Python's default context keeps 28 significant digits, fewer than a NUMERIC(38, 18) holds: all money
# arithmetic runs in this one (``with decimal.localcontext(MONEY_CONTEXT):``), wide enough that sums and
# products of money values are exact before they are rounded to the scale.
MONEY_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
_MAX_INTEGER_DIGITS = _MONEY_PRECISION - MONEY_SCALE


def to_decimal(value: Decimal | int | float | str) -> Decimal:
    """An exact ``Decimal`` at the store's scale. Floats (what ccxt returns) go through their shortest
    repr, so ``0.1`` becomes ``Decimal('0.1')``, not the binary expansion."""
    if isinstance(value, bool):
        raise TypeError("a money value cannot be a bool")
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value)
    except (decimal.InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"not a decimal number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"a money value must be finite, got {value!r}")
    number = number.quantize(_QUANTUM, context=MONEY_CONTEXT)
    if number.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValueError(f"{value!r} has more than {_MAX_INTEGER_DIGITS} digits before the decimal point")
    return _canonical(number)


def _canonical(number: Decimal) -> Decimal:
    # One spelling per value on both back ends: no trailing zeros, no exponent (100, not 1E+2).
    if number.is_zero():
        return Decimal(0)
    number = number.normalize(context=MONEY_CONTEXT)
    if number.as_tuple().exponent > 0:  # type: ignore[operator]
        number = number.quantize(Decimal(1), context=MONEY_CONTEXT)
    return number


class Money(TypeDecorator[Decimal]):
    """An exact decimal: ``NUMERIC(38, 18)`` on PostgreSQL, canonical text on SQLite."""

    impl = Numeric(_MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(_MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = to_decimal(value)
        return format(number, "f") if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return _canonical(Decimal(value))


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, always timezone-aware UTC in Python."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware (UTC) time")
        value = value.astimezone(UTC)
        # SQLite keeps text without an offset; stripping it after converting keeps values comparable.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JSONDoc(TypeDecorator[Any]):
    """A JSON document; JSONB on PostgreSQL so it can be indexed and compared. Values pass through
    :func:`json_safe` on the way in, so numpy numbers and NaN do not break PostgreSQL."""

    # none_as_null: Python None is SQL NULL (so ``IS NULL`` finds it), not the JSON text 'null'.
    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json_safe(value)


def json_safe(value: Any, path: str = "$") -> Any:
    """``value`` as plain JSON: numpy scalars become Python numbers, Decimals exact strings, times ISO
    text, NaN and infinities null (PostgreSQL's JSONB refuses them). Anything else is a TypeError naming
    where it sits."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value, path)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return json_safe(item(), path)
    raise TypeError(f"{path}: {type(value).__name__} cannot be stored as JSON")
