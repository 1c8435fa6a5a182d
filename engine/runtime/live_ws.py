"""Closed candles of one series from an exchange's websocket (``ccxt.pro`` ``watch_ohlcv``).

ccxt's ``watch_ohlcv`` answers with the candles updated since the previous call, without Binance's
"closed" flag, so a candle counts as closed here once the stream has shown a *later* candle (a greater
open time): its values are then the last ones the exchange sent for it. The forming candle is never
reported closed.

:class:`StreamView` is that bookkeeping (pure, no I/O); :class:`SeriesWatch` is the loop that keeps
one series subscribed, hands every answer to the feed and reports the stream down on an error (the
feed then polls REST) before subscribing again after a backoff. Which candles leave the feed, the
REST back-fill of a hole and the batch grouping stay in :class:`~engine.runtime.live_feed.LiveFeed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.runtime.feed import Row, SeriesKey

__all__ = ["SeriesWatch", "StreamView"]

_NS = 1_000_000


@dataclass
class StreamView:
    """The latest values of each candle one stream connection has shown, by open time (ms)."""

    step: int  # ms
    seen: dict[int, Row] = field(default_factory=dict)
    newest: int | None = None  # open (ms) of the latest candle shown: forming, or just closed

    def reset(self) -> None:
        """Forget everything: after a reconnection the values kept may be those of a forming candle."""
        self.seen.clear()
        self.newest = None

    def update(self, candles: Iterable[Sequence[Any]]) -> None:
        """Record a ``watch_ohlcv`` answer (rows of open ms, open, high, low, close, volume)."""
        for candle in candles:
            open_ms = int(candle[0])
            # Copied: ccxt updates its cached rows in place.
            self.seen[open_ms] = (open_ms * _NS, *(float(v) for v in candle[1:6]))  # type: ignore[assignment]
            if self.newest is None or open_ms > self.newest:
                self.newest = open_ms

    def closed_after(self, last_open: int) -> tuple[list[Row], bool]:
        """The closed candles following ``last_open`` (ms) without a hole, in order, and whether the
        stream shows a later candle beyond a hole (missed candles: the caller back-fills them over
        REST). Candles up to ``last_open`` are forgotten."""
        for open_ms in [t for t in self.seen if t <= last_open]:
            del self.seen[open_ms]
        rows: list[Row] = []
        if self.newest is None:
            return rows, False
        expected = last_open + self.step
        while expected < self.newest and expected in self.seen:
            rows.append(self.seen[expected])
            expected += self.step
        return rows, expected < self.newest


class SeriesWatch:
    """Keeps ``key`` subscribed on ``client`` and passes each answer to ``deliver`` (through
    :attr:`view`). A failed watch calls ``on_down`` with the error, forgets the connection's candles
    and subscribes again after ``backoff`` seconds (doubling up to ``backoff_cap``) of ``sleep``.
    An exchange that refuses the subscription as unsupported ends the loop (the feed keeps polling)."""

    def __init__(
        self,
        client: Any,
        key: SeriesKey,
        step: int,
        *,
        deliver: Callable[[SeriesWatch], Awaitable[None]],
        on_down: Callable[[SeriesWatch, BaseException], None],
        sleep: Callable[[float], Awaitable[None]],
        backoff: float = 1.0,
        backoff_cap: float = 60.0,
    ) -> None:
        self.client, self.key = client, key
        self.view = StreamView(step)
        self.deliver, self.on_down, self.sleep = deliver, on_down, sleep
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self.failures = 0
        self.answers = 0  # answers since the last (re)subscription

    @property
    def up(self) -> bool:
        """The stream has answered since it was last (re)subscribed."""
        return self.answers > 0

    async def run(self) -> None:
        import ccxt

        pair, timeframe = self.key
        while True:
            try:
                candles = await self.client.watch_ohlcv(pair, timeframe)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # dropped connection, timeout, refused subscription
                self.answers = 0
                self.view.reset()
                self.failures += 1
                self.on_down(self, error)
                if isinstance(error, ccxt.NotSupported):
                    return
                await self.sleep(min(self.backoff_cap, self.backoff * 2 ** (self.failures - 1)))
                continue
            self.failures = 0
            self.answers += 1
            self.view.update(candles)
            await self.deliver(self)

    async def unsubscribe(self) -> None:
        """Tell the exchange to stop streaming the series (after :meth:`run` was cancelled), where
        the client can (``has["unWatchOHLCV"]``); otherwise the connection simply stays as it is."""
        if not (getattr(self.client, "has", None) or {}).get("unWatchOHLCV"):
            return
        pair, timeframe = self.key
        # A fresh params dict: ccxt writes into the one it is given.
        await self.client.un_watch_ohlcv(pair, timeframe, {})
