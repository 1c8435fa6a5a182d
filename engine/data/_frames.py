"""Small helpers on contract frames shared by the store and the directory reader."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.data.validate import CANDLE_COLUMNS

__all__ = ["as_utc", "empty_frame", "slice_frame"]


def as_utc(value: Any) -> pd.Timestamp | None:
    """A UTC timestamp from a date string, datetime or Timestamp (naive means UTC); None stays None."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def slice_frame(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    """Rows with open time in [start, end); a view, by binary search on the sorted index."""
    if start is None and end is None:
        return frame
    lo = 0 if start is None else int(frame.index.searchsorted(start, side="left"))
    hi = len(frame) if end is None else int(frame.index.searchsorted(end, side="left"))
    return frame.iloc[lo:hi]


def empty_frame() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="date").as_unit("ns")
    return pd.DataFrame({c: np.empty(0, dtype=np.float64) for c in CANDLE_COLUMNS}, index=index)
