"""Series arithmetic and logic helpers: crosses, rising/falling, rolling extremes, changes, bars_since, ...

All array-native (``arrays=True``, see ``_core.array_native``). Rolling sums of 0/1 flags are integer
counts and rolling extremes are exact in any order, so numpy gives pandas' values bit for bit; sums
and deviations of real numbers (``sum``, ``stdev``, ``zscore``) keep pandas' rolling algorithms, whose
rounding they must reproduce.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsl.types import BOOL, NUMBER
from engine.indicators._core import SpecList, clean, condition, length, rolling_max, rolling_min, series

SPECS = SpecList()
Array = np.ndarray


def _previous(values: Array, fill: float | bool) -> Array:
    """``values`` one candle later (``values[1]`` in the DSL), ``fill`` on the first candle."""
    out = np.empty_like(values)
    out[:1] = fill
    out[1:] = values[:-1]
    return out


def _lagged(values: Array, bars: int) -> Array:
    """``values[bars]``: NaN for the first ``bars`` candles."""
    out = np.full(len(values), np.nan)
    if bars < len(values):
        out[bars:] = values[: len(values) - bars]
    return out


def _window_count(flags: Array, length: int) -> Array:
    """How many of the last ``length`` flags are true (float), NaN before ``length`` candles."""
    out = np.full(len(flags), np.nan)
    if length <= len(flags):
        total = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
        out[length - 1 :] = total[length:] - total[: len(total) - length]
    return out


def _rolling(values: Array, length: int) -> pd.core.window.Rolling:
    return pd.Series(values).rolling(length, min_periods=length)


MATH = "math"
LOGIC = "logic"


@SPECS.function(
    "crosses_above",
    [series("a", "the series that crosses"), series("b", "the level it crosses (a series or a constant)")],
    BOOL,
    warmup=lambda a: 1,
    category=LOGIC,
    arrays=True,
    example="crosses_above(ema(close, 12), ema(close, 26))",
)
def crosses_above(a: Array, b: Array) -> Array:
    """True on the candle where ``a`` closes above ``b`` after being at or below it on the previous
    candle: ``a > b and a[1] <= b[1]``. False while either side is undefined."""
    return (a > b) & _previous(a <= b, False)


@SPECS.function(
    "crosses_below",
    [series("a", "the series that crosses"), series("b", "the level it crosses (a series or a constant)")],
    BOOL,
    warmup=lambda a: 1,
    category=LOGIC,
    arrays=True,
    example="crosses_below(rsi(close, 14), 70)",
)
def crosses_below(a: Array, b: Array) -> Array:
    """True on the candle where ``a`` closes below ``b`` after being at or above it on the previous
    candle: ``a < b and a[1] >= b[1]``."""
    return (a < b) & _previous(a >= b, False)


@SPECS.function(
    "crosses",
    [series("a"), series("b")],
    BOOL,
    warmup=lambda a: 1,
    category=LOGIC,
    arrays=True,
    example="crosses(close, vwap())",
)
def crosses(a: Array, b: Array) -> Array:
    """True when ``a`` crosses ``b`` in either direction (``crosses_above or crosses_below``)."""
    return crosses_above(a, b) | crosses_below(a, b)


@SPECS.function(
    "rising",
    [series("source"), length("length", 1, "number of consecutive rises")],
    BOOL,
    warmup=lambda a: a["length"],
    category=LOGIC,
    arrays=True,
    example="rising(ema(close, 50), 3)",
)
def rising(source: Array, length: int) -> Array:
    """True when ``source`` rose strictly on each of the last ``length`` candles:
    ``source > source[1] > ... > source[length]``."""
    return _window_count(source - _previous(source, np.nan) > 0, length) == length


@SPECS.function(
    "falling",
    [series("source"), length("length", 1, "number of consecutive falls")],
    BOOL,
    warmup=lambda a: a["length"],
    category=LOGIC,
    arrays=True,
    example="falling(close, 3)",
)
def falling(source: Array, length: int) -> Array:
    """True when ``source`` fell strictly on each of the last ``length`` candles:
    ``source < source[1] < ... < source[length]``."""
    return _window_count(source - _previous(source, np.nan) < 0, length) == length


@SPECS.function(
    "highest",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    arrays=True,
    example="highest(high, 20)",
)
def highest(source: Array, length: int) -> Array:
    """Highest value of ``source`` over the last ``length`` candles, the current one included (so a
    breakout test compares with the previous candle's value: ``close > highest(high, 20)[1]``)."""
    return clean(rolling_max(source, length))


@SPECS.function(
    "lowest",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    arrays=True,
    example="lowest(low, 20)",
)
def lowest(source: Array, length: int) -> Array:
    """Lowest value of ``source`` over the last ``length`` candles, the current one included."""
    return clean(rolling_min(source, length))


@SPECS.function(
    "change",
    [series("source"), length("length", 1, "candles back")],
    NUMBER,
    warmup=lambda a: a["length"],
    category=MATH,
    arrays=True,
    example="change(close, 5)",
)
def change(source: Array, length: int) -> Array:
    """Difference with the value ``length`` candles ago: ``source - source[length]``."""
    return clean(source - _lagged(source, length))


@SPECS.function(
    "pct_change",
    [series("source"), length("length", 1, "candles back")],
    NUMBER,
    warmup=lambda a: a["length"],
    category=MATH,
    arrays=True,
    example="pct_change(close, 12) > 2%",
)
def pct_change(source: Array, length: int) -> Array:
    """Relative change since ``length`` candles ago as a fraction: ``source / source[length] - 1``
    (0.02 is +2%, so it compares directly with percent literals)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return clean(source / _lagged(source, length) - 1.0)


@SPECS.function(
    "bars_since",
    [condition("condition", "the event to measure from")],
    NUMBER,
    warmup=lambda a: 0,
    category=LOGIC,
    arrays=True,
    example="bars_since(crosses_above(close, ema(close, 50))) < 10",
)
def bars_since(condition: Array) -> Array:
    """Candles since ``condition`` was last true: 0 on a candle where it is true, 1 on the next, ...
    Undefined (NaN, so every comparison is false) before it was first true. Its memory is unbounded:
    if the event is older than the plan's warm-up, a live restart cannot see it until it happens again."""
    events = np.asarray(condition, dtype=bool)
    positions = np.arange(len(events), dtype=np.float64)
    last = np.maximum.accumulate(np.where(events, positions, -1.0))
    return np.where(last >= 0, positions - last, np.nan)


@SPECS.function(
    "count",
    [condition("condition"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=LOGIC,
    arrays=True,
    example="count(close > open, 5) >= 4",
)
def count(condition: Array, length: int) -> Array:
    """How many of the last ``length`` candles (the current one included) had ``condition`` true."""
    return _window_count(np.asarray(condition, dtype=bool), length)


@SPECS.function(
    "between",
    [series("source"), series("lower"), series("upper")],
    BOOL,
    warmup=lambda a: 0,
    category=LOGIC,
    arrays=True,
    example="between(rsi(close, 14), 40, 60)",
)
def between(source: Array, lower: Array, upper: Array) -> Array:
    """True when ``lower <= source <= upper`` (both ends included)."""
    return (source >= lower) & (source <= upper)


@SPECS.function(
    "abs",
    [series("source")],
    NUMBER,
    warmup=lambda a: 0,
    category=MATH,
    arrays=True,
    example="abs(change(close)) > atr(14)",
)
def absolute(source: Array) -> Array:
    """Absolute value."""
    return clean(np.abs(source))


@SPECS.function(
    "min",
    [series("a"), series("b")],
    NUMBER,
    warmup=lambda a: 0,
    category=MATH,
    example="min(open, close)",
    arrays=True,
)
def minimum(a: Array, b: Array) -> Array:
    """The smaller of ``a`` and ``b`` on each candle (undefined when either is)."""
    return clean(np.minimum(a, b))


@SPECS.function(
    "max",
    [series("a"), series("b")],
    NUMBER,
    warmup=lambda a: 0,
    category=MATH,
    example="max(open, close)",
    arrays=True,
)
def maximum(a: Array, b: Array) -> Array:
    """The larger of ``a`` and ``b`` on each candle (undefined when either is)."""
    return clean(np.maximum(a, b))


@SPECS.function(
    "sum",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    arrays=True,
    example="sum(volume, 12)",
)
def rolling_sum(source: Array, length: int) -> Array:
    """Sum of the last ``length`` values, the current one included."""
    return clean(_rolling(source, length).sum().to_numpy())


@SPECS.function(
    "stdev",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    arrays=True,
    example="stdev(close, 20)",
)
def stdev(source: Array, length: int) -> Array:
    """Population standard deviation (divides by ``length``, like TA-Lib and Bollinger Bands) of the
    last ``length`` values."""
    return clean(_rolling(source, length).std(ddof=0).to_numpy())


@SPECS.function(
    "zscore",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    arrays=True,
    example="zscore(volume, 50) > 3",
)
def zscore(source: Array, length: int) -> Array:
    """How many (population) standard deviations ``source`` is from its ``length``-candle mean;
    undefined when the window is flat."""
    window = _rolling(source, length)
    mean, spread = window.mean().to_numpy(), window.std(ddof=0).to_numpy()
    # Rolling sums leave ~1e-17 of noise on a flat window; that is "no spread", not a tiny one.
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(spread > 1e-12 * np.maximum(np.abs(mean), 1e-300), spread, np.nan)
        return clean((source - mean) / spread)
