"""Plan outputs -> the signals frame: entries (with confirmations and scoring applied), exits and stop
distances, per candle. One function serves the backtester (whole history) and the live runtime (a
window ending at the last closed candle), so both see the same signals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.backtest.inputs import SIGNAL_COLUMNS
from engine.config import LoadedStrategy

__all__ = ["SIGNAL_COLUMNS", "compute_signals"]


def _entries(strategy: LoadedStrategy, outputs: pd.DataFrame, side: str) -> np.ndarray:
    count = len(outputs)
    column = strategy.entry_column(side)
    if column is None:
        return np.zeros(count, dtype=bool)
    entry = outputs[column].to_numpy(dtype=bool).copy()
    for confirm in strategy.confirm_columns(side):
        entry &= outputs[confirm].to_numpy(dtype=bool)
    scored = strategy.score_columns(side)
    if scored:
        score = np.zeros(count, dtype=np.float64)
        for name, weight in scored:
            score += np.where(outputs[name].to_numpy(dtype=bool), float(weight), 0.0)
        threshold = float(getattr(strategy.model.score, side).threshold)
        # Sums of decimal weights such as 0.1 + 0.2 must still reach a threshold of 0.3.
        entry &= score >= threshold - 1e-9
    return entry


def _exits(strategy: LoadedStrategy, outputs: pd.DataFrame, side: str) -> np.ndarray:
    column = strategy.exit_column(side)
    if column is None:
        return np.zeros(len(outputs), dtype=bool)
    return outputs[column].to_numpy(dtype=bool)


def _distance(strategy: LoadedStrategy, outputs: pd.DataFrame, name: str) -> np.ndarray:
    column = strategy.stop_column(name)
    if column is None:
        return np.full(len(outputs), np.nan)
    values = outputs[column].to_numpy(dtype=np.float64)
    # A non-positive distance would put the stop on the wrong side of the entry: treat it as unknown,
    # so the kernel falls back to the percentage stop instead of exiting at once.
    return np.where(values > 0, values, np.nan)


def compute_signals(
    strategy: LoadedStrategy, candles: pd.DataFrame, *, features: bool = False
) -> pd.DataFrame:
    """The signals frame on ``candles.index``: SIGNAL_COLUMNS (plus the strategy's features if asked).

    No entry fires during the plan's warm-up (the first ``strategy.warmup`` candles): indicator values
    there depend on where the data starts, so they would differ between a backtest and a live bot.
    """
    outputs = strategy.plan.evaluate(candles)
    frame = pd.DataFrame(
        {
            "entry_long": _entries(strategy, outputs, "long"),
            "exit_long": _exits(strategy, outputs, "long"),
            "entry_short": _entries(strategy, outputs, "short"),
            "exit_short": _exits(strategy, outputs, "short"),
            "stop_distance": _distance(strategy, outputs, "stop_loss"),
            "take_profit_distance": _distance(strategy, outputs, "take_profit"),
        },
        index=candles.index,
    )
    warmup = min(strategy.warmup, len(frame))
    if warmup:
        frame.iloc[:warmup, frame.columns.get_indexer(["entry_long", "entry_short"])] = False
    if features:
        for name in strategy.model.features:
            frame[f"feature:{name}"] = outputs[name].to_numpy()
    return frame
