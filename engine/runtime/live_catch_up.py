"""Moving a live feed's series back and dropping it: :meth:`rewind` (a restored bot's catch-up on the
candles that closed while the engine was down, capped at ``max_catch_up``, never a candle handed out
twice) and :meth:`remove` (a series no bot follows any more: its polls end, its stream is unsubscribed).

:class:`_CatchUp` holds no state of its own: it is a part of
:class:`~engine.runtime.live_feed.LiveFeed`, which sets the attributes annotated below.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from engine.runtime.feed import Row, SeriesKey
from engine.runtime.live_market import _NS, MarketSource, _utc, log
from engine.runtime.live_series import _Series
from engine.runtime.live_ws import SeriesWatch


class _CatchUp:
    """Rewind and removal of a :class:`~engine.runtime.live_feed.LiveFeed`'s series."""

    # State owned by LiveFeed.__init__.
    max_catch_up: int | None
    _series: dict[SeriesKey, _Series]
    _pending: dict[int, dict[SeriesKey, Row]]
    _keep: dict[SeriesKey, int]
    _changed: asyncio.Event
    _unwatched: set[SeriesKey]
    _tasks: dict[SeriesKey, asyncio.Task[None]]
    _chores: set[asyncio.Task[None]]

    if TYPE_CHECKING:  # defined by LiveFeed and its polling part (stubs here would shadow them)

        def add(self, key: SeriesKey) -> None: ...

        def _say(self, level: int, message: str, *args: Any, **where: Any) -> None: ...

        def _now(self, source: MarketSource, local: float | None = None) -> float: ...

    def rewind(self, key: SeriesKey, since: int) -> int:
        """Emit ``key`` again from the candle after ``since`` (ns: the open time of the last candle a
        bot resuming from its checkpoint processed), so that the candles that closed while the engine
        was down reach it: they are fetched at the next poll (paged by ``page_limit``) and emitted in
        close order before the live ones, as ``late`` batches when past due, like an outage's back-fill.

        A series only moves back, and never before the last candle the feed handed out for it: bots
        sharing the series have processed that one (a bot skips candles up to its own last one, so of
        several bots restored on one series the oldest checkpoint decides, once). Nor does it go back
        more than ``max_catch_up`` candles from the exchange's current time: beyond that a warning is
        logged and the catch-up starts at the cap.

        Returns the open time (ns) after which every candle of ``key`` will be emitted: ``since`` when
        nothing is skipped, later when the cap (or candles already handed out) leaves candles out. In
        that case the caller takes the returned time as its bot's last candle and fills the bot's
        windows again up to it with ``history(key, returned + step, count)``, so they hold no hole (the
        bot's positions were not managed over the skipped candles). A no-op on a series already
        behind ``since``; adds the series when it is not followed yet."""
        self.add(key)
        series = self._series[key]
        since_ms = since // _NS
        aligned = (since_ms - series.origin) // series.step * series.step + series.origin
        now = int(self._now(series.source))
        newest = (now - series.origin) // series.step * series.step + series.origin - series.step
        cap = -(2**62) if self.max_catch_up is None else newest - self.max_catch_up * series.step
        anchor = max(aligned, series.emitted, cap)
        if aligned < cap and series.emitted < cap:
            self._say(
                logging.WARNING,
                "%s %s: %d candles closed since %s; catching up on the last %d only (from %s)",
                *key,
                (newest - aligned) // series.step,
                _utc(aligned),
                self.max_catch_up,
                _utc(cap + series.step),
                pair=key[0],
                source=series.source,
            )
        elif aligned < series.emitted:
            self._say(
                logging.INFO,
                "%s %s: candles up to %s already handed out; resuming after it, not after %s",
                *key,
                _utc(series.emitted),
                _utc(aligned),
                pair=key[0],
                source=series.source,
            )
        if anchor < series.last_open:
            series.last_open = anchor
            series.epoch += 1
            series.retry_at, series.misses = 0.0, 0
            self._drop_pending(key, after=anchor)
            self._changed.set()
        return since if anchor <= aligned else anchor * _NS

    def remove(self, key: SeriesKey) -> None:
        """Stop following ``key``: no more polls, its stream task cancelled and its subscription
        dropped (``un_watch_ohlcv`` where the client has it), its buffered candles and cache
        forgotten. A later :meth:`add` starts it afresh at the feed's current moment.

        The feed keeps no reference count (``add`` is idempotent and called from several places):
        the runtime, which knows which bots follow which series, calls ``remove`` when the last bot
        following a series stops. Unknown keys are ignored."""
        series = self._series.pop(key, None)
        if series is None:
            return
        self._keep.pop(key, None)
        self._unwatched.discard(key)
        self._drop_pending(key, after=-(2**62))
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
            watch = series.watch
            if watch is not None:
                chore = asyncio.ensure_future(self._unsubscribe(task, watch))
                self._chores.add(chore)
                chore.add_done_callback(self._chores.discard)
        self._say(logging.INFO, "%s %s: no longer followed", *key, pair=key[0], source=series.source)
        self._changed.set()

    async def _unsubscribe(self, task: asyncio.Task[None], watch: SeriesWatch) -> None:
        await asyncio.gather(task, return_exceptions=True)  # its watch_ohlcv is cancelled first
        if watch.key in self._series:
            return  # followed again meanwhile: its new watch shares the subscription
        try:
            await asyncio.wait_for(watch.unsubscribe(), 10.0)
        except Exception:  # the connection may be down already: nothing to unsubscribe from
            log.debug("unsubscribing %s %s failed", *watch.key, exc_info=True)

    def _drop_pending(self, key: SeriesKey, *, after: int) -> None:
        """Forget buffered candles of ``key`` opening after ``after`` (ms)."""
        for close in list(self._pending):
            candles = self._pending[close]
            row = candles.get(key)
            if row is not None and row[0] // _NS > after:
                del candles[key]
                if not candles:
                    del self._pending[close]
