"""Feature matrices: the model's DSL expressions evaluated on a pair's candles, as float32 columns.

The DSL computes every feature causally (values at a candle use candles up to its close only), so a
feature matrix computed over all history equals one computed row by row in live trading.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsl import Plan

__all__ = ["feature_matrix", "usable_columns"]

_CANDLE = ("open", "high", "low", "close", "volume")


def feature_matrix(
    plan: Plan, names: tuple[str, ...], candles: pd.DataFrame, context: object = None
) -> np.ndarray:
    """``(len(candles), len(names))`` float32, infinities turned into NaN (missing)."""
    columns = {c: candles[c].to_numpy(dtype=np.float64) for c in _CANDLE}
    times = candles.index.asi8 if isinstance(candles.index, pd.DatetimeIndex) else np.asarray(candles.index)
    if isinstance(candles.index, pd.DatetimeIndex) and candles.index.unit != "ns":
        times = candles.index.as_unit("ns").asi8
    values = plan.evaluate_arrays(columns, times, context)
    out = np.empty((len(candles), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        out[:, j] = values[name]
    out[~np.isfinite(out)] = np.nan
    return out


def usable_columns(x: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    """Indexes of the columns with at least two distinct finite values; and those that are all missing,
    and those that are constant (both unusable for learning, reported as warnings)."""
    finite = np.isfinite(x)
    counts = finite.sum(axis=0)
    missing = [int(j) for j in np.flatnonzero(counts == 0)]
    with np.errstate(invalid="ignore"):
        low = np.where(finite, x, np.inf).min(axis=0)
        high = np.where(finite, x, -np.inf).max(axis=0)
    constant = [int(j) for j in np.flatnonzero((counts > 0) & (low == high))]
    keep = np.flatnonzero((counts > 0) & (low < high))
    return keep, missing, constant
