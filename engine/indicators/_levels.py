"""Price levels: confirmed swing highs/lows with support and resistance, Fibonacci retracements of the
recent range, and a rolling volume profile (point of control, value area).

Everything is causal by construction: a swing point is only known ``right`` candles after it happens,
so its level appears on that later candle, never on the swing candle itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from dsl.types import NUMBER
from engine.indicators._core import SpecList, as_float, column, const, length, text

SPECS = SpecList()

LEVELS = "levels"


def _swings(values: pd.Series, left: int, right: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """(confirmed, level): on candle t, whether candle t - right is a swing point and its price.

    A swing high is the highest value of the ``left + right + 1`` candles around it and strictly higher
    than each of the ``left`` candles before it (so of a flat top, the first candle counts). Swing lows
    are swing highs of the negated series.
    """
    x = sign * values
    candidate = x.shift(right)
    window = x.rolling(left + right + 1, min_periods=left + right + 1).max()
    before = x.shift(right + 1).rolling(left, min_periods=left).max()
    confirmed = ((candidate == window) & (candidate > before)).to_numpy()
    return confirmed, (sign * candidate).to_numpy(dtype=np.float64)


def _nearest(
    confirmed: np.ndarray, level: np.ndarray, lookback: int, price: np.ndarray, above: bool
) -> np.ndarray:
    """Per candle, the level closest to ``price`` on the given side among the swing points confirmed in
    the last ``lookback`` candles (NaN if none).

    Swing points are sparse (two swing highs are more than min(left, right) candles apart), so this walks
    back over the k-th latest swing point, k < the most any window holds, one vectorised pass each.
    """
    n = len(price)
    points = np.flatnonzero(confirmed)
    best = np.full(n, np.nan)
    if not len(points):
        return best
    t = np.arange(n)
    latest = np.searchsorted(points, t, side="right") - 1
    oldest = np.searchsorted(points, t - lookback, side="right")
    depth = int((latest - oldest + 1).max())
    reduce = np.fmin if above else np.fmax
    for k in range(depth):
        j = latest - k
        ok = j >= oldest
        value = level[points[np.clip(j, 0, None)]]
        ok &= (value > price) if above else (value < price)
        best = reduce(best, np.where(ok, value, np.nan))
    return best


def _latest(confirmed: np.ndarray, level: np.ndarray, lookback: int) -> np.ndarray:
    positions = np.arange(len(level), dtype=np.float64)
    last = pd.Series(np.where(confirmed, positions, np.nan)).ffill().to_numpy()
    value = pd.Series(np.where(confirmed, level, np.nan)).ffill().to_numpy()
    return np.where(positions - last < lookback, value, np.nan)


def _swing_params(price: str) -> list:
    return [
        length("left", 5, "candles before the swing point that must be lower (higher for lows)"),
        length("right", 5, "candles after it that must not exceed it: the confirmation delay"),
        length("lookback", 100, "only swing points confirmed in the last `lookback` candles count"),
        column(price),
    ]


def _swing_warmup(a) -> int:
    return a["left"] + a["right"] + a["lookback"] - 1


@SPECS.function(
    "swing_high",
    _swing_params("high"),
    NUMBER,
    warmup=_swing_warmup,
    category=LEVELS,
    example="close > swing_high(5, 5)",
)
def swing_high(left: int, right: int, lookback: int, high: pd.Series) -> pd.Series:
    """Price of the most recent confirmed swing high. Candle i is a swing high when its high is above
    the ``left`` highs before it and not below the ``right`` highs after it; that is known on candle
    i + right, so the level appears there. NaN when no swing high was confirmed in the last
    ``lookback`` candles (bounding the memory keeps live values equal to backtest values)."""
    confirmed, level = _swings(high, left, right, 1.0)
    return as_float(_latest(confirmed, level, lookback), high.index)


@SPECS.function(
    "swing_low",
    _swing_params("low"),
    NUMBER,
    warmup=_swing_warmup,
    category=LEVELS,
    example="close < swing_low(5, 5)",
)
def swing_low(left: int, right: int, lookback: int, low: pd.Series) -> pd.Series:
    """Price of the most recent confirmed swing low (the mirror of ``swing_high``: a low below the
    ``left`` lows before it and not above the ``right`` lows after it, known ``right`` candles later)."""
    confirmed, level = _swings(low, left, right, -1.0)
    return as_float(_latest(confirmed, level, lookback), low.index)


@SPECS.function(
    "resistance",
    [*_swing_params("high"), column("close")],
    NUMBER,
    warmup=_swing_warmup,
    category=LEVELS,
    example="(resistance(5, 5) - close) / close < 0.5%",
)
def resistance(left: int, right: int, lookback: int, high: pd.Series, close: pd.Series) -> pd.Series:
    """Nearest resistance: the lowest swing high (see ``swing_high``) confirmed in the last ``lookback``
    candles that is above the current close. NaN when price is above all of them."""
    confirmed, level = _swings(high, left, right, 1.0)
    price = close.to_numpy(dtype=np.float64)
    return as_float(_nearest(confirmed, level, lookback, price, above=True), close.index)


@SPECS.function(
    "support",
    [*_swing_params("low"), column("close")],
    NUMBER,
    warmup=_swing_warmup,
    category=LEVELS,
    example="close < support(5, 5) * 1.002",
)
def support(left: int, right: int, lookback: int, low: pd.Series, close: pd.Series) -> pd.Series:
    """Nearest support: the highest swing low (see ``swing_low``) confirmed in the last ``lookback``
    candles that is below the current close. NaN when price is below all of them."""
    confirmed, level = _swings(low, left, right, -1.0)
    price = close.to_numpy(dtype=np.float64)
    return as_float(_nearest(confirmed, level, lookback, price, above=False), close.index)


# ----- Fibonacci -------------------------------------------------------------------------------------


def _last_extreme_position(values: np.ndarray, length: int, highest: bool) -> np.ndarray:
    """Per candle, how many candles ago the highest (lowest) value of the window was, latest on ties."""
    windows = sliding_window_view(values, length)[:, ::-1]  # column 0 is the current candle
    picked = np.argmax(windows, axis=1) if highest else np.argmin(windows, axis=1)
    return np.concatenate((np.full(length - 1, -1), picked))


@SPECS.function(
    "fib",
    [
        length(default=100, doc="candles in the range"),
        const(
            "level",
            0.618,
            "retracement ratio: 0.236, 0.382, 0.5, 0.618, 0.786 (above 1: extension)",
            minimum=0.0,
            maximum=10.0,
        ),
        text("trend", ("auto", "up", "down"), "auto", "direction of the swing being retraced"),
        column("high"),
        column("low"),
    ],
    NUMBER,
    warmup=lambda a: a["length"] - 1,
    category=LEVELS,
    example="crosses_below(close, fib(100, 0.618))",
)
def fib(length: int, level: float, trend: str, high: pd.Series, low: pd.Series) -> pd.Series:
    """Fibonacci retracement level of the last ``length`` candles' range (highest high H, lowest low L,
    current candle included). In an up-swing (the low came before the high) the level is measured down
    from the high: ``H - level x (H - L)``; in a down-swing up from the low: ``L + level x (H - L)``.
    ``trend="auto"`` decides by which extreme is more recent (latest occurrence on ties; a candle holding
    both counts as an up-swing); ``"up"``/``"down"`` force a direction. Level 0 is the latest extreme,
    1 the opposite one."""
    index = high.index
    hh = high.rolling(length, min_periods=length).max().to_numpy()
    ll = low.rolling(length, min_periods=length).min().to_numpy()
    span = hh - ll
    down_from_high = hh - level * span
    up_from_low = ll + level * span
    if trend == "up":
        value = down_from_high
    elif trend == "down":
        value = up_from_low
    else:
        h, lo = high.to_numpy(dtype=np.float64), low.to_numpy(dtype=np.float64)
        if len(h) < length:
            return as_float(np.full(len(h), np.nan), index)
        # NaN candles make argmax meaningless; the rolling extremes above are NaN there anyway.
        since_high = _last_extreme_position(np.nan_to_num(h, nan=-np.inf), length, True)
        since_low = _last_extreme_position(np.nan_to_num(lo, nan=np.inf), length, False)
        value = np.where(since_low >= since_high, down_from_high, up_from_low)
    return as_float(value, index)


# ----- volume profile ----------------------------------------------------------------------------------


def _profile(
    typical: np.ndarray, volume: np.ndarray, lows: np.ndarray, highs: np.ndarray, length: int, bins: int
) -> np.ndarray:
    """(rows, bins) volume histogram of each complete window, each over its own low..high range."""
    tp = sliding_window_view(typical, length)
    vol = sliding_window_view(volume, length)
    rows = tp.shape[0]
    width = (highs - lows) / bins
    safe = np.where(width > 0, width, 1.0)
    slot = np.floor((tp - lows[:, None]) / safe[:, None])
    slot = np.clip(np.nan_to_num(slot, nan=0.0), 0, bins - 1).astype(np.int64)
    flat = (np.arange(rows)[:, None] * bins + slot).ravel()
    weights = np.nan_to_num(vol, nan=0.0).ravel()
    return np.bincount(flat, weights=weights, minlength=rows * bins).reshape(rows, bins)


def _value_area(hist: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point-of-control bin and the value area's lowest/highest bins, grown one bin at a time from the
    POC towards the heavier neighbour until it holds ``share`` of the volume."""
    rows, bins = hist.shape
    poc = np.argmax(hist, axis=1)
    lo, hi = poc.copy(), poc.copy()
    covered = hist[np.arange(rows), poc]
    target = share * hist.sum(axis=1)
    r = np.arange(rows)
    for _ in range(bins - 1):
        active = covered < target - 1e-12 * target
        if not active.any():
            break
        below = np.where(lo > 0, hist[r, np.maximum(lo - 1, 0)], -1.0)
        above = np.where(hi < bins - 1, hist[r, np.minimum(hi + 1, bins - 1)], -1.0)
        go_up = active & (above >= below)
        go_down = active & ~go_up
        hi = np.where(go_up, hi + 1, hi)
        lo = np.where(go_down, lo - 1, lo)
        covered = covered + np.where(go_up, above, 0.0) + np.where(go_down, below, 0.0)
    return poc, lo, hi


