"""Candlestick patterns: ``pattern("hammer")`` over TA-Lib's CDL* recognisers."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from dsl.registry import FunctionSpec, Param
from dsl.types import BOOL, STRING_CONST
from engine.indicators._core import SpecList, array_native, column, segments, text, with_defaults

SPECS = SpecList()

DIRECTIONS = ("any", "bullish", "bearish")


@functools.cache
def pattern_names() -> tuple[str, ...]:
    """Every TA-Lib candlestick recogniser, lower case without the ``cdl`` prefix (``morningstar``)."""
    import talib

    names = talib.get_function_groups()["Pattern Recognition"]
    return tuple(sorted(n.removeprefix("CDL").lower() for n in names))


@functools.cache
def _lookback(name: str) -> int:
    from talib import abstract

    return int(abstract.Function(f"CDL{name.upper()}").lookback)


def _warmup(args: Mapping[str, Any]) -> int:
    name = args.get("name")
    return _lookback(name) if name in pattern_names() else max(_lookback(n) for n in pattern_names())


def pattern(
    name: str, direction: str, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> np.ndarray:
    """True on the candle that completes the named candlestick pattern (TA-Lib's CDL recognisers with
    their default settings: body and shadow sizes are judged against the average of the preceding ~10
    candles, so the warm-up is the recogniser's own look-back). TA-Lib scores a match +100 (bullish) or
    -100 (bearish), +/-80 for weaker variants and +/-200 for a confirmation (hikkake); ``direction``
    keeps the positive or negative ones. Recognisers without a direction of their own report +100 for
    every match (doji, dragonflydoji, ...: use ``"any"``) or the candle's colour (spinningtop, longline,
    ...)."""
    import talib

    fn = getattr(talib, f"CDL{name.upper()}")

    def compute(open, high, low, close):
        arrays = (np.ascontiguousarray(v, dtype=np.float64) for v in (open, high, low, close))
        return fn(*arrays).astype(np.float64)

    values = segments(compute, {"open": open, "high": high, "low": low, "close": close})
    if direction == "bullish":
        return values > 0
    if direction == "bearish":
        return values < 0
    return np.nan_to_num(values) != 0


def _spec() -> FunctionSpec:
    params = (
        Param(
            "name",
            STRING_CONST,
            choices=pattern_names(),
            doc="TA-Lib pattern name in lower case without 'cdl': hammer, doji, engulfing, ...",
        ),
        text("direction", DIRECTIONS, "any", "which matches count: any, bullish (+) or bearish (-)"),
        column("open"),
        column("high"),
        column("low"),
        column("close"),
    )
    doc = " ".join((pattern.__doc__ or "").split()) + " Names: " + ", ".join(pattern_names()) + "."
    return FunctionSpec(
        name="pattern",
        params=params,
        returns=BOOL,
        impl=array_native(pattern, None),
        warmup=with_defaults(params, _warmup),
        category="pattern",
        doc=doc,
        example='pattern("engulfing", "bullish") and rsi(close, 14) < 35',
        arrays=True,
    )


SPECS.add(_spec())
