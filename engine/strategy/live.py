"""Signals for a live bot: one closed candle at a time, through the same ``compute_signals``.

Each pair keeps a bounded window of its most recent closed candles. On every new candle the whole
plan is evaluated on the window and the last row is the decision, so live signals are the backtest's
signals as long as the window reaches back far enough for the indicators to have settled: at least
``history_factor`` times the plan's warm-up (recursive filters such as EMA and Wilder's RSI then
differ from a full-history computation by far less than a float's precision).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.config import LoadedStrategy
from engine.strategy.signals import compute_signals
from engine.trading.trader import Candle, Signals

__all__ = ["LiveSignals"]

_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass
class _Window:
    times: deque[int]
    rows: deque[tuple[float, float, float, float, float]]
    candles_seen: int = 0


@dataclass
class LiveSignals:
    """Per-pair candle windows and the strategy that turns them into :class:`Signals`."""

    strategy: LoadedStrategy
    history_factor: int = 10
    min_history: int = 500
    max_history: int | None = None  # None: derived from the warm-up
    _windows: dict[str, _Window] = field(default_factory=dict, init=False)

    @property
    def capacity(self) -> int:
        if self.max_history is not None:
            return self.max_history
        return max(self.min_history, self.history_factor * max(self.strategy.warmup, 1))

    def replace_strategy(self, strategy: LoadedStrategy) -> None:
        """Hot reload: the candle windows stay; the next candle is judged by the new rules."""
        self.strategy = strategy
        for window in self._windows.values():
            capacity = self.capacity
            if window.times.maxlen != capacity:
                window.times = deque(window.times, maxlen=capacity)
                window.rows = deque(window.rows, maxlen=capacity)

    def seed(self, pair: str, candles: pd.DataFrame) -> None:
        """Load history (e.g. at start-up) without producing signals."""
        for time, row in zip(
            candles.index.as_unit("ns").asi8, candles[list(_COLUMNS)].itertuples(index=False), strict=True
        ):
            self._append(pair, int(time), tuple(float(v) for v in row))

    def append(self, pair: str, time: int, row: tuple[float, ...]) -> None:
        """Take a closed candle (open time in ns; open, high, low, close, volume) into the window without
        computing signals: for a bot whose signals on it were computed elsewhere (shared between bots)."""
        self._append(pair, time, row)

    def _append(self, pair: str, time: int, row: tuple[float, ...]) -> _Window:
        window = self._windows.get(pair)
        if window is None:
            window = _Window(deque(maxlen=self.capacity), deque(maxlen=self.capacity))
            self._windows[pair] = window
        if window.times and time <= window.times[-1]:
            raise ValueError(f"{pair}: candle at {pd.Timestamp(time, tz='UTC')} is not after the last one")
        window.times.append(time)
        window.rows.append(row)  # type: ignore[arg-type]
        window.candles_seen += 1
        return window

    def frame(self, pair: str) -> pd.DataFrame:
        window = self._windows[pair]
        index = pd.DatetimeIndex(np.fromiter(window.times, dtype=np.int64), tz="UTC", name="date").as_unit(
            "ns"
        )
        return pd.DataFrame(
            np.array(window.rows, dtype=np.float64).reshape(-1, 5), columns=list(_COLUMNS), index=index
        )

    def on_candle(
        self,
        pair: str,
        time: pd.Timestamp | int,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> tuple[Candle, Signals]:
        """Append a closed candle and return it with the strategy's signals on it."""
        ns = int(pd.Timestamp(time).as_unit("ns").value) if not isinstance(time, int) else time
        window = self._append(pair, ns, (open_, high, low, close, volume))
        signals = compute_signals(self.strategy, self.frame(pair))
        last = signals.iloc[-1]
        # The warm-up mask in compute_signals is relative to the window; a full window has been warm for long.
        warm = window.candles_seen > self.strategy.warmup
        candle = Candle(ns, open_, high, low, close)
        return candle, Signals(
            entry_long=bool(last["entry_long"]) and warm,
            exit_long=bool(last["exit_long"]),
            entry_short=bool(last["entry_short"]) and warm,
            exit_short=bool(last["exit_short"]),
            stop_distance=float(last["stop_distance"]) if not math.isnan(last["stop_distance"]) else math.nan,
            take_profit_distance=float(last["take_profit_distance"]),
        )
