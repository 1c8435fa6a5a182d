"""Calendar features of the candle's open time (UTC): hour of day and day of week.

Machine-learning models use them (crypto volume and volatility follow the trading day); rules may too.
They read only the candle's own time, so they never look ahead.
"""

from __future__ import annotations

import pandas as pd

from dsl.types import NUMBER
from engine.indicators._core import SpecList, column

SPECS = SpecList()
TIME = "time"


@SPECS.function("hour", [column("close")], NUMBER, warmup=lambda a: 0, category=TIME, example="hour() >= 8")
def hour(close: pd.Series) -> pd.Series:
    """Hour of day (0-23, UTC) of the candle's open time."""
    return pd.Series(close.index.hour.astype("float64"), index=close.index)


@SPECS.function(
    "weekday", [column("close")], NUMBER, warmup=lambda a: 0, category=TIME, example="weekday() < 5"
)
def weekday(close: pd.Series) -> pd.Series:
    """Day of week (0 = Monday ... 6 = Sunday, UTC) of the candle's open time."""
    return pd.Series(close.index.day_of_week.astype("float64"), index=close.index)
