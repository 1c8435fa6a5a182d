"""Closed-candle market data for the runtime.

:class:`ReplayFeed` plays stored candles (a ``--data``-style directory) through the live path: it
emits every series' candles in order of their *close* time, grouped by that moment, at ``speed`` times
real time (``speed=0``: as fast as the bots consume them). Series are loaded on demand, so a bot added
by a hot reload joins at the replay's current moment.
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dsl.timeframes import timeframe_seconds

__all__ = ["Batch", "ReplayFeed", "SeriesKey"]

SeriesKey = tuple[str, str]  # (pair, timeframe)
Row = tuple[int, float, float, float, float, float]  # open time (ns), open, high, low, close, volume


@dataclass(frozen=True, slots=True)
class Batch:
    """Every candle that closed at ``close_time`` (ns since the epoch), by series. ``late``: handed out
    well after its close (a live feed's back-fill after an outage), too late to enter on: exchange bots
    then send exits only."""

    close_time: int
    candles: dict[SeriesKey, Row]
    late: bool = False


@dataclass
class _Series:
    key: SeriesKey
    step: int  # timeframe in ns
    times: np.ndarray  # open times, ns
    values: np.ndarray  # (n, 5) float64
    frame: pd.DataFrame
    cursor: int = 0


@dataclass
class ReplayFeed:
    """Stored candles replayed as closed-candle events. ``source`` is an ``engine.data`` CandleSource."""

    source: object
    speed: float = 0.0
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    clock: int = -(2**62)  # close time of the last batch emitted
    _series: dict[SeriesKey, _Series] = field(default_factory=dict)
    _heap: list[tuple[int, SeriesKey]] = field(default_factory=list)

    def add(self, key: SeriesKey) -> None:
        """Start emitting ``key`` (pair, timeframe) from the next moment on; loading is idempotent."""
        if key in self._series:
            return
        pair, timeframe = key
        frame = self.source.load(pair, timeframe, None, self.end)  # type: ignore[attr-defined]
        step = timeframe_seconds(timeframe) * 1_000_000_000
        times = frame.index.as_unit("ns").asi8
        values = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
        # From the replay's current moment on, and never a candle that opened before ``start``.
        cursor = int(np.searchsorted(times + step, self.clock, side="right"))
        if self.start is not None:
            cursor = max(cursor, int(np.searchsorted(times, self.start.as_unit("ns").value, side="left")))
        series = _Series(key, step, times, values, frame, cursor)
        self._series[key] = series
        if cursor < len(times):
            heapq.heappush(self._heap, (int(times[cursor]) + step, key))

    def rewind(self, key: SeriesKey, since: int) -> int:
        """Nothing to do: a replay plays its series from its start again on every run, and a bot
        skips the candles up to its checkpoint (``since``) itself. Returns ``since``, like a live
        feed that skips nothing."""
        self.add(key)
        return since

    def remove(self, key: SeriesKey) -> None:
        """Stop emitting ``key`` (no bot follows it any more); a later :meth:`add` loads it again and
        joins it at the replay's current moment. Unknown keys are ignored."""
        if self._series.pop(key, None) is None:
            return
        self._heap = [entry for entry in self._heap if entry[1] != key]
        heapq.heapify(self._heap)

    def history(self, key: SeriesKey, until: int, count: int) -> pd.DataFrame:
        """The last ``count`` candles of ``key`` closed at or before ``until`` (ns)."""
        self.add(key)
        series = self._series[key]
        stop = int(np.searchsorted(series.times + series.step, until, side="right"))
        return series.frame.iloc[max(0, stop - count) : stop]

    async def batches(self):
        """Async iterator of :class:`Batch` in close-time order, paced by ``speed``."""
        loop = asyncio.get_running_loop()
        started_wall = loop.time()
        started_clock: int | None = None
        while self._heap:
            close = self._heap[0][0]
            candles: dict[SeriesKey, Row] = {}
            while self._heap and self._heap[0][0] == close:
                _, key = heapq.heappop(self._heap)
                series = self._series[key]
                k = series.cursor
                candles[key] = (int(series.times[k]), *map(float, series.values[k]))  # type: ignore[assignment]
                series.cursor = k + 1
                if series.cursor < len(series.times):
                    heapq.heappush(self._heap, (int(series.times[series.cursor]) + series.step, key))
            if self.speed > 0:
                if started_clock is None:
                    started_clock = close
                due = started_wall + (close - started_clock) / 1e9 / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.clock = close
            yield Batch(close, candles)
