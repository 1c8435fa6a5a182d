"""A stand-in for the built-in function registry with the same signatures as engine.indicators'
curated functions, so configuration tests do not depend on the indicator library's internals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsl import BOOL, NUMBER, NUMBER_CONST, STRING_CONST, Column, Param, Registry

PATTERNS = ("doji", "engulfing", "hammer", "harami", "morningstar", "eveningstar", "shootingstar")


def _length(name: str = "length", default: object = None, minimum: int = 1) -> Param:
    if default is None:
        return Param(name, NUMBER_CONST, integer=True, min=minimum)
    return Param(name, NUMBER_CONST, default=default, integer=True, min=minimum)


def _column(name: str) -> Param:
    return Param(name, NUMBER, default=Column(name), keyword_only=True)


def make_registry() -> Registry:
    registry = Registry()

    @registry.function("sma", [Param("source", NUMBER), _length()], NUMBER, warmup=lambda a: a["length"] - 1)
    def sma(source: pd.Series, length: int) -> pd.Series:
        """Simple moving average."""
        return source.rolling(length).mean()

    @registry.function("ema", [Param("source", NUMBER), _length()], NUMBER, warmup=lambda a: 3 * a["length"])
    def ema(source: pd.Series, length: int) -> pd.Series:
        """Exponential moving average."""
        return source.ewm(span=length, adjust=False, min_periods=length).mean()

    @registry.function(
        "rsi", [Param("source", NUMBER), _length(default=14)], NUMBER, warmup=lambda a: 3 * a["length"]
    )
    def rsi(source: pd.Series, length: int) -> pd.Series:
        """Relative strength index (Wilder)."""
        delta = source.diff()
        up = delta.clip(lower=0).ewm(alpha=1 / length, adjust=False, min_periods=length).mean()
        down = (-delta.clip(upper=0)).ewm(alpha=1 / length, adjust=False, min_periods=length).mean()
        return 100 - 100 / (1 + up / down)

    @registry.function(
        "atr",
        [_length(default=14), _column("high"), _column("low"), _column("close")],
        NUMBER,
        warmup=lambda a: a["length"],
    )
    def atr(length: int, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
        """Average true range (simple mean of the true range)."""
        previous = close.shift(1)
        ranges = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1)
        return ranges.max(axis=1).rolling(length).mean()

    @registry.function(
        "bbands",
        [
            Param("source", NUMBER),
            _length(default=20, minimum=2),
            Param("std", NUMBER_CONST, default=2.0, min=0.0),
        ],
        {"lower": NUMBER, "middle": NUMBER, "upper": NUMBER},
        warmup=lambda a: a["length"] - 1,
        default_output="middle",
    )
    def bbands(source: pd.Series, length: int, std: float) -> pd.DataFrame:
        """Bollinger bands."""
        middle = source.rolling(length).mean()
        width = std * source.rolling(length).std(ddof=0)
        return pd.DataFrame({"lower": middle - width, "middle": middle, "upper": middle + width})

    @registry.function(
        "donchian",
        [_length(default=20), _column("high"), _column("low")],
        {"lower": NUMBER, "middle": NUMBER, "upper": NUMBER},
        warmup=lambda a: a["length"] - 1,
        default_output="middle",
    )
    def donchian(length: int, high: pd.Series, low: pd.Series) -> pd.DataFrame:
        """Donchian channel."""
        upper, lower = high.rolling(length).max(), low.rolling(length).min()
        return pd.DataFrame({"lower": lower, "middle": (upper + lower) / 2, "upper": upper})

    @registry.function(
        "macd",
        [
            Param("source", NUMBER),
            _length("fast", 12, minimum=2),
            _length("slow", 26, minimum=2),
            _length("signal", 9),
        ],
        {"macd": NUMBER, "signal": NUMBER, "hist": NUMBER},
        warmup=lambda a: 3 * (a["slow"] + a["signal"]),
        default_output="macd",
    )
    def macd(source: pd.Series, fast: int, slow: int, signal: int) -> pd.DataFrame:
        """Moving average convergence/divergence."""
        line = source.ewm(span=fast, adjust=False).mean() - source.ewm(span=slow, adjust=False).mean()
        trigger = line.ewm(span=signal, adjust=False).mean()
        return pd.DataFrame({"macd": line, "signal": trigger, "hist": line - trigger})

    for name, op in (("crosses_above", np.greater), ("crosses_below", np.less)):

        def cross(a: pd.Series, b: pd.Series, op=op) -> pd.Series:
            """a crosses b."""
            now = op(a, b)
            return now & ~now.shift(1, fill_value=True)

        registry.function(name, [Param("a", NUMBER), Param("b", NUMBER)], BOOL, warmup=lambda a: 1)(cross)

    for name, pick in (("highest", "max"), ("lowest", "min")):

        def extreme(source: pd.Series, length: int, pick=pick) -> pd.Series:
            """Rolling extreme."""
            return getattr(source.rolling(length), pick)()

        registry.function(
            name, [Param("source", NUMBER), _length()], NUMBER, warmup=lambda a: a["length"] - 1
        )(extreme)

    @registry.function(
        "pattern",
        [
            Param("name", STRING_CONST, choices=PATTERNS),
            Param("direction", STRING_CONST, default="any", choices=("any", "bullish", "bearish")),
            _column("open"),
            _column("high"),
            _column("low"),
            _column("close"),
        ],
        BOOL,
    )
    def pattern(name: str, direction: str, open: pd.Series, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
        """A crude stand-in recogniser: hammer-like candles (long lower wick)."""
        body = (close - open).abs()
        lower_wick = np.minimum(open, close) - low
        found = lower_wick > 2 * body
        if direction == "bearish":
            found &= close < open
        elif direction == "bullish":
            found &= close >= open
        return found

    return registry
