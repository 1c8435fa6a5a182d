"""Plan outputs -> the signals frame: entries (with confirmations and scoring applied), exits and stop
distances, per candle. One function serves the backtester (whole history) and the live runtime (a
window ending at the last closed candle), so both see the same signals; the live runtime asks for the
last candle's only (:func:`last_signals`), through the same rules on arrays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from engine.backtest.inputs import SIGNAL_COLUMNS
from engine.config import LoadedStrategy

__all__ = [
    "SIGNAL_COLUMNS",
    "LastSignals",
    "alert_values",
    "compute_signals",
    "last_signals",
    "last_signals_and_alerts",
    "rate_limited",
]

# Plan outputs by name: the columns of ``Plan.evaluate``'s frame or ``Plan.evaluate_arrays``'s arrays.
Outputs = Mapping[str, Any]


def _entries(strategy: LoadedStrategy, outputs: Outputs, count: int, side: str) -> np.ndarray:
    column = strategy.entry_column(side)
    if column is None:
        return np.zeros(count, dtype=bool)
    entry = np.array(outputs[column], dtype=bool)
    for confirm in strategy.confirm_columns(side):
        entry &= np.asarray(outputs[confirm], dtype=bool)
    scored = strategy.score_columns(side)
    if scored:
        score = np.zeros(count, dtype=np.float64)
        for name, weight in scored:
            score += np.where(np.asarray(outputs[name], dtype=bool), float(weight), 0.0)
        threshold = float(getattr(strategy.model.score, side).threshold)
        # Sums of decimal weights such as 0.1 + 0.2 must still reach a threshold of 0.3.
        entry &= score >= threshold - 1e-9
    return entry


def _exits(
    strategy: LoadedStrategy, outputs: Outputs, count: int, side: str, section: str = "exit"
) -> np.ndarray:
    column = strategy.exit_column(side) if section == "exit" else strategy.fast_exit_column(side)
    if column is None:
        return np.zeros(count, dtype=bool)
    return np.asarray(outputs[column], dtype=bool)


def _distance(strategy: LoadedStrategy, outputs: Outputs, count: int, name: str) -> np.ndarray:
    column = strategy.stop_column(name)
    if column is None:
        return np.full(count, np.nan)
    values = np.asarray(outputs[column], dtype=np.float64)
    # A non-positive distance would put the stop on the wrong side of the entry: treat it as unknown,
    # so the kernel falls back to the percentage stop instead of exiting at once.
    return np.where(values > 0, values, np.nan)


def _size(strategy: LoadedStrategy, outputs: Outputs) -> float:
    """The size on the one candle of ``outputs`` (1.0 without a ``size:``); clipped by the kernel."""
    column = strategy.size_column()
    return 1.0 if column is None else float(np.asarray(outputs[column], dtype=np.float64)[0])


def alert_values(
    strategy: LoadedStrategy, outputs: Outputs, count: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Alert name -> (condition per candle, score per candle; NaN without a score expression)."""
    values = {}
    for name, when, score in strategy.alert_columns():
        fired = np.nan_to_num(np.asarray(outputs[when], dtype=np.float64), nan=0.0) != 0.0
        scores = np.asarray(outputs[score], dtype=np.float64) if score else np.full(count, np.nan)
        values[name] = (fired, scores)
    return values


def rate_limited(fired: np.ndarray, every: int) -> np.ndarray:
    """The alerts actually sent: a firing candle counts only ``every`` candles or more after the last
    one sent (the live runtime applies the same rule per bot, pair and alert as the candles come)."""
    sent = np.zeros(len(fired), dtype=bool)
    last = -every
    for i in np.flatnonzero(fired):
        if i - last >= every:
            sent[i] = True
            last = int(i)
    return sent


