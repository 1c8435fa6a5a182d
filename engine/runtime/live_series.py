"""One followed series of the live feed: its state (:class:`_Series`: where its candles stand, its
retries, its stream, its recent candles) and the paginated REST request for its closed candles.

Part of the live feed split (see :mod:`engine.runtime.live_feed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.runtime.feed import Row, SeriesKey
from engine.runtime.live_market import _NS, MarketSource
from engine.runtime.live_ws import SeriesWatch


@dataclass
class _Series:
    key: SeriesKey
    source: MarketSource
    step: int  # ms
    origin: int  # ms: candles open at origin + k * step
    last_open: int  # ms: open time of the last candle fetched (buffered or emitted)
    retry_at: float = 0.0  # local ms before which the series is not polled again
    failures: int = 0
    misses: int = 0  # polls in a row that found the due candle not published yet
    polling: bool = False  # a REST request of this series is under way
    watch: SeriesWatch | None = None  # the websocket loop feeding it, if its exchange has one
    cache: list[Row] = field(default_factory=list)  # recent closed candles, contiguous, ascending
    emitted: int = -(2**62)  # ms: open time of the last candle handed out in a batch
    epoch: int = 0  # bumped by a rewind: a REST answer asked for before it is stale

    @property
    def next_close(self) -> int:
        return self.last_open + 2 * self.step


async def _fetch_pages(
    client: Any,
    series: _Series,
    since: int,
    until: int | None,
    page_limit: int,
    now: Callable[[], float],
) -> list[Row]:
    pair, timeframe = series.key
    rows: list[Row] = []
    while True:
        page = await client.fetch_ohlcv(pair, timeframe, since, page_limit)
        limit = min(until if until is not None else now(), now())
        fresh = [r for r in page if r[0] >= since and r[0] + series.step <= limit]
        fresh.sort(key=lambda r: r[0])
        for r in fresh:
            if not rows or r[0] > rows[-1][0] // _NS:
                rows.append((int(r[0]) * _NS, *(float(v) for v in r[1:6])))  # type: ignore[arg-type]
        # A short page is the end; so is a page holding candles beyond ``until`` (or still forming).
        if not fresh or len(page) < page_limit or fresh[-1][0] != max(r[0] for r in page):
            return rows
        since = rows[-1][0] // _NS + series.step


def _frame(rows: list[Row]) -> pd.DataFrame:
    index = pd.DatetimeIndex([r[0] for r in rows], tz="UTC", name="date").as_unit("ns")
    columns = ["open", "high", "low", "close", "volume"]
    data = {c: [float(r[i + 1]) for r in rows] for i, c in enumerate(columns)}
    return pd.DataFrame(data, index=index, columns=columns, dtype="float64")
