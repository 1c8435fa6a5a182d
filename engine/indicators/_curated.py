"""Hand-written signatures for the indicators users reach for first, computed with TA-Lib.

Warm-up figures: windowed indicators are exact (first valid candle); recursive ones (EMA, Wilder's
smoothing in RSI/ATR/ADX) add the candles needed for the seed's weight to fall under
``SETTLE_TOLERANCE`` (see ``_core.smoothing_settle``), so a plan restarted ``warmup`` candles back
reproduces the backtest's values.

Every function here is array-native (``arrays=True``): written on float64 numpy arrays, answering
pandas callers through ``_core.array_native``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dsl.types import NUMBER
from engine.indicators._core import (
    SpecList,
    clean,
    column,
    const,
    ema_settle,
    length,
    rolling_max,
    rolling_min,
    segments,
    series,
    wilder_settle,
)

SPECS = SpecList()


Array = np.ndarray


def _talib(name: str, inputs: Mapping[str, Array], outputs: int | None = None, **params: Any) -> Array:
    """Run TA-Lib function ``name`` on each finite run of ``inputs`` (in their order): an array, or
    ``(size, outputs)`` for a function with several outputs (in TA-Lib's order)."""
    import talib

    fn = getattr(talib, name)

    def compute(**parts: Array) -> Array:
        result = fn(*(np.ascontiguousarray(v, dtype=np.float64) for v in parts.values()), **params)
        return np.column_stack(result) if outputs is not None else result

    return segments(compute, inputs, outputs)


def _members(values: Array, names: list[str]) -> dict[str, Array]:
    return {name: values[:, i] for i, name in enumerate(names)}


# ----- moving averages -------------------------------------------------------------------------------


@SPECS.function(
    "sma",
    [series("source", "the series to average"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category="overlap",
    arrays=True,
    example="sma(close, 50)",
)
def sma(source: Array, length: int) -> Array:
    """Simple moving average: the mean of the last ``length`` values (TA-Lib SMA)."""
    return _talib("SMA", {"source": source}, timeperiod=length)


@SPECS.function(
    "ema",
    [series("source", "the series to smooth"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1 + ema_settle(a["length"]),
    category="overlap",
    arrays=True,
    example="ema(close, 12)",
)
def ema(source: Array, length: int) -> Array:
    """Exponential moving average with alpha = 2 / (length + 1), seeded with the SMA of the first
    ``length`` values (TA-Lib EMA). Warm-up: ``length - 1`` candles to the seed plus about
    ``3.5 x length`` for the seed's weight to fall below 0.1%."""
    return _talib("EMA", {"source": source}, timeperiod=length)


@SPECS.function(
    "wma",
    [series("source", "the series to average"), length()],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category="overlap",
    arrays=True,
    example="wma(close, 20)",
)
def wma(source: Array, length: int) -> Array:
    """Linearly weighted moving average: the newest value has weight ``length``, the oldest 1
    (TA-Lib WMA)."""
    return _talib("WMA", {"source": source}, timeperiod=length)


# ----- momentum --------------------------------------------------------------------------------------


@SPECS.function(
    "rsi",
    [series("source", "usually close"), length(default=14)],
    NUMBER,
    warmup=lambda a: a["length"] + wilder_settle(a["length"]),
    category="momentum",
    arrays=True,
    example="rsi(close, 14) < 30",
)
def rsi(source: Array, length: int) -> Array:
    """Relative Strength Index, 0..100, with Wilder's smoothing of gains and losses (TA-Lib RSI).
    Warm-up: ``length`` candles, plus about ``7 x length`` for Wilder's slow smoothing
    (alpha = 1 / length) to forget its seed."""
    return _talib("RSI", {"source": source}, timeperiod=length)


def _macd_warmup(a: Mapping[str, Any]) -> int:
    slow, signal = max(a["fast"], a["slow"]), a["signal"]
    return slow - 1 + signal - 1 + ema_settle(slow) + ema_settle(signal)


@SPECS.function(
    "macd",
    [
        series("source", "usually close"),
        length("fast", 12, "fast EMA length", minimum=2),
        length("slow", 26, "slow EMA length", minimum=2),
        length("signal", 9, "signal EMA length"),
    ],
    {"macd": NUMBER, "signal": NUMBER, "hist": NUMBER},
    warmup=_macd_warmup,
    category="momentum",
    arrays=True,
    example="crosses_above(macd(close).macd, macd(close).signal)",
    default_output="macd",
)
def macd(source: Array, fast: int, slow: int, signal: int) -> dict[str, Array]:
    """Moving Average Convergence/Divergence (TA-Lib MACD): ``macd`` = EMA(fast) - EMA(slow),
    ``signal`` = EMA(signal) of macd, ``hist`` = macd - signal. If ``fast`` is longer than ``slow``
    the two are swapped."""
    fast, slow = min(fast, slow), max(fast, slow)
    values = _talib("MACD", {"source": source}, 3, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return _members(values, ["macd", "signal", "hist"])


@SPECS.function(
    "stoch",
    [
        length("k", 14, "look-back of the raw %K"),
        length("d", 3, "SMA length of %D"),
        length("smooth_k", 3, "SMA length smoothing %K"),
        column("high"),
        column("low"),
        column("close"),
    ],
    {"k": NUMBER, "d": NUMBER},
    warmup=lambda a: a["k"] - 1 + a["smooth_k"] - 1 + a["d"] - 1,
    category="momentum",
    arrays=True,
    example="crosses_above(stoch().k, stoch().d) and stoch().k < 20",
    default_output="k",
)
def stoch(k: int, d: int, smooth_k: int, high: Array, low: Array, close: Array) -> dict[str, Array]:
    """Slow stochastic oscillator, 0..100 (TA-Lib STOCH with SMA smoothing): raw %K is where close
    sits in the ``k``-candle high-low range; ``k`` is its ``smooth_k`` SMA, ``d`` the ``d`` SMA of ``k``."""
    values = _talib(
        "STOCH",
        {"high": high, "low": low, "close": close},
        2,
        fastk_period=k,
        slowk_period=smooth_k,
        slowk_matype=0,
        slowd_period=d,
        slowd_matype=0,
    )
    return _members(values, ["k", "d"])


@SPECS.function(
    "cci",
    [length(default=20, minimum=2), column("high"), column("low"), column("close")],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category="momentum",
    arrays=True,
    example="cci(20) > 100",
)
def cci(length: int, high: Array, low: Array, close: Array) -> Array:
    """Commodity Channel Index (TA-Lib CCI): (typical price - its SMA) / (0.015 x mean absolute
    deviation), typical price = (high + low + close) / 3."""
    return _talib("CCI", {"high": high, "low": low, "close": close}, timeperiod=length)


@SPECS.function(
    "willr",
    [length(default=14), column("high"), column("low"), column("close")],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category="momentum",
    arrays=True,
    example="willr(14) < -80",
)
def willr(length: int, high: Array, low: Array, close: Array) -> Array:
    """Williams %R, -100..0 (TA-Lib WILLR): where close sits below the ``length``-candle high,
    -100 at the low, 0 at the high."""
    return _talib("WILLR", {"high": high, "low": low, "close": close}, timeperiod=length)


@SPECS.function(
    "mfi",
    [length(default=14), column("high"), column("low"), column("close"), column("volume")],
    NUMBER,
    warmup=lambda a: a["length"],
    category="volume",
    arrays=True,
    example="mfi(14) > 80",
)
def mfi(length: int, high: Array, low: Array, close: Array, volume: Array) -> Array:
    """Money Flow Index, 0..100 (TA-Lib MFI): an RSI of typical price weighted by volume, summed over
    ``length`` candles."""
    inputs = {"high": high, "low": low, "close": close, "volume": volume}
    return _talib("MFI", inputs, timeperiod=length)


@SPECS.function(
    "obv",
    [column("close"), column("volume")],
    NUMBER,
    warmup=lambda a: 0,
    category="volume",
    arrays=True,
    example="rising(obv(), 3)",
)
def obv(close: Array, volume: Array) -> Array:
    """On-Balance Volume (TA-Lib OBV): a running total adding the candle's volume when close rises and
    subtracting it when close falls. Cumulative: its level depends on where the data starts, so compare
    it with itself (``obv() > obv()[10]``, ``rising(obv(), 3)``), not with a fixed number."""
    return _talib("OBV", {"close": close, "volume": volume})


# ----- volatility ------------------------------------------------------------------------------------


@SPECS.function(
    "atr",
    [length(default=14), column("high"), column("low"), column("close")],
    NUMBER,
    warmup=lambda a: a["length"] + wilder_settle(a["length"]),
    category="volatility",
    arrays=True,
    example="close - 2 * atr(14)",
)
def atr(length: int, high: Array, low: Array, close: Array) -> Array:
    """Average True Range (TA-Lib ATR): Wilder's smoothing of the true range
    ``max(high, close[1]) - min(low, close[1])``. Warm-up includes about ``7 x length`` candles for the
    smoothing to forget its seed."""
    return _talib("ATR", {"high": high, "low": low, "close": close}, timeperiod=length)


@SPECS.function(
    "bbands",
    [
        series("source", "usually close"),
        length(default=20, minimum=2),
        const("std", 2.0, "band width in standard deviations", minimum=0.0),
    ],
    {"lower": NUMBER, "middle": NUMBER, "upper": NUMBER, "bandwidth": NUMBER, "percent": NUMBER},
    warmup=lambda a: a["length"] - 1,
    category="volatility",
    arrays=True,
    example="close < bbands(close, 20, std=2).lower",
    default_output="middle",
)
def bbands(source: Array, length: int, std: float) -> dict[str, Array]:
    """Bollinger Bands (TA-Lib BBANDS): ``middle`` = SMA(length), ``upper``/``lower`` = middle +/- std x
    the population standard deviation; ``bandwidth`` = (upper - lower) / middle as a fraction (compare
    with percent literals: ``.bandwidth < 4%``); ``percent`` (%B) = (source - lower) / (upper - lower):
    0 at the lower band, 1 at the upper."""
    bands = _talib(
        "BBANDS", {"source": source}, 3, timeperiod=length, nbdevup=float(std), nbdevdn=float(std), matype=0
    )
    upper, middle, lower = bands[:, 0], bands[:, 1], bands[:, 2]
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "lower": lower,
            "middle": middle,
            "upper": upper,
            "bandwidth": clean(width / middle),
            "percent": clean((source - lower) / width),
        }


@SPECS.function(
    "donchian",
    [length(default=20), column("high"), column("low")],
    {"lower": NUMBER, "middle": NUMBER, "upper": NUMBER},
    warmup=lambda a: a["length"] - 1,
    category="volatility",
    arrays=True,
    example="close > donchian(20).upper[1]",
    default_output="middle",
)
def donchian(length: int, high: Array, low: Array) -> dict[str, Array]:
    """Donchian channel: ``upper`` = highest high and ``lower`` = lowest low of the last ``length``
    candles (the current one included, so a breakout compares with ``[1]``), ``middle`` their mean."""
    upper = rolling_max(high, length)
    lower = rolling_min(low, length)
    return {"lower": clean(lower), "middle": clean((upper + lower) / 2), "upper": clean(upper)}


@SPECS.function(
    "keltner",
    [
        length(default=20),
        const("multiplier", 2.0, "band width in ATRs", minimum=0.0),
        length("atr_length", 10, "ATR length"),
        column("high"),
        column("low"),
        column("close"),
    ],
    {"lower": NUMBER, "middle": NUMBER, "upper": NUMBER},
    warmup=lambda a: max(
        a["length"] - 1 + ema_settle(a["length"]), a["atr_length"] + wilder_settle(a["atr_length"])
    ),
    category="volatility",
    arrays=True,
    example="close > keltner(20, 2).upper",
    default_output="middle",
)
def keltner(
    length: int, multiplier: float, atr_length: int, high: Array, low: Array, close: Array
) -> dict[str, Array]:
    """Keltner channel: ``middle`` = EMA(close, length), ``upper``/``lower`` = middle +/- multiplier x
    ATR(atr_length) (Wilder's ATR, as in the common EMA-20 / 2 x ATR-10 setup)."""
    middle = ema(close, length)
    band = multiplier * atr(atr_length, high, low, close)
    return {"lower": middle - band, "middle": middle, "upper": middle + band}


# ----- trend -----------------------------------------------------------------------------------------


@SPECS.function(
    "adx",
    [length(default=14, minimum=2), column("high"), column("low"), column("close")],
    {"adx": NUMBER, "plus_di": NUMBER, "minus_di": NUMBER},
    warmup=lambda a: 2 * a["length"] - 1 + 2 * wilder_settle(a["length"]),
    category="trend",
    arrays=True,
    example="adx(14) > 25 and adx(14).plus_di > adx(14).minus_di",
    default_output="adx",
)
def adx(length: int, high: Array, low: Array, close: Array) -> dict[str, Array]:
    """Average Directional Index with the directional indicators (TA-Lib ADX, PLUS_DI, MINUS_DI), all
    0..100: ``adx`` measures trend strength, ``plus_di``/``minus_di`` its direction. Two chained Wilder
    smoothings, hence the long warm-up (about ``16 x length``)."""
    inputs = {"high": high, "low": low, "close": close}
    return {
        "adx": _talib("ADX", inputs, timeperiod=length),
        "plus_di": _talib("PLUS_DI", inputs, timeperiod=length),
        "minus_di": _talib("MINUS_DI", inputs, timeperiod=length),
    }