@SPECS.function(
    "volume_profile",
    [
        length(default=100, doc="candles in the profile"),
        length("bins", 24, "price bins between the window's low and high", minimum=2, maximum=500),
        const("value_area", 0.7, "share of the volume in the value area", minimum=0.0, maximum=1.0),
        column("high"),
        column("low"),
        column("close"),
        column("volume"),
    ],
    {"poc": NUMBER, "vah": NUMBER, "val": NUMBER},
    warmup=lambda a: a["length"] - 1,
    category=LEVELS,
    example="close > volume_profile(200).vah",
    default_output="poc",
)
def volume_profile(
    length: int,
    bins: int,
    value_area: float,
    high: pd.Series,
    low: pd.Series,
    close: pd.Series,
    volume: pd.Series,
) -> pd.DataFrame:
    """Rolling volume profile of the last ``length`` candles. The window's low..high range is cut into
    ``bins`` equal price bins and each candle's whole volume goes to the bin of its typical price
    (high + low + close) / 3. ``poc`` (point of control) is the middle of the heaviest bin (the lowest
    one on ties); the value area starts at that bin and adds the heavier neighbouring bin (the upper one
    on ties) until it holds ``value_area`` of the volume: ``val``/``vah`` are its lower and upper edges.
    NaN while the window has no volume."""
    index = close.index
    n = len(index)
    out = np.full((n, 3), np.nan)
    if n >= length:
        typical = ((high + low + close) / 3).to_numpy(dtype=np.float64)
        vol = volume.to_numpy(dtype=np.float64)
        lows = low.rolling(length, min_periods=length).min().to_numpy()[length - 1 :]
        highs = high.rolling(length, min_periods=length).max().to_numpy()[length - 1 :]
        # Chunks bound the (rows x length) temporaries on long histories.
        step = max(1, 2_000_000 // length)
        for start in range(0, len(lows), step):
            stop = min(start + step, len(lows))
            hist = _profile(
                typical[start : stop + length - 1],
                vol[start : stop + length - 1],
                lows[start:stop],
                highs[start:stop],
                length,
                bins,
            )
            poc, lo, hi = _value_area(hist, value_area)
            width = (highs[start:stop] - lows[start:stop]) / bins
            base = lows[start:stop]
            empty = hist.sum(axis=1) <= 0
            rows = slice(start + length - 1, stop + length - 1)
            out[rows, 0] = np.where(empty, np.nan, base + (poc + 0.5) * width)
            out[rows, 1] = np.where(empty, np.nan, base + (hi + 1) * width)
            out[rows, 2] = np.where(empty, np.nan, base + lo * width)
    return pd.DataFrame({"poc": out[:, 0], "vah": out[:, 1], "val": out[:, 2]}, index=index)
