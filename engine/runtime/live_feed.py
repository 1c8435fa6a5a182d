"""Closed candles from an exchange, as the runtime consumes them (the live twin of ``ReplayFeed``).

:class:`LiveFeed` polls ``fetch_ohlcv`` of ``ccxt.async_support`` for every subscribed series and emits
one :class:`~engine.runtime.feed.Batch` per close moment, like the replay does:

* **Closed candles only.** A candle is emitted once its open time + timeframe is at or before the
  *exchange's* time (the offset to the local clock is measured with ``fetch_time`` when connecting);
  the forming candle never leaves the feed.
* **One batch per moment.** Series closing at the same moment are held for up to ``grace`` seconds
  past the close so that they travel together; a series that comes later is emitted on its own
  batch (with its own close time) as soon as it arrives, before any later moment.
* **No gaps, no duplicates.** Each series remembers the last candle it fetched and always asks for
  the ones after it (paginated), so after an outage the missed candles come first, in close order,
  each moment its own batch. Exchange errors are retried with an exponential backoff (Retry-After
  when the exchange sent one); they never end the feed.
* **Warm-up.** :meth:`LiveFeed.prepare` fetches each series' history before the bots start (paginated
  across the exchange's page limit) so that :meth:`LiveFeed.history`, which the bots call
  synchronously, is served from memory. A series first seen later (a bot added by hot reload) is
  fetched there and then from a worker thread, which holds the event loop for that request.

* **Restart catch-up and removal.** :meth:`LiveFeed.rewind` sets a series back to the candle after a
  restored bot's checkpoint: what closed while the engine was down is fetched and emitted first (late),
  at most ``max_catch_up`` candles, never a candle twice. :meth:`LiveFeed.remove` ends the polls and
  the stream of a series no bot follows any more.

* **Websocket first where there is one.** A series whose client has ``watchOHLCV`` (``ccxt.pro``) is
  fed by a :class:`~engine.runtime.live_ws.SeriesWatch`: a candle is closed once the stream shows a
  later one. The stream never replaces REST as the truth for what was missed: a hole in what the
  stream shows (a reconnection) is back-filled with the same ``fetch_ohlcv`` request as a poll, and a
  series whose stream is down, or silent ``stream_wait`` seconds past a close, is polled as above.

The feed is split by job: :mod:`~engine.runtime.live_market` (sources, clients, clock, errors),
:mod:`~engine.runtime.live_series` (a series' state and its paginated REST request),
:mod:`~engine.runtime.live_poll` (polls, clock offsets, warm-up requests, streams),
:mod:`~engine.runtime.live_catch_up` (rewind and removal) and this module (the feed object: routing,
connection, warm-up, history, and the grouping of candles into batches).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

import pandas as pd

from dsl.timeframes import timeframe_seconds
from engine.runtime.feed import Batch, Row, SeriesKey
from engine.runtime.live_catch_up import _CatchUp
from engine.runtime.live_market import (
    _NS,
    MarketDataError,
    MarketSource,
    Timer,
    WallTimer,
    _describe,
    _log,
    log,
    make_market_client,
)
from engine.runtime.live_poll import _Polling
from engine.runtime.live_series import _frame, _Series

__all__ = [
    "CandleFeed",
    "LiveFeed",
    "MarketDataError",
    "MarketSource",
    "Timer",
    "WallTimer",
    "make_market_client",
]

_WEEK_ORIGIN_MS = 4 * 86_400_000  # weekly candles open on Monday, the epoch was a Thursday
_MODE_RANK = {"backtest": 0, "paper": 1, "testnet": 2, "live": 3}


class CandleFeed(Protocol):
    """What the runtime (orchestrator and bots) uses of a feed; ``ReplayFeed`` and ``LiveFeed`` offer it."""

    start: pd.Timestamp | None
    clock: int  # close time (ns) of the last batch emitted

    def add(self, key: SeriesKey) -> None: ...

    def rewind(self, key: SeriesKey, since: int) -> int: ...

    def remove(self, key: SeriesKey) -> None: ...

    def history(self, key: SeriesKey, until: int, count: int) -> pd.DataFrame: ...

    def batches(self) -> AsyncIterator[Batch]: ...


class LiveFeed(_CatchUp, _Polling):
    """Closed-candle batches from exchanges' REST APIs. See the module docstring.

    A series on a client with ``has["watchOHLCV"]`` is streamed unless ``stream`` is False; while
    its stream is up, REST is asked for its candle only ``stream_wait`` seconds past the close.

    ``routes`` maps a pair to the source serving it (bots on several exchanges: one client each). A
    pair not routed is looked up with ``resolve`` (pair -> (source, mode) or None; ``engine run`` asks
    the runtime's bots), else served by ``default``, else by the first source routed. ``clients``
    injects ready ccxt clients by source id; others are built by ``client_factory``. ``grace``,
    ``settle`` and ``retry`` are seconds of the exchange's clock. ``max_catch_up`` is how many
    candles :meth:`rewind` may go back from the exchange's current time (the default is a day of
    one-minute candles, two months of hourly ones; None: no limit).
    """

    def __init__(
        self,
        *,
        routes: Mapping[str, MarketSource] | None = None,
        default: MarketSource | None = None,
        clients: Mapping[str, Any] | None = None,
        client_factory: Callable[[MarketSource], Any] | None = None,
        resolve: Callable[[str], tuple[MarketSource, str] | None] | None = None,
        timer: Timer | None = None,
        grace: float = 3.0,
        settle: float = 0.5,
        retry: float = 0.5,
        backoff: float = 1.0,
        backoff_cap: float = 60.0,
        page_limit: int = 1000,
        mode: str = "paper",
        stream: bool = True,
        stream_wait: float = 2.0,
        max_catch_up: int | None = 1440,
    ) -> None:
        self.routes: dict[str, MarketSource] = dict(routes or {})
        self.default = default
        self.clients: dict[str, Any] = dict(clients or {})
        self._owned: set[str] = set()  # clients built here, closed by close()
        self.client_factory = client_factory or make_market_client
        self.resolve = resolve
        self.timer: Timer = timer or WallTimer()
        self.grace, self.settle, self.retry = grace, settle, retry
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self.page_limit = page_limit
        self.mode = mode  # the mode logged for a source without one in ``modes``
        self.modes: dict[str, str] = {}  # source id -> mode of the bots it serves (for log lines)
        self.start: pd.Timestamp | None = None  # exchange time when connected: live candles close after it
        self.clock: int = -(2**62)
        self.offsets: dict[str, float] = {}  # source id -> exchange ms minus local ms
        self._series: dict[SeriesKey, _Series] = {}
        self._pending: dict[int, dict[SeriesKey, Row]] = {}  # close ms -> candles waiting to be emitted
        self._keep: dict[SeriesKey, int] = {}  # candles to keep in memory per series (warm-up length)
        self._changed = asyncio.Event()
        self.stream, self.stream_wait = stream, stream_wait
        self._unwatched: set[SeriesKey] = set()  # series whose stream is not started (nor ruled out)
        self._tasks: dict[SeriesKey, asyncio.Task[None]] = {}
        self._chores: set[asyncio.Task[None]] = set()  # unsubscriptions of removed series
        self.max_catch_up = max_catch_up  # candles a rewind may go back (None: no limit)

    @classmethod
    def for_bots(cls, bots: Iterable[Any], **options: Any) -> LiveFeed:
        """A feed routing every pair of ``bots`` (``LoadedBot``s) to its bot's exchange. When bots on
        different exchanges trade the same pair, the first one's exchange serves it (logged)."""
        routes: dict[str, MarketSource] = {}
        modes: dict[str, str] = {}
        for bot in bots:
            source = MarketSource.of_bot(bot.model)
            mode = bot.model.exchange.mode
            # A source serving paper and live bots logs as live: the more consequential one.
            if _MODE_RANK.get(mode, 0) >= _MODE_RANK.get(modes.get(source.id, ""), -1):
                modes[source.id] = mode
            for pair in bot.model.pairs:
                known = routes.setdefault(pair, source)
                if known != source:
                    _log(
                        logging.WARNING,
                        "%s is traded on %s and %s: candles come from %s",
                        pair,
                        known.id,
                        source.id,
                        known.id,
                        mode=options.get("mode", "paper"),
                    )
        feed = cls(routes=routes, **options)
        feed.modes.update(modes)
        return feed

    # --- set-up ---------------------------------------------------------------------------------

    def _say(
        self,
        level: int,
        message: str,
        *args: Any,
        pair: str | None = None,
        source: MarketSource | None = None,
    ) -> None:
        mode = self.modes.get(source.id, self.mode) if source is not None else self.mode
        _log(level, message, *args, pair=pair, mode=mode)

    def _source(self, pair: str) -> MarketSource:
        source = self.routes.get(pair)
        if source is None and self.resolve is not None:
            # A pair first seen after the start (a bot added by hot reload): ask who trades it.
            source, mode = self.resolve(pair) or (None, None)
            if source is not None:
                self.routes[pair] = source
                if mode is not None and _MODE_RANK.get(mode, 0) >= _MODE_RANK.get(
                    self.modes.get(source.id, ""), -1
                ):
                    self.modes[source.id] = mode
        source = source or self.default or next(iter(self.routes.values()), None)
        if source is None:
            raise MarketDataError(f"{pair}: no exchange to fetch its candles from")
        return source

    def _client(self, source: MarketSource) -> Any:
        client = self.clients.get(source.id)
        if client is None:
            client = self.client_factory(source)
            self.clients[source.id] = client
            self._owned.add(source.id)
        return client

    def _sources(self) -> list[MarketSource]:
        found = {s.id: s for s in [*self.routes.values(), *([self.default] if self.default else [])]}
        return list(found.values())

    async def connect(self, attempts: int = 3) -> None:
        """Reach every source: measure its clock offset, load its markets and check the routed pairs.
        Sets :attr:`start` to the exchange's current time. Raises :class:`MarketDataError`."""
        sources = self._sources()
        if not sources:
            raise MarketDataError("no exchange to fetch candles from (no bots?)")
        for source in sources:
            client = self._client(source)
            for attempt in range(1, attempts + 1):
                try:
                    await client.load_markets()
                    offset = await self._measure_offset(client)
                    break
                except Exception as error:  # ccxt errors, DNS, refused connections
                    if attempt == attempts:
                        raise MarketDataError(
                            f"cannot reach {source.id} for market data: {_describe(error)}"
                        ) from None
                    self._say(logging.WARNING, "%s: %s, retrying", source.id, _describe(error), source=source)
                    await asyncio.sleep(self.backoff * attempt)  # before the feed runs: wall time
            self.offsets[source.id] = offset
            unknown = [p for p, s in self.routes.items() if s == source and p not in client.markets]
            if unknown:
                raise MarketDataError(f"{source.id} has no market {', '.join(sorted(unknown))}")
            self._say(
                logging.INFO,
                "%s: market data connected (clock offset %+.0f ms)",
                source.id,
                self.offsets[source.id],
                source=source,
            )
        now = max(self._now(source) for source in sources)
        self.start = pd.Timestamp(int(now) * _NS, tz="UTC")

    async def prepare(self, warmups: Mapping[SeriesKey, int]) -> None:
        """Subscribe to each series and fetch its ``count`` candles closed by :attr:`start` (the warm-up)."""
        for key, count in warmups.items():
            self.add(key)
            self._keep[key] = max(self._keep.get(key, 0), count)

        async def one(key: SeriesKey, count: int) -> None:
            series = self._series[key]
            until = series.last_open + series.step
            rows = await self._with_retries(
                f"{key[0]} {key[1]} history",
                lambda: self._fetch_until(series, until - (count + 1) * series.step, until),
                series.source,
            )
            series.cache = rows[-max(count, 1) :] if count > 0 else []

        await asyncio.gather(*(one(key, count) for key, count in warmups.items()))

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._chores, return_exceptions=True)
        for source_id in self._owned:
            client = self.clients.pop(source_id, None)
            if client is not None:
                try:
                    await client.close()
                except Exception:
                    log.debug("closing %s failed", source_id, exc_info=True)
        self._owned.clear()

    # --- the runtime's interface ----------------------------------------------------------------

    def add(self, key: SeriesKey) -> None:
        """Start emitting ``key`` (pair, timeframe) with the first candle closing after the feed's
        current moment (its start, or the last batch); idempotent."""
        if key in self._series:
            return
        pair, timeframe = key
        step = timeframe_seconds(timeframe) * 1000
        origin = _WEEK_ORIGIN_MS if timeframe == "1w" else 0
        source = self._source(pair)
        # Before connect() there is no start: the local clock then, never the whole history since 1970.
        start = int(self.start.value // _NS) if self.start is not None else int(self._now(source))
        anchor = max(self.clock // _NS, start)
        last_close = (anchor - origin) // step * step + origin
        self._series[key] = _Series(key, source, step, origin, last_close - step)
        self._unwatched.add(key)
        self._changed.set()

    def streaming(self, key: SeriesKey) -> bool:
        """Whether ``key`` is fed by its websocket stream right now (not by polling)."""
        series = self._series.get(key)
        return bool(series is not None and series.watch is not None and series.watch.up)

    def history(self, key: SeriesKey, until: int, count: int) -> pd.DataFrame:
        """The last ``count`` candles of ``key`` closed at or before ``until`` (ns), as a candle frame."""
        self.add(key)
        series = self._series[key]
        self._keep[key] = max(self._keep.get(key, 0), count)
        if count <= 0:
            return _frame([])
        until_ms = until // _NS
        stop = bisect.bisect_right(series.cache, until_ms - series.step, key=lambda r: r[0] // _NS)
        if stop >= count:
            return _frame(series.cache[stop - count : stop])
        rows = self._fetch_blocking(series, until_ms - (count + 1) * series.step, until_ms)
        if not series.cache:
            if rows and rows[-1][0] // _NS == series.last_open:
                series.cache = rows  # ends where live candles begin: later calls are served from memory
        elif rows and rows[0][0] < series.cache[0][0] <= rows[-1][0] + series.step * _NS:
            # Reaches back before the cache and joins it (bots restored from the same checkpoint ask
            # for the same window): kept, so the next ones are served from memory.
            series.cache[:0] = [r for r in rows if r[0] < series.cache[0][0]]
        return _frame(rows[-count:])

    async def batches(self) -> AsyncIterator[Batch]:
        """Closed-candle batches in close order, forever (the runtime stops consuming to stop)."""
        while True:
            if self._unwatched:
                self._start_streams()
            batch = self._next_ready()
            if batch is not None:
                self.clock = max(self.clock, batch.close_time)
                yield batch
                continue
            local = self.timer.now_ms()
            # A series on an exchange not measured yet is polled at once: the poll measures its clock.
            due = [
                s
                for s in self._series.values()
                if local >= s.retry_at
                and not s.polling
                and (s.source.id not in self.offsets or self._now(s.source, local) >= self._poll_at(s))
            ]
            if due:
                await asyncio.gather(*(self._poll(s) for s in due))
                continue
            await self._wait_until(self._wake_at(local))

    # --- grouping -------------------------------------------------------------------------------

    def _next_ready(self) -> Batch | None:
        """The earliest buffered moment when it is complete, late, or past its grace."""
        if not self._pending:
            return None
        close = min(self._pending)
        if close * _NS > self.clock and not self._complete(close):
            now = min((self._now(s.source) for s in self._series.values()), default=0.0)
            if now < close + self.grace * 1000:
                return None
        candles = self._pending.pop(close)
        ordered = {key: candles[key] for key in sorted(candles)}
        for key, row in ordered.items():
            series = self._series.get(key)
            if series is not None:
                series.emitted = max(series.emitted, row[0] // _NS)
        # Handed out once the next candle has closed too (a back-fill after an outage): too late to
        # enter on its price; exchange bots send exits only (Batch.late).
        steps = [self._series[key].step for key in ordered if key in self._series]
        now = min(
            (self._now(self._series[key].source) for key in ordered if key in self._series), default=0.0
        )
        late = bool(steps) and now >= close + min(steps)
        return Batch(close * _NS, ordered, late=late)

    def _complete(self, close: int) -> bool:
        """Every series that closes a candle at ``close`` has delivered it."""
        for series in self._series.values():
            last_close = series.last_open + series.step
            if last_close < close and (close - series.origin) % series.step == 0:
                return False
        return True

    def _wake_at(self, local: float) -> float:
        """Local ms of the next thing to do: a series' next close (plus settle), a retry, a grace end."""
        wakes = []
        for series in self._series.values():
            offset = self.offsets.get(series.source.id, 0.0)
            wakes.append(max(self._poll_at(series) - offset, series.retry_at))
        if self._pending:
            offset = max(self.offsets.values(), default=0.0)
            wakes.append(min(self._pending) + self.grace * 1000 - offset)
        return min(wakes, default=local + 1000.0)

    async def _wait_until(self, local: float) -> None:
        """Sleep until the timer reads ``local`` (ms), or until a series is added, rewound or removed."""
        self._changed.clear()
        sleeper = asyncio.ensure_future(self._sleep_until(local))
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            changed.cancel()

    async def _sleep_until(self, local: float) -> None:
        # The delay is measured when the sleep starts, not when it was decided: the clock may have
        # moved in between (the task starts at the loop's next turn), and a delay decided earlier
        # would then overshoot the wake time.
        await self.timer.sleep(max(0.0, local - self.timer.now_ms()) / 1000)
