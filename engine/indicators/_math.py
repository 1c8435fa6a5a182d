"""Series arithmetic and logic helpers: crosses, rising/falling, rolling extremes, changes, bars_since, ..."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsl.types import BOOL, NUMBER
from engine.indicators._core import SpecList, as_bool, as_float, condition, length, series

SPECS = SpecList()

MATH = "math"
LOGIC = "logic"


@SPECS.function(
    "crosses_above",
    [series("a", "the series that crosses"), series("b", "the level it crosses (a series or a constant)")],
    BOOL,
    warmup=lambda a: 1,
    category=LOGIC,
    example="crosses_above(ema(close, 12), ema(close, 26))",
)
def crosses_above(a: pd.Series, b: pd.Series) -> pd.Series:
    """True on the candle where ``a`` closes above ``b`` after being at or below it on the previous
    candle: ``a > b and a[1] <= b[1]``. False while either side is undefined."""
    return as_bool((a > b) & (a.shift(1) <= b.shift(1)), a.index)


@SPECS.function(
    "crosses_below",
    [series("a", "the series that crosses"), series("b", "the level it crosses (a series or a constant)")],
    BOOL,
    warmup=lambda a: 1,
    category=LOGIC,
    example="crosses_below(rsi(close, 14), 70)",
)
def crosses_below(a: pd.Series, b: pd.Series) -> pd.Series:
    """True on the candle where ``a`` closes below ``b`` after being at or above it on the previous
    candle: ``a < b and a[1] >= b[1]``."""
    return as_bool((a < b) & (a.shift(1) >= b.shift(1)), a.index)


@SPECS.function(
    "crosses",
    [series("a"), series("b")],
    BOOL,
    warmup=lambda a: 1,
    category=LOGIC,
    example="crosses(close, vwap())",
)
def crosses(a: pd.Series, b: pd.Series) -> pd.Series:
    """True when ``a`` crosses ``b`` in either direction (``crosses_above or crosses_below``)."""
    return crosses_above(a, b) | crosses_below(a, b)


@SPECS.function(
    "rising",
    [series("source"), length("length", 1, "number of consecutive rises")],
    BOOL,
    warmup=lambda a: a["length"],
    category=LOGIC,
    example="rising(ema(close, 50), 3)",
)
def rising(source: pd.Series, length: int) -> pd.Series:
    """True when ``source`` rose strictly on each of the last ``length`` candles:
    ``source > source[1] > ... > source[length]``."""
    ups = (source.diff() > 0).astype(np.float64)
    return as_bool(ups.rolling(length, min_periods=length).sum() == length, source.index)


@SPECS.function(
    "falling",
    [series("source"), length("length", 1, "number of consecutive falls")],
    BOOL,
    warmup=lambda a: a["length"],
    category=LOGIC,
    example="falling(close, 3)",
)
def falling(source: pd.Series, length: int) -> pd.Series:
    """True when ``source`` fell strictly on each of the last ``length`` candles:
    ``source < source[1] < ... < source[length]``."""
    downs = (source.diff() < 0).astype(np.float64)
    return as_bool(downs.rolling(length, min_periods=length).sum() == length, source.index)


@SPECS.function(
    "highest",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    example="highest(high, 20)",
)
def highest(source: pd.Series, length: int) -> pd.Series:
    """Highest value of ``source`` over the last ``length`` candles, the current one included (so a
    breakout test compares with the previous candle's value: ``close > highest(high, 20)[1]``)."""
    return as_float(source.rolling(length, min_periods=length).max(), source.index)


@SPECS.function(
    "lowest",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    example="lowest(low, 20)",
)
def lowest(source: pd.Series, length: int) -> pd.Series:
    """Lowest value of ``source`` over the last ``length`` candles, the current one included."""
    return as_float(source.rolling(length, min_periods=length).min(), source.index)


@SPECS.function(
    "change",
    [series("source"), length("length", 1, "candles back")],
    NUMBER,
    warmup=lambda a: a["length"],
    category=MATH,
    example="change(close, 5)",
)
def change(source: pd.Series, length: int) -> pd.Series:
    """Difference with the value ``length`` candles ago: ``source - source[length]``."""
    return as_float(source - source.shift(length), source.index)


@SPECS.function(
    "pct_change",
    [series("source"), length("length", 1, "candles back")],
    NUMBER,
    warmup=lambda a: a["length"],
    category=MATH,
    example="pct_change(close, 12) > 2%",
)
def pct_change(source: pd.Series, length: int) -> pd.Series:
    """Relative change since ``length`` candles ago as a fraction: ``source / source[length] - 1``
    (0.02 is +2%, so it compares directly with percent literals)."""
    return as_float(source / source.shift(length) - 1.0, source.index)


@SPECS.function(
    "bars_since",
    [condition("condition", "the event to measure from")],
    NUMBER,
    warmup=lambda a: 0,
    category=LOGIC,
    example="bars_since(crosses_above(close, ema(close, 50))) < 10",
)
def bars_since(condition: pd.Series) -> pd.Series:
    """Candles since ``condition`` was last true: 0 on a candle where it is true, 1 on the next, ...
    Undefined (NaN, so every comparison is false) before it was first true. Its memory is unbounded:
    if the event is older than the plan's warm-up, a live restart cannot see it until it happens again."""
    events = np.asarray(condition, dtype=bool)
    positions = np.arange(len(events), dtype=np.float64)
    last = pd.Series(np.where(events, positions, np.nan)).ffill().to_numpy()
    return as_float(positions - last, condition.index)


@SPECS.function(
    "count",
    [condition("condition"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=LOGIC,
    example="count(close > open, 5) >= 4",
)
def count(condition: pd.Series, length: int) -> pd.Series:
    """How many of the last ``length`` candles (the current one included) had ``condition`` true."""
    hits = pd.Series(np.asarray(condition, dtype=np.float64), index=condition.index)
    return as_float(hits.rolling(length, min_periods=length).sum(), condition.index)


@SPECS.function(
    "between",
    [series("source"), series("lower"), series("upper")],
    BOOL,
    warmup=lambda a: 0,
    category=LOGIC,
    example="between(rsi(close, 14), 40, 60)",
)
def between(source: pd.Series, lower: pd.Series, upper: pd.Series) -> pd.Series:
    """True when ``lower <= source <= upper`` (both ends included)."""
    return as_bool((source >= lower) & (source <= upper), source.index)


@SPECS.function(
    "abs",
    [series("source")],
    NUMBER,
    warmup=lambda a: 0,
    category=MATH,
    example="abs(change(close)) > atr(14)",
)
def absolute(source: pd.Series) -> pd.Series:
    """Absolute value."""
    return as_float(np.abs(source), source.index)


@SPECS.function(
    "min", [series("a"), series("b")], NUMBER, warmup=lambda a: 0, category=MATH, example="min(open, close)"
)
def minimum(a: pd.Series, b: pd.Series) -> pd.Series:
    """The smaller of ``a`` and ``b`` on each candle (undefined when either is)."""
    return as_float(np.minimum(a, b), a.index)


@SPECS.function(
    "max", [series("a"), series("b")], NUMBER, warmup=lambda a: 0, category=MATH, example="max(open, close)"
)
def maximum(a: pd.Series, b: pd.Series) -> pd.Series:
    """The larger of ``a`` and ``b`` on each candle (undefined when either is)."""
    return as_float(np.maximum(a, b), a.index)


@SPECS.function(
    "sum",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    example="sum(volume, 12)",
)
def rolling_sum(source: pd.Series, length: int) -> pd.Series:
    """Sum of the last ``length`` values, the current one included."""
    return as_float(source.rolling(length, min_periods=length).sum(), source.index)


@SPECS.function(
    "stdev",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    example="stdev(close, 20)",
)
def stdev(source: pd.Series, length: int) -> pd.Series:
    """Population standard deviation (divides by ``length``, like TA-Lib and Bollinger Bands) of the
    last ``length`` values."""
    return as_float(source.rolling(length, min_periods=length).std(ddof=0), source.index)


@SPECS.function(
    "zscore",
    [series("source"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=MATH,
    example="zscore(volume, 50) > 3",
)
def zscore(source: pd.Series, length: int) -> pd.Series:
    """How many (population) standard deviations ``source`` is from its ``length``-candle mean;
    undefined when the window is flat."""
    window = source.rolling(length, min_periods=length)
    mean, spread = window.mean(), window.std(ddof=0)
    # Rolling sums leave ~1e-17 of noise on a flat window; that is "no spread", not a tiny one.
    spread = spread.where(spread > 1e-12 * mean.abs().clip(lower=1e-300))
    return as_float((source - mean) / spread, source.index)
