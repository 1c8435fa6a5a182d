"""CSV export of a backtest's closed trades, one row each, times in UTC ISO-8601."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pandas as pd

__all__ = ["EXPORT_COLUMNS", "export_trades_csv", "trades_to_csv_frame"]

EXPORT_COLUMNS = (
    "pair",
    "open_time",
    "close_time",
    "open_price",
    "close_price",
    "amount",
    "profit_ratio",
    "profit_abs",
    "exit_reason",
)


def _iso(times: pd.Series) -> pd.Series:
    return times.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def trades_to_csv_frame(trades: pd.DataFrame) -> pd.DataFrame:
    out = trades.loc[:, list(EXPORT_COLUMNS)].copy()
    out["open_time"] = _iso(out["open_time"])
    out["close_time"] = _iso(out["close_time"])
    return out


def export_trades_csv(trades: pd.DataFrame, path: str | Path | IO[str]) -> None:
    """Write ``trades`` (a backtest's trade frame) with exactly ``EXPORT_COLUMNS``. Floats keep full
    precision so the file reproduces the numbers exactly."""
    trades_to_csv_frame(trades).to_csv(path, index=False, lineterminator="\n")
