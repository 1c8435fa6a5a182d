"""Signals for a live bot: one closed candle at a time, through the same rules as ``compute_signals``.

Each pair keeps a bounded window of its most recent closed candles. On every new candle the whole
plan is evaluated on the window and the last row is the decision, so live signals are the backtest's
signals as long as the window reaches back far enough for the indicators to have settled: at least
``history_factor`` times the plan's warm-up (recursive filters such as EMA and Wilder's RSI then
differ from a full-history computation by far less than a float's precision).

The windows live in preallocated numpy buffers and the plan runs on arrays (``last_signals``): this
is the live hot path, where building a DataFrame per candle cost ten times the indicator maths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.config import LoadedStrategy
from engine.strategy.signals import LastSignals, compute_signals, last_signals_and_alerts
from engine.trading.trader import Candle, Signals

__all__ = ["LiveSignals"]

_COLUMNS = ("open", "high", "low", "close", "volume")


class _Window:
    """The newest ``capacity`` candles of one pair in a buffer twice that size.

    Appends write after the live part; when the buffer's end is reached the newest ``capacity - 1``
    rows move to the front, so an append costs O(1) amortised and the live part is always one
    contiguous slice per column (what TA-Lib wants)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.times = np.empty(2 * capacity, dtype=np.int64)
        self.values = np.empty((len(_COLUMNS), 2 * capacity), dtype=np.float64)
        self.start = 0
        self.stop = 0
        self.candles_seen = 0
        self.last_time: int | None = None  # open time of the newest candle (a Python int: read per append)

    def __len__(self) -> int:
        return self.stop - self.start

    def append(self, time: int, row: Sequence[float]) -> None:
        if self.stop == len(self.times):
            self._compact(self.capacity - 1)
        self.times[self.stop] = time
        self.values[:, self.stop] = row
        self.stop += 1
        if self.stop - self.start > self.capacity:
            self.start += 1
        self.candles_seen += 1
        self.last_time = int(time)

    def extend(self, times: np.ndarray, rows: np.ndarray) -> None:
        """Append ``len(times)`` candles at once (``rows``: one row of the five columns per candle)."""
        count = len(times)
        if count >= self.capacity:
            self.times[: self.capacity] = times[-self.capacity :]
            self.values[:, : self.capacity] = rows[-self.capacity :].T
            self.start, self.stop = 0, self.capacity
        elif count:
            if self.stop + count > len(self.times):
                self._compact(self.capacity - count)
            self.times[self.stop : self.stop + count] = times
            self.values[:, self.stop : self.stop + count] = rows.T
            self.stop += count
            self.start = max(self.start, self.stop - self.capacity)
        self.candles_seen += count
        if count:
            self.last_time = int(times[-1])

    def _compact(self, keep: int) -> None:
        keep = min(keep, len(self))
        first = self.stop - keep
        self.times[:keep] = self.times[first : self.stop]
        self.values[:, :keep] = self.values[:, first : self.stop]
        self.start, self.stop = 0, keep

    def resized(self, capacity: int) -> _Window:
        """A window of ``capacity`` holding the newest rows of this one (and its candle count)."""
        window = _Window(capacity)
        keep = min(capacity, len(self))
        first = self.stop - keep
        window.times[:keep] = self.times[first : self.stop]
        window.values[:, :keep] = self.values[:, first : self.stop]
        window.stop = keep
        window.candles_seen = self.candles_seen
        window.last_time = self.last_time if keep else None
        return window

    def arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Views on the live part: the columns by name and the open times (valid until the next append)."""
        part = slice(self.start, self.stop)
        return {name: self.values[i, part] for i, name in enumerate(_COLUMNS)}, self.times[part]


@dataclass
class LiveSignals:
    """Per-pair candle windows and the strategy that turns them into :class:`Signals`.

    ``arrays=False`` computes each candle's signals the way this class did before the array path:
    ``compute_signals`` on :meth:`frame` and its last row (same results; kept for benchmarks)."""

    strategy: LoadedStrategy
    history_factor: int = 10
    min_history: int = 500
    max_history: int | None = None  # None: derived from the warm-up
    arrays: bool = True
    # pair -> what the rule namespaces of external series read (engine.feeds.EvalContext); None: nothing.
    context_for: Callable[[str], Any] | None = None
    _windows: dict[str, _Window] = field(default_factory=dict, init=False)

    @property
    def capacity(self) -> int:
        if self.max_history is not None:
            return self.max_history
        return max(self.min_history, self.history_factor * max(self.strategy.warmup, 1))

    def replace_strategy(self, strategy: LoadedStrategy) -> None:
        """Hot reload: the candle windows stay; the next candle is judged by the new rules."""
        self.strategy = strategy
        capacity = self.capacity
        for pair, window in self._windows.items():
            if window.capacity != capacity:
                self._windows[pair] = window.resized(capacity)

    def seed(self, pair: str, candles: pd.DataFrame) -> None:
        """Load history (e.g. at start-up) without producing signals. Candles must follow the window's
        last one in strictly increasing time; at the first that does not, the ones before it are kept
        and ValueError is raised."""
        if len(candles) == 0:
            return
        times = candles.index.as_unit("ns").asi8
        rows = candles[list(_COLUMNS)].to_numpy(dtype=np.float64)
        window = self._windows.get(pair)
        if window is None:
            window = self._windows[pair] = _Window(self.capacity)
        last = window.last_time
        steps = np.diff(times, prepend=np.int64(last) if last is not None else times[0] - 1)
        bad = np.flatnonzero(steps <= 0)
        good = int(bad[0]) if len(bad) else len(times)
        window.extend(times[:good], rows[:good])
        if good < len(times):
            self._append(pair, int(times[good]), rows[good])  # raises with the usual message

    def append(self, pair: str, time: int, row: tuple[float, ...]) -> None:
        """Take a closed candle (open time in ns; open, high, low, close, volume) into the window without
        computing signals: for a bot whose signals on it were computed elsewhere (shared between bots)."""
        self._append(pair, time, row)

    def _append(self, pair: str, time: int, row: Sequence[float]) -> _Window:
        window = self._windows.get(pair)
        if window is None:
            window = _Window(self.capacity)
            self._windows[pair] = window
        last = window.last_time
        if last is not None and time <= last:
            raise ValueError(f"{pair}: candle at {pd.Timestamp(time, tz='UTC')} is not after the last one")
        window.append(time, row)
        return window

    def frame(self, pair: str) -> pd.DataFrame:
        """The pair's window as a candle frame (a copy)."""
        window = self._windows[pair]
        part = slice(window.start, window.stop)
        index = pd.DatetimeIndex(window.times[part].copy(), tz="UTC", name="date").as_unit("ns")
        return pd.DataFrame(window.values[:, part].T.copy(), columns=list(_COLUMNS), index=index)

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
        return self._evaluate(pair, window, Candle(ns, open_, high, low, close))

    def evaluate(self, pair: str) -> tuple[Candle, Signals]:
        """The strategy's signals on the pair's newest candle, already in the window (a hot reload
        judging the candle its bot took before the new rules arrived)."""
        window = self._windows[pair]
        last = window.stop - 1
        o, h, lo, c = (float(x) for x in window.values[:4, last])
        return self._evaluate(pair, window, Candle(int(window.times[last]), o, h, lo, c))

    def _evaluate(self, pair: str, window: _Window, candle: Candle) -> tuple[Candle, Signals]:
        context = self.context_for(pair) if self.context_for is not None else None
        if self.arrays or self.strategy.model.alerts:
            last, alerts = last_signals_and_alerts(self.strategy, *window.arrays(), context)
        else:
            row = compute_signals(self.strategy, self.frame(pair), context=context).iloc[-1]
            defaults = LastSignals._field_defaults
            last = LastSignals(*(row.get(name, defaults.get(name)) for name in LastSignals._fields))
            alerts = ()
        # The warm-up mask of the signals is relative to the window; a full window has been warm for long.
        warm = window.candles_seen > self.strategy.warmup
        return candle, Signals(
            entry_long=bool(last.entry_long) and warm,
            exit_long=bool(last.exit_long),
            entry_short=bool(last.entry_short) and warm,
            exit_short=bool(last.exit_short),
            stop_distance=float(last.stop_distance) if not math.isnan(last.stop_distance) else math.nan,
            take_profit_distance=float(last.take_profit_distance),
            alerts=alerts if warm else (),
            fast_exit_long=bool(last.fast_exit_long),
            fast_exit_short=bool(last.fast_exit_short),
            size=float(last.size),
        )

    def last_time(self, pair: str) -> int | None:
        """Open time (ns) of the pair's newest candle in its window; None before any."""
        window = self._windows.get(pair)
        return None if window is None else window.last_time

    def forming_fast_exit(self, pair: str, side: str, time: int, row: Sequence[float]) -> bool:
        """Whether the strategy's ``fast_exit`` rule of ``side`` ("long" | "short") holds on the pair's
        closed candles followed by a candle still forming: ``row`` (open, high, low, close, volume so
        far) opened at ``time`` (ns, after the window's last candle). The window is not changed, and
        its oldest candle is left out when full, so a forming candle that ends as the closed one will
        gives the value the close computes. False without a rule for ``side`` or without candles.

        Rules on external series read them as at the forming candle's close, through the same reader
        as the close path: a live reader holds only what has arrived, so nothing later is seen."""
        column = self.strategy.fast_exit_column(side)
        window = self._windows.get(pair)
        if column is None or window is None or not len(window):
            return False
        if window.last_time is not None and time <= window.last_time:
            raise ValueError(
                f"{pair}: forming candle at {pd.Timestamp(time, tz='UTC')} is not after the last one"
            )
        columns, times = window.arrays()
        keep = len(times) - 1 if len(times) >= window.capacity else len(times)
        start = len(times) - keep
        extended = {
            name: np.append(values[start:], np.float64(row[i]))
            for i, (name, values) in enumerate(columns.items())
        }
        stamps = np.append(times[start:], np.int64(time))
        context = self.context_for(pair) if self.context_for is not None else None
        outputs = self.strategy.plan.evaluate_arrays(extended, stamps, context)
        # The same reading of the rule's column as the close path's (signals._exits).
        return bool(np.asarray(outputs[column], dtype=bool)[-1])
