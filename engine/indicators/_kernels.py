"""Loops that cannot be vectorised because each step depends on the previous state.

Plain Python over lists: about 0.1 s per 100k candles, without numba's second or two of start-up
(which would dominate ``engine eval`` and live recomputation on a few thousand candles).
"""

from __future__ import annotations

import math

import numpy as np


def supertrend_kernel(hl2: np.ndarray, close: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trailing bands ``hl2 -/+ band`` that only tighten while price respects them; the side flips when
    close crosses the opposite band. Returns (trend line, direction +1/-1), NaN until ``band`` is defined
    and after any undefined input (the state restarts there)."""
    n = len(close)
    trend = [math.nan] * n
    direction = [math.nan] * n
    mid, price, width = hl2.tolist(), close.tolist(), band.tolist()
    started = False
    up_prev = dn_prev = 0.0
    dir_prev = 1.0
    for i in range(n):
        h, c, b = mid[i], price[i], width[i]
        if not (math.isfinite(h) and math.isfinite(c) and math.isfinite(b)):
            started = False
            continue
        up, dn = h - b, h + b
        if started:
            previous_close = price[i - 1]
            if previous_close > up_prev:
                up = max(up, up_prev)
            if previous_close < dn_prev:
                dn = min(dn, dn_prev)
            if dir_prev < 0 and c > dn_prev:
                d = 1.0
            elif dir_prev > 0 and c < up_prev:
                d = -1.0
            else:
                d = dir_prev
        else:
            d = 1.0
            started = True
        trend[i] = up if d > 0 else dn
        direction[i] = d
        up_prev, dn_prev, dir_prev = up, dn, d
    return np.asarray(trend, dtype=np.float64), np.asarray(direction, dtype=np.float64)
