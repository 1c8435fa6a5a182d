"""Labels look forward by design; everything else must not. Each row's label interval is
``[i, i + horizon]`` (candle indexes): the walk-forward purges training rows whose interval reaches
into the predicted period, so no label ever overlaps what it is evaluated on.

Classes are integers: SELL = 0, HOLD = 1, BUY = 2; -1 marks a row whose label is not known yet
(the last ``horizon`` candles) or cannot be computed (NaN prices).
"""

from __future__ import annotations

import numpy as np

from engine.config._model import DirectionLabel, TripleBarrierLabel

__all__ = [
    "BUY",
    "CLASSES",
    "HOLD",
    "SELL",
    "UNKNOWN",
    "direction_labels",
    "make_labels",
    "triple_barrier_labels",
]

SELL, HOLD, BUY, UNKNOWN = 0, 1, 2, -1
CLASSES = ("sell", "hold", "buy")


def direction_labels(close: np.ndarray, horizon: int, dead_band: float) -> np.ndarray:
    """BUY when close[i + horizon] / close[i] - 1 > band, SELL when it is <= -band (with a zero band:
    <= 0, so there are two classes), HOLD between."""
    n = len(close)
    out = np.full(n, UNKNOWN, dtype=np.int8)
    if n <= horizon:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = close[horizon:] / close[:-horizon] - 1.0
    known = np.isfinite(ret)
    head = out[: n - horizon]
    if dead_band > 0:
        head[known] = HOLD
        head[known & (ret > dead_band)] = BUY
        head[known & (ret < -dead_band)] = SELL
    else:
        head[known] = SELL
        head[known & (ret > 0)] = BUY
    return out


def triple_barrier_labels(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    horizon: int,
    profit: float,
    stop: float,
    window: int,
) -> np.ndarray:
    """BUY when the high reaches close * (1 + profit * vol) before the low reaches close * (1 - stop * vol)
    within ``horizon`` candles, SELL for the opposite, HOLD when neither is touched (time limit). When both
    are touched within the same candle the stop counts first (the cautious reading). ``vol`` is the
    standard deviation of the last ``window`` close-to-close returns, known at the row's close."""
    n = len(close)
    out = np.full(n, UNKNOWN, dtype=np.int8)
    if n <= horizon:
        return out
    returns = np.full(n, np.nan)
    returns[1:] = close[1:] / close[:-1] - 1.0
    # Rolling standard deviation through cumulative sums (causal: rows up to i only).
    filled = np.nan_to_num(returns)
    valid = np.isfinite(returns).astype(np.float64)
    c1 = np.concatenate(([0.0], np.cumsum(filled)))
    c2 = np.concatenate(([0.0], np.cumsum(filled * filled)))
    cn = np.concatenate(([0.0], np.cumsum(valid)))
    vol = np.full(n, np.nan)
    idx = np.arange(window, n + 1)
    count = cn[idx] - cn[idx - window]
    mean = (c1[idx] - c1[idx - window]) / np.maximum(count, 1)
    var = (c2[idx] - c2[idx - window]) / np.maximum(count, 1) - mean * mean
    vol[window - 1 :] = np.where(
        count >= 2, np.sqrt(np.maximum(var, 0.0) * count / np.maximum(count - 1, 1)), np.nan
    )
    rows = n - horizon
    upper = close[:rows] * (1 + profit * vol[:rows])
    lower = close[:rows] * (1 - stop * vol[:rows])
    first_up = np.full(rows, horizon + 1)
    first_down = np.full(rows, horizon + 1)
    # One vectorised pass per step ahead: horizon is small (tens of candles), rows are many.
    for k in range(horizon, 0, -1):
        hit_up = high[k : k + rows] >= upper
        hit_down = low[k : k + rows] <= lower
        first_up[hit_up] = k
        first_down[hit_down] = k
    known = np.isfinite(vol[:rows]) & np.isfinite(close[:rows])
    head = out[:rows]
    head[known] = HOLD
    head[known & (first_up < first_down)] = BUY
    head[known & (first_down <= first_up) & (first_down <= horizon)] = SELL
    return out


def make_labels(
    label: DirectionLabel | TripleBarrierLabel, close: np.ndarray, high: np.ndarray, low: np.ndarray
) -> np.ndarray:
    """The label array of one pair's candles for the model's label spec."""
    if isinstance(label, DirectionLabel):
        return direction_labels(close, label.horizon, label.dead_band)
    return triple_barrier_labels(close, high, low, label.horizon, label.profit, label.stop, label.volatility)
