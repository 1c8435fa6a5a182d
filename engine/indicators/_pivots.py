"""Confirmed pivots (swing highs and lows) as sparse arrays, for chart patterns and divergences.

A pivot high at candle i is a high above each of the ``left`` highs before it and not below any of the
``right`` highs after it (the first candle of a flat top counts), so it is only *known* on candle
i + right: its ``confirmed`` candle. Pivot lows mirror it. Everything here works on plain arrays and
looks at a bounded window, so a function built on it gives the same values whatever candle its history
starts at, once it is ``left + right`` plus its own window past that start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.indicators._core import rolling_max

__all__ = ["Pivots", "alternating_tail", "find_pivots", "pivot_flags", "typical_range"]

HIGH = 1
LOW = -1


def pivot_flags(values: np.ndarray, left: int, right: int) -> np.ndarray:
    """Per candle i, whether ``values[i]`` is a pivot high (mirror with ``-values`` for lows).

    The flag sits on the pivot candle itself; callers must not use it before ``i + right``.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    flags = np.zeros(n, dtype=bool)
    if n < left + right + 1:
        return flags
    window = rolling_max(x, left + right + 1)  # window ending at i + right
    around = np.full(n, np.nan)
    around[: n - right] = window[right:]
    before = np.full(n, np.nan)
    before[1:] = rolling_max(x, left)[:-1]  # the left candles before i
    with np.errstate(invalid="ignore"):
        flags = (x == around) & (x > before)
    return flags & np.isfinite(x)


@dataclass(frozen=True, slots=True)
class Pivots:
    """Pivots sorted by candle. A candle that is both a high and a low pivot gives two entries; which
    extreme came first is unknown inside a candle, so the one farther from the close goes first.
    ``confirmed`` = ``index + right``: the candle on which each becomes known."""

    index: np.ndarray  # int64
    price: np.ndarray  # float64
    kind: np.ndarray  # int8: HIGH / LOW
    right: int

    @property
    def confirmed(self) -> np.ndarray:
        return self.index + self.right

    def __len__(self) -> int:
        return len(self.index)


def find_pivots(
    high: np.ndarray, low: np.ndarray, left: int, right: int, close: np.ndarray | None = None
) -> Pivots:
    """Pivot highs of ``high`` and pivot lows of ``low``, merged in candle order."""
    hi = np.flatnonzero(pivot_flags(high, left, right))
    lo = np.flatnonzero(pivot_flags(-np.asarray(low, dtype=np.float64), left, right))
    index = np.concatenate((hi, lo)).astype(np.int64)
    kind = np.concatenate((np.full(len(hi), HIGH, np.int8), np.full(len(lo), LOW, np.int8)))
    price = np.concatenate((np.asarray(high, np.float64)[hi], np.asarray(low, np.float64)[lo]))
    # Same candle: the extreme nearer the close came last (a down candle made its high first).
    if close is not None and len(index):
        c = np.asarray(close, np.float64)[index]
        o_high = np.asarray(high, np.float64)[index]
        o_low = np.asarray(low, np.float64)[index]
        last_is_low = (o_high - c) > (c - o_low)
        secondary = np.where(kind == HIGH, last_is_low, ~last_is_low).astype(np.int8)
    else:
        secondary = (kind == LOW).astype(np.int8)
    order = np.lexsort((secondary, index))
    return Pivots(index[order], price[order], kind[order], right)


def alternating_tail(
    pivots: Pivots, last: int, count: int, since: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The ``count`` latest alternating pivots ending with pivot number ``last``, or None.

    Walking back from ``last`` over pivots at candles >= ``since``, consecutive pivots of the same kind
    merge into their most extreme one (the earliest on ties). None when pivot ``last`` is not the
    extreme of its own group (the shape did not change when it was confirmed) or when fewer than
    ``count`` groups fit in the window. Returns (candles, prices, kinds), oldest first.
    """
    index, price, kind = pivots.index, pivots.price, pivots.kind
    out_i: list[int] = []
    out_p: list[float] = []
    out_k: list[int] = []
    j = last
    while j >= 0 and index[j] >= since:
        k = int(kind[j])
        best_j = j
        j -= 1
        while j >= 0 and index[j] >= since and kind[j] == k:
            # Walking backwards, ">=" keeps the earliest of equal extremes.
            if k * price[j] >= k * price[best_j]:
                best_j = j
            j -= 1
        if not out_i and best_j != last:
            return None
        out_i.append(int(index[best_j]))
        out_p.append(float(price[best_j]))
        out_k.append(k)
        if len(out_i) == count:
            return (
                np.asarray(out_i[::-1], dtype=np.int64),
                np.asarray(out_p[::-1], dtype=np.float64),
                np.asarray(out_k[::-1], dtype=np.int8),
            )
    return None


def typical_range(high: np.ndarray, low: np.ndarray, length: int = 50) -> np.ndarray:
    """Mean candle range (high - low) of the last ``length`` candles: the unit pattern sizes are
    measured in. Each window is summed on its own, so the value never depends on where history starts
    (a running sum would carry rounding from the first candle)."""
    spread = np.asarray(high, np.float64) - np.asarray(low, np.float64)
    out = np.full(len(spread), np.nan)
    if len(spread) >= length:
        out[length - 1 :] = sliding_window_view(spread, length).mean(axis=1)
    return out
