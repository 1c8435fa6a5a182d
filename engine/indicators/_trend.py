"""Trend overlays with hand-written signatures: supertrend, ichimoku (without the look-ahead chikou) and
a session-anchored VWAP."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsl.types import NUMBER
from engine.indicators._core import SpecList, as_float, column, const, length, text, wilder_settle
from engine.indicators._curated import atr

SPECS = SpecList()


@SPECS.function(
    "supertrend",
    [
        length(default=10, doc="ATR length"),
        const("multiplier", 3.0, "band distance in ATRs", minimum=0.0),
        column("high"),
        column("low"),
        column("close"),
    ],
    {"trend": NUMBER, "direction": NUMBER, "long": NUMBER, "short": NUMBER},
    # The ATR settles like any Wilder smoothing; the band state then re-synchronises at the first flip.
    warmup=lambda a: a["length"] + wilder_settle(a["length"]),
    category="trend",
    example="supertrend(10, 3).direction > 0",
    default_output="trend",
)
def supertrend(
    length: int, multiplier: float, high: pd.Series, low: pd.Series, close: pd.Series
) -> pd.DataFrame:
    """SuperTrend (the common TradingView definition): bands at ``hl2 +/- multiplier x ATR(length)``;
    the lower band only rises while the previous close stays above it, the upper band only falls while
    the previous close stays below it; ``direction`` turns +1 when close crosses above the upper band and
    -1 when it crosses below the lower band. ``trend`` is the active band (a trailing stop), ``long`` the
    band while direction is +1 (NaN otherwise), ``short`` the band while it is -1. The state depends on
    the path: after the warm-up, runs started at different candles agree from their first common flip."""
    from engine.indicators._kernels import supertrend_kernel

    hl2 = ((high + low) / 2).to_numpy(dtype=np.float64)
    band = (multiplier * atr(length, high, low, close)).to_numpy(dtype=np.float64)
    trend, direction = supertrend_kernel(hl2, close.to_numpy(dtype=np.float64), band)
    index = close.index
    return pd.DataFrame(
        {
            "trend": trend,
            "direction": direction,
            "long": np.where(direction > 0, trend, np.nan),
            "short": np.where(direction < 0, trend, np.nan),
        },
        index=index,
    )


def _midpoint(high: pd.Series, low: pd.Series, length: int) -> pd.Series:
    return (
        high.rolling(length, min_periods=length).max() + low.rolling(length, min_periods=length).min()
    ) / 2


@SPECS.function(
    "ichimoku",
    [
        length("conversion", 9, "Tenkan-sen length"),
        length("base", 26, "Kijun-sen length; also the cloud's displacement"),
        length("span", 52, "Senkou span B length"),
        column("high"),
        column("low"),
    ],
    {"conversion": NUMBER, "base": NUMBER, "span_a": NUMBER, "span_b": NUMBER},
    warmup=lambda a: max(a["conversion"], a["base"], a["span"]) - 1 + a["base"] - 1,
    category="trend",
    example="close > ichimoku().span_a and close > ichimoku().span_b",
    default_output="base",
)
def ichimoku(conversion: int, base: int, span: int, high: pd.Series, low: pd.Series) -> pd.DataFrame:
    """Ichimoku Kinko Hyo. ``conversion`` (Tenkan-sen) and ``base`` (Kijun-sen) are the midpoints of
    the ``conversion``/``base``-candle high-low ranges. ``span_a``/``span_b`` are the cloud as drawn under
    the current candle: (conversion + base) / 2 and the ``span``-candle midpoint, computed ``base - 1``
    candles earlier (TradingView's displacement). The lagging span (chikou) is left out: it is the close
    drawn in the past, so using it in a rule would read the future."""
    tenkan = _midpoint(high, low, conversion)
    kijun = _midpoint(high, low, base)
    shift = base - 1
    index = high.index
    return pd.DataFrame(
        {
            "conversion": as_float(tenkan, index),
            "base": as_float(kijun, index),
            "span_a": as_float(((tenkan + kijun) / 2).shift(shift), index),
            "span_b": as_float(_midpoint(high, low, span).shift(shift), index),
        },
        index=index,
    )


_DAY_NS = 86_400 * 1_000_000_000
ANCHORS = ("day", "week", "month")


def _sessions(index: pd.DatetimeIndex, anchor: str) -> tuple[np.ndarray, bool]:
    """An id per candle for its UTC session, and whether the first session is complete in the data."""
    utc = index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
    ns = utc.as_unit("ns").asi8
    day = ns // _DAY_NS
    if anchor == "day":
        ids, start = day, day[:1] * _DAY_NS
    elif anchor == "week":
        ids = (day + 3) // 7  # 1970-01-01 was a Thursday; weeks start on Monday
        start = (ids[:1] * 7 - 3) * _DAY_NS
    else:
        ids = np.asarray(utc.year * 12 + utc.month - 1, dtype=np.int64)
        first = utc[:1]
        start = (
            pd.DatetimeIndex([pd.Timestamp(year=t.year, month=t.month, day=1, tz="UTC") for t in first])
            .as_unit("ns")
            .asi8
        )
    complete = bool(len(ns)) and ns[0] == start[0]
    return ids, complete


_SESSION_SECONDS = {"day": 86_400, "week": 7 * 86_400, "month": 31 * 86_400}


def _session_bars(anchor: str, timeframe: str | None) -> int:
    """One whole session of candles: the first, partly covered session is undefined (see vwap)."""
    if timeframe is None:
        return 0
    from dsl.timeframes import timeframe_seconds

    return -(-_SESSION_SECONDS[anchor] // timeframe_seconds(timeframe))


@SPECS.function(
    "vwap",
    [
        text("anchor", ANCHORS, "day", "the UTC session the average restarts at"),
        column("high"),
        column("low"),
        column("close"),
        column("volume"),
    ],
    NUMBER,
    warmup=lambda a: _session_bars(a["anchor"], a.get("_timeframe")),
    category="volume",
    example="close > vwap()",
)
def vwap(anchor: str, high: pd.Series, low: pd.Series, close: pd.Series, volume: pd.Series) -> pd.Series:
    """Volume-weighted average price of the typical price (high + low + close) / 3, restarting at each
    UTC day (or Monday 00:00 UTC week, or calendar month). Undefined for a first session the data only
    partly covers (its value would depend on where the data starts) and while a session has had no
    volume yet. Live, keep at least one session of history."""
    index = close.index
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError("vwap() needs candles indexed by time (a DatetimeIndex)")
    ids, complete = _sessions(index, anchor)
    typical = ((high + low + close) / 3).to_numpy(dtype=np.float64)
    vol = volume.to_numpy(dtype=np.float64)
    frame = pd.DataFrame({"pv": typical * vol, "v": vol, "id": ids})
    sums = frame.groupby("id", sort=False)[["pv", "v"]].cumsum()
    with np.errstate(divide="ignore", invalid="ignore"):
        value = sums["pv"].to_numpy() / sums["v"].to_numpy()
    if not complete and len(ids):
        value[ids == ids[0]] = np.nan
    return as_float(value, index)
