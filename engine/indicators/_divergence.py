"""Divergences between price and any oscillator: regular and hidden, bullish and bearish.

The oscillator is any series expression (``rsi(close, 14)``, ``macd(close).hist``, ``obv()``, a feed);
the rule runs on any timeframe with the usual ``@`` syntax (``bullish_divergence(rsi(close, 14))@1h``).
Pivots are taken on the oscillator, as TradingView's built-in divergence indicator does, and price is
read at the same candles: a pivot counts only once ``right`` candles have closed after it, so the
signal sits on that later candle and never repaints.
"""

from __future__ import annotations

import numpy as np

from dsl.types import BOOL, NUMBER
from engine.indicators._core import SpecList, column, const, flag, length, series
from engine.indicators._pivots import pivot_flags

SPECS = SpecList()

DIVERGENCE = "divergence"


def divergence(
    oscillator: np.ndarray,
    price: np.ndarray,
    *,
    bullish: bool,
    hidden: bool,
    left: int,
    right: int,
    min_distance: int,
    max_distance: int,
) -> np.ndarray:
    """True on the candle that confirms the second of two consecutive oscillator pivots forming the
    divergence (see the spec docs). Arrays in, a bool array out."""
    osc = np.asarray(oscillator, dtype=np.float64)
    px = np.asarray(price, dtype=np.float64)
    n = len(osc)
    out = np.zeros(n, dtype=bool)
    # Bullish divergences compare lows (pivot lows of the oscillator), bearish ones highs.
    sign = -1.0 if bullish else 1.0
    pivots = np.flatnonzero(pivot_flags(sign * osc, left, right))
    if len(pivots) < 2:
        return out
    prev, cur = pivots[:-1], pivots[1:]
    gap = cur - prev
    o_rise = osc[cur] > osc[prev]
    o_fall = osc[cur] < osc[prev]
    p_rise = px[cur] > px[prev]
    p_fall = px[cur] < px[prev]
    if bullish:
        # Regular: price lower low, oscillator higher low. Hidden: price higher low, oscillator lower low.
        match = (p_rise & o_fall) if hidden else (p_fall & o_rise)
    else:
        # Regular: price higher high, oscillator lower high. Hidden: price lower high, oscillator higher high.
        match = (p_fall & o_rise) if hidden else (p_rise & o_fall)
    match &= (gap >= min_distance) & (gap <= max_distance)
    out[cur[match] + right] = True
    return out


def _params(price: str) -> list:
    return [
        series("oscillator", "the oscillator series: rsi(close, 14), macd(close).hist, obv(), a feed ..."),
        flag("hidden", False, "hidden divergence (trend continuation) instead of regular (reversal)"),
        length("left", 5, "pivot width: oscillator values before a pivot that must be higher (lower)"),
        length("right", 5, "candles after a pivot before it counts: the confirmation delay"),
        length("min_distance", 5, "fewest candles between the two pivots"),
        length("max_distance", 60, "most candles between the two pivots"),
        column(price),
    ]


def _warmup(a) -> int:
    return a["max_distance"] + a["left"] + a["right"] + 1


_COMMON = (
    "Pivots are taken on the oscillator (a pivot is beyond the ``left`` values before it and not "
    "exceeded by the ``right`` values after it) and compared with the previous pivot of the same kind "
    "when the two are ``min_distance`` to ``max_distance`` candles apart; price is read on the two "
    "pivot candles. True on the candle ``right`` candles after the second pivot (when it becomes "
    "known), false elsewhere. On another timeframe (``...@1h``) the value of the last closed candle of "
    "that timeframe holds until the next one closes."
)


def _with_common(impl):
    impl.__doc__ = (impl.__doc__ or "") + " " + _COMMON
    return impl


@SPECS.function(
    "bullish_divergence",
    _params("low"),
    BOOL,
    warmup=_warmup,
    category=DIVERGENCE,
    example="bullish_divergence(rsi(close, 14))@1h and crosses_above(close, ema(close, 20))",
    arrays=True,
)
@_with_common
def bullish_divergence(
    oscillator: np.ndarray,
    hidden: bool,
    left: int,
    right: int,
    min_distance: int,
    max_distance: int,
    low: np.ndarray,
) -> np.ndarray:
    """Bullish divergence between price lows and an oscillator's pivot lows. Regular (``hidden=false``,
    a reversal sign): price makes a lower low while the oscillator makes a higher low. Hidden
    (``hidden=true``, an uptrend continuing): price makes a higher low while the oscillator makes a
    lower low."""
    return divergence(
        oscillator,
        low,
        bullish=True,
        hidden=hidden,
        left=left,
        right=right,
        min_distance=min_distance,
        max_distance=max_distance,
    )


@SPECS.function(
    "bearish_divergence",
    _params("high"),
    BOOL,
    warmup=_warmup,
    category=DIVERGENCE,
    example="bearish_divergence(macd(close).hist, hidden=true, right=3)",
    arrays=True,
)
@_with_common
def bearish_divergence(
    oscillator: np.ndarray,
    hidden: bool,
    left: int,
    right: int,
    min_distance: int,
    max_distance: int,
    high: np.ndarray,
) -> np.ndarray:
    """Bearish divergence between price highs and an oscillator's pivot highs. Regular
    (``hidden=false``, a reversal sign): price makes a higher high while the oscillator makes a lower
    high. Hidden (``hidden=true``, a downtrend continuing): price makes a lower high while the
    oscillator makes a higher high."""
    return divergence(
        oscillator,
        high,
        bullish=False,
        hidden=hidden,
        left=left,
        right=right,
        min_distance=min_distance,
        max_distance=max_distance,
    )


@SPECS.function(
    "consensus_shift",
    [
        series("top", "what the large traders hold: pos.top_position_ratio (a long/short ratio)"),
        series("crowd", "what everyone holds: pos.global_account_ratio"),
        const("level", 1.0, "the neutral level: 1 for long/short ratios, 0.5 for long shares", minimum=0.0),
    ],
    NUMBER,
    warmup=lambda a: 1,
    category=DIVERGENCE,
    # The usual arguments are feed members (pos.top_position_ratio, ...), which need a project's feeds.yaml.
    example="consensus_shift(close / sma(close, 50), close@1h / sma(close@1h, 50)) > 0",
    arrays=True,
)
def consensus_shift(top: np.ndarray, crowd: np.ndarray, level: float) -> np.ndarray:
    """+1 on the candle where ``top`` crosses above ``level`` (the large traders turn net long) while
    ``crowd`` is below it (the crowd is net short); -1 on the candle where ``top`` crosses below
    ``level`` while ``crowd`` is above it; 0 otherwise, and 0 while either is unknown (NaN). With the
    futures positioning feed (docs/feeds.md, ``source: positioning``), ``top`` is usually the top
    traders' position ratio and ``crowd`` the global account ratio:
    ``consensus_shift(pos.top_position_ratio, pos.global_account_ratio) > 0``."""
    top = np.asarray(top, dtype=np.float64)
    crowd = np.asarray(crowd, dtype=np.float64)
    before = np.concatenate(([np.nan], top[:-1]))
    with np.errstate(invalid="ignore"):
        up = (top > level) & (before <= level) & (crowd < level)
        down = (top < level) & (before >= level) & (crowd > level)
    return up.astype(np.float64) - down.astype(np.float64)