def compute_signals(
    strategy: LoadedStrategy, candles: pd.DataFrame, *, features: bool = False, context: Any = None
) -> pd.DataFrame:
    """The signals frame on ``candles.index``: SIGNAL_COLUMNS (plus the strategy's features if asked).

    ``context`` reaches the rule namespaces of external series (``engine.feeds.EvalContext``: the pair
    and the point-in-time series of the run). No entry fires during the plan's warm-up (the first ``strategy.warmup`` candles): indicator values
    there depend on where the data starts, so they would differ between a backtest and a live bot.
    """
    outputs = strategy.plan.evaluate(candles, context)
    count = len(outputs)
    frame = pd.DataFrame(
        {
            "entry_long": _entries(strategy, outputs, count, "long"),
            "exit_long": _exits(strategy, outputs, count, "long"),
            "entry_short": _entries(strategy, outputs, count, "short"),
            "exit_short": _exits(strategy, outputs, count, "short"),
            "stop_distance": _distance(strategy, outputs, count, "stop_loss"),
            "take_profit_distance": _distance(strategy, outputs, count, "take_profit"),
            "fast_exit_long": _exits(strategy, outputs, count, "long", "fast_exit"),
            "fast_exit_short": _exits(strategy, outputs, count, "short", "fast_exit"),
        },
        index=candles.index,
    )
    sized = strategy.size_column()
    if sized is not None:  # only then: the frames (and trades) of other strategies stay as they were
        frame["size"] = np.asarray(outputs[sized], dtype=np.float64)
    warmup = min(strategy.warmup, len(frame))
    if warmup:
        frame.iloc[:warmup, frame.columns.get_indexer(["entry_long", "entry_short"])] = False
    if features:
        for name in strategy.model.features:
            frame[f"feature:{name}"] = outputs[name].to_numpy()
        # Alerts as a live bot sends them: not during the warm-up, then rate limited.
        for name, (fired, scores) in alert_values(strategy, outputs, count).items():
            fired = fired.copy()
            fired[:warmup] = False
            frame[f"alert:{name}"] = rate_limited(fired, strategy.model.alerts[name].every)
            frame[f"alert_score:{name}"] = scores
    return frame


class LastSignals(NamedTuple):
    """The signals of one candle: a row of the signals frame."""

    entry_long: bool
    exit_long: bool
    entry_short: bool
    exit_short: bool
    stop_distance: float
    take_profit_distance: float
    fast_exit_long: bool = False
    fast_exit_short: bool = False
    size: float = 1.0  # the strategy's size (1.0 without one); the kernel clips it


def last_signals(
    strategy: LoadedStrategy, columns: Mapping[str, np.ndarray], times: np.ndarray, context: Any = None
) -> LastSignals:
    """The last row of ``compute_signals`` on these candles (see :func:`last_signals_and_alerts`)."""
    return last_signals_and_alerts(strategy, columns, times, context)[0]


def last_signals_and_alerts(
    strategy: LoadedStrategy, columns: Mapping[str, np.ndarray], times: np.ndarray, context: Any = None
) -> tuple[LastSignals, tuple[tuple[str, float], ...]]:
    """The last row of ``compute_signals`` on these candles, from arrays and without the frame.

    ``columns`` maps open/high/low/close/volume to float64 arrays and ``times`` holds the open times
    (int64 ns), as :meth:`dsl.Plan.evaluate_arrays` takes them. The whole plan still runs on the
    window (recursive indicators need it); only the rules are applied to the last candle alone.
    """
    outputs = strategy.plan.evaluate_arrays(columns, times, context)
    last = {name: values[-1:] for name, values in outputs.items()}
    # compute_signals masks entries on the first `warmup` rows of what it is given.
    warm = len(times) > strategy.warmup
    alerts = tuple(
        (name, float(scores[0]))
        for name, (fired, scores) in alert_values(strategy, last, 1).items()
        if fired[0]
    )
    signals = LastSignals(
        entry_long=bool(_entries(strategy, last, 1, "long")[0]) and warm,
        exit_long=bool(_exits(strategy, last, 1, "long")[0]),
        entry_short=bool(_entries(strategy, last, 1, "short")[0]) and warm,
        exit_short=bool(_exits(strategy, last, 1, "short")[0]),
        stop_distance=float(_distance(strategy, last, 1, "stop_loss")[0]),
        take_profit_distance=float(_distance(strategy, last, 1, "take_profit")[0]),
        fast_exit_long=bool(_exits(strategy, last, 1, "long", "fast_exit")[0]),
        fast_exit_short=bool(_exits(strategy, last, 1, "short", "fast_exit")[0]),
        size=_size(strategy, last),
    )
    # (alert name, score) of the alerts whose condition holds, before any rate limit.
    return signals, alerts
