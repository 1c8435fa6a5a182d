"""A small registry for DSL tests, independent of the engine's indicator library."""

from __future__ import annotations

import pandas as pd

from dsl import BOOL, NUMBER, NUMBER_CONST, STRING_CONST, Column, Param, Registry


def make_registry() -> Registry:
    registry = Registry()

    @registry.function(
        "sma",
        [Param("source", NUMBER), Param("length", NUMBER_CONST, integer=True, min=1)],
        NUMBER,
        warmup=lambda a: a["length"] - 1,
    )
    def sma(source: pd.Series, length: int) -> pd.Series:
        """Simple moving average."""
        return source.rolling(length).mean()

    @registry.function(
        "ema",
        [Param("source", NUMBER), Param("length", NUMBER_CONST, integer=True, min=1)],
        NUMBER,
        warmup=lambda a: 3 * a["length"],
    )
    def ema(source: pd.Series, length: int) -> pd.Series:
        """Exponential moving average."""
        return source.ewm(span=length, adjust=False, min_periods=length).mean()

    @registry.function(
        "atr",
        [
            Param("length", NUMBER_CONST, default=14, integer=True, min=1),
            Param("high", NUMBER, default=Column("high"), keyword_only=True),
            Param("low", NUMBER, default=Column("low"), keyword_only=True),
            Param("close", NUMBER, default=Column("close"), keyword_only=True),
        ],
        NUMBER,
        warmup=lambda a: a["length"],
    )
    def atr(length: int, high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
        """Average true range (simple mean of the true range)."""
        previous = close.shift(1)
        true_range = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1).max(
            axis=1
        )
        return true_range.rolling(length).mean()

    @registry.function(
        "bands",
        [Param("source", NUMBER), Param("length", NUMBER_CONST, default=20, integer=True, min=2)],
        {"lower": NUMBER, "middle": NUMBER, "upper": NUMBER},
        warmup=lambda a: a["length"] - 1,
        default_output="middle",
    )
    def bands(source: pd.Series, length: int) -> pd.DataFrame:
        """Mean +- 2 standard deviations."""
        middle = source.rolling(length).mean()
        width = 2 * source.rolling(length).std(ddof=0)
        return pd.DataFrame({"lower": middle - width, "middle": middle, "upper": middle + width})

    @registry.function("crosses_above", [Param("a", NUMBER), Param("b", NUMBER)], BOOL, warmup=lambda a: 1)
    def crosses_above(a: pd.Series, b: pd.Series) -> pd.Series:
        """a goes from <= b to > b."""
        return (a > b) & (a.shift(1) <= b.shift(1))

    @registry.function(
        "pattern",
        [Param("name", STRING_CONST, choices=("hammer", "doji", "engulfing"))],
        BOOL,
    )
    def pattern(name: str) -> pd.Series:  # pragma: no cover - only type-checked in these tests
        """Placeholder signature for checker tests."""
        raise NotImplementedError

    return registry
