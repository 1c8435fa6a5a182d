"""Higher-timeframe candles built from lower ones.

Buckets are aligned on the Unix epoch in UTC (``1h`` candles open on the hour, ``1d`` at 00:00 UTC), weekly
ones on Monday 00:00 UTC, as Binance aligns them. Only complete buckets are kept: a bucket is complete when
the lower-timeframe data covers its whole span, i.e. the first lower candle opens at or before the bucket
start and the last one closes at or after the bucket end. So the partial buckets that can occur are the
first and the last (data starting or ending mid-bucket), and those are dropped. Missing lower candles
*inside* a covered bucket (an exchange outage, or no trades) do not drop it: it is aggregated from the
candles present, as the exchange itself would build it from the trades it had. A bucket with no lower
candle at all produces no row: gaps stay gaps.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from dsl.plan import resample_candles as aggregate_candles
from dsl.timeframes import timeframe_seconds
from engine.data.validate import CANDLE_COLUMNS

__all__ = ["resample_candles", "source_timeframe_for"]

_NS = 1_000_000_000


def source_timeframe_for(target: str, available: Iterable[str]) -> str | None:
    """The finest of ``available`` that is lower than ``target`` and divides it evenly, or None."""
    target_s = timeframe_seconds(target)
    usable = [
        tf for tf in available if timeframe_seconds(tf) < target_s and target_s % timeframe_seconds(tf) == 0
    ]
    return min(usable, key=timeframe_seconds) if usable else None


def resample_candles(candles: pd.DataFrame, source: str, target: str) -> pd.DataFrame:
    """Aggregate ``source``-timeframe candles (frame contract) into complete ``target`` candles.

    open = first open, high = max, low = min, close = last close, volume = sum.
    """
    source_ns = timeframe_seconds(source) * _NS
    step = timeframe_seconds(target) * _NS
    if step % source_ns != 0 or step <= source_ns:
        raise ValueError(
            f"cannot build {target} candles from {source} candles: {source} must divide {target}"
        )
    if len(candles) == 0:
        return candles.iloc[:0].copy()

    # The bucketing itself is the DSL's (one definition of a higher-timeframe candle); the store
    # additionally drops buckets its data only partly covers.
    frame = aggregate_candles(candles, target)
    opens = candles.index.as_unit("ns").asi8
    bucket_starts = frame.index.as_unit("ns").asi8
    keep = np.ones(len(frame), dtype=bool)
    if opens[0] > bucket_starts[0]:
        keep[0] = False
    if opens[-1] + source_ns < bucket_starts[-1] + step:
        keep[-1] = False
    frame = frame.reindex(columns=list(CANDLE_COLUMNS))
    return frame[keep] if not keep.all() else frame
