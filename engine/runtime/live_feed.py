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
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from dsl.timeframes import timeframe_seconds
from engine.observability import redact_text
from engine.runtime.feed import Batch, Row, SeriesKey
from engine.runtime.live_ws import SeriesWatch

__all__ = [
    "CandleFeed",
    "LiveFeed",
    "MarketDataError",
    "MarketSource",
    "Timer",
    "WallTimer",
    "make_market_client",
]

log = logging.getLogger("engine.runtime.feed")

_NS = 1_000_000
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


class MarketDataError(ValueError):
    """Market data cannot be had: the exchange is unreachable at start, a pair is unknown to it, or a
    warm-up fetch failed. A ValueError so that a bot that cannot get its history is reported as a bot
    that cannot start, like a bot without candle files in a replay."""


class Timer(Protocol):
    """The local clock (ms) and a way to wait on it; tests drive a fake one."""

    def now_ms(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class WallTimer:
    def now_ms(self) -> float:
        return time.time() * 1000.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class MarketSource:
    """Where a series' candles come from: a ccxt exchange id, its sandbox or not, spot or futures."""

    name: str
    testnet: bool = False
    futures: bool = False

    @property
    def id(self) -> str:
        return self.name + (":testnet" if self.testnet else "") + (":futures" if self.futures else "")

    @classmethod
    def of_bot(cls, bot_model: Any) -> MarketSource:
        """From a bot's ``exchange:`` block (an ``engine.config`` Bot model)."""
        exchange = bot_model.exchange
        return cls(exchange.name, exchange.mode == "testnet", exchange.market == "futures")


def make_market_client(source: MarketSource) -> Any:
    """A key-less ccxt async client for public market data of ``source``: the ``ccxt.pro`` class when
    ccxt has one (REST and websocket in one client), else the ``ccxt.async_support`` one."""
    import ccxt.async_support as ccxt_async
    import ccxt.pro as ccxt_pro

    cls = getattr(ccxt_pro, source.name, None) or getattr(ccxt_async, source.name, None)
    if cls is None:
        raise MarketDataError(f"ccxt has no exchange {source.name!r}")
    options = {"defaultType": "future"} if source.futures else {}
    client = cls({"enableRateLimit": True, "options": options})
    if source.testnet:
        if not client.urls.get("test"):
            raise MarketDataError(f"{source.name} has no testnet (sandbox) in ccxt")
        client.set_sandbox_mode(True)
    return client


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


class LiveFeed:
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

    async def _measure_offset(self, client: Any, samples: int = 3) -> float:
        """Exchange time minus local time, as a lower bound: the server read its clock somewhere
        within the round trip, and assuming it did so at the very start means a candle is never taken
        for closed before it is (the round trip with the least delay is the tightest bound)."""
        best: tuple[float, float] | None = None
        for _ in range(samples):
            before = self.timer.now_ms()
            server = float(await client.fetch_time())
            after = self.timer.now_ms()
            if best is None or after - before < best[0]:
                best = (after - before, server - after)
        assert best is not None
        return best[1]

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

    # --- polling --------------------------------------------------------------------------------

    def _poll_at(self, series: _Series) -> float:
        """Exchange ms from which the series' next candle is asked over REST."""
        wait = self.stream_wait if series.watch is not None and series.watch.up else self.settle
        return series.next_close + wait * 1000

    def _now(self, source: MarketSource, local: float | None = None) -> float:
        """The exchange's current time in ms."""
        return (self.timer.now_ms() if local is None else local) + self.offsets.get(source.id, 0.0)

    async def _poll(self, series: _Series) -> None:
        """Fetch the candles of ``series`` closed since the last one; buffer them for emission."""
        local = self.timer.now_ms()
        series.polling = True
        epoch = series.epoch
        try:
            if series.source.id not in self.offsets:  # an exchange first used after the start
                client = self._client(series.source)
                await client.load_markets()
                self.offsets[series.source.id] = await self._measure_offset(client)
                self._say(
                    logging.INFO,
                    "%s: market data connected (clock offset %+.0f ms)",
                    series.source.id,
                    self.offsets[series.source.id],
                    source=series.source,
                )
            rows = await self._fetch_after(series)
            if epoch != series.epoch or self._series.get(series.key) is not series:
                series.polling = False  # rewound or removed meanwhile: asked from the wrong candle
                return
        except Exception as error:
            series.polling = False
            series.failures += 1
            headers = getattr(self.clients.get(series.source.id), "last_response_headers", None)
            delay = _retry_after(error, headers) or min(
                self.backoff_cap, self.backoff * 2 ** (series.failures - 1)
            )
            delay += random.uniform(0, min(1.0, delay * 0.1))
            series.retry_at = local + delay * 1000
            self._say(
                logging.WARNING,
                "%s %s: candles unavailable (%s), retry %d in %.1fs",
                *series.key,
                _describe(error),
                series.failures,
                delay,
                pair=series.key[0],
                source=series.source,
            )
            return
        series.polling = False
        if series.failures:
            self._say(
                logging.INFO,
                "%s %s: candles back after %d failed polls, %d candle(s) fetched",
                *series.key,
                series.failures,
                len(rows),
                pair=series.key[0],
                source=series.source,
            )
        series.failures = 0
        if not rows:
            # Closed but not published yet: ask again shortly; once the grace is over, less and less
            # often (a halted market publishes nothing for hours), at least once per candle.
            late = self._now(series.source, local) > series.next_close + self.grace * 1000
            series.misses = series.misses + 1 if late else 0
            delay = self.retry * 2 ** min(series.misses, 16)
            series.retry_at = local + min(delay, self.backoff_cap, series.step / 1000) * 1000
            return
        series.retry_at = 0.0
        series.misses = 0
        self._take(series, rows)

    def _take(self, series: _Series, rows: list[Row]) -> None:
        """Buffer closed candles of ``series`` for emission, past the last one taken (the stream and a
        REST request may both bring a candle: the first one counts)."""
        if self._series.get(series.key) is not series:
            return  # removed while its request or stream answer was on the way
        rows = [r for r in rows if r[0] // _NS > series.last_open]
        if not rows:
            return
        for row in rows:
            close = row[0] // _NS + series.step
            self._pending.setdefault(close, {})[series.key] = row
        series.last_open = rows[-1][0] // _NS
        newest = series.cache[-1][0] if series.cache else -(2**62)
        series.cache.extend(r for r in rows if r[0] > newest)
        keep = max(self._keep.get(series.key, 0), 1) + self.page_limit
        if len(series.cache) > 2 * keep:
            del series.cache[:-keep]

    async def _fetch_after(self, series: _Series) -> list[Row]:
        return await self._fetch_until(series, series.last_open + series.step, None)

    async def _fetch_until(self, series: _Series, since: int, until: int | None) -> list[Row]:
        """Closed candles of ``series`` opening at or after ``since`` (ms) and closing at or before
        ``until`` (ms; None: now), following pages until the answer is short."""
        return await _fetch_pages(
            self._client(series.source),
            series,
            since,
            until,
            self.page_limit,
            lambda: self._now(series.source),
        )

    def _fetch_blocking(self, series: _Series, since: int, until: int) -> list[Row]:
        """A history request from synchronous code running on the event loop: through a fresh client
        on a worker thread's own loop (ccxt clients belong to the loop that opened them)."""
        source, offset, factory = series.source, self.offsets.get(series.source.id, 0.0), self.client_factory
        now = self.timer.now_ms

        async def fetch() -> list[Row]:
            client = factory(source)
            try:
                for attempt in range(1, 4):
                    try:
                        return await _fetch_pages(
                            client, series, since, until, self.page_limit, lambda: now() + offset
                        )
                    except Exception as error:
                        if attempt == 3:
                            raise MarketDataError(
                                f"{series.key[0]} {series.key[1]}: warm-up history unavailable: "
                                f"{_describe(error)}"
                            ) from None
                        await asyncio.sleep(self.backoff * attempt)
                return []
            finally:
                await client.close()

        self._say(
            logging.INFO,
            "%s %s: fetching warm-up history",
            *series.key,
            pair=series.key[0],
            source=series.source,
        )
        with ThreadPoolExecutor(1, thread_name_prefix="feed-history") as pool:
            return pool.submit(asyncio.run, fetch()).result()

    async def _with_retries(
        self, what: str, fetch: Callable[[], Any], source: MarketSource, attempts: int = 4
    ) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return await fetch()
            except Exception as error:
                if attempt == attempts:
                    raise MarketDataError(f"{what} unavailable: {_describe(error)}") from None
                delay = _retry_after(error) or self.backoff * 2 ** (attempt - 1)
                self._say(
                    logging.WARNING, "%s: %s, retrying in %.1fs", what, _describe(error), delay, source=source
                )
                await asyncio.sleep(delay)  # before the feed runs: wall time
        raise AssertionError("unreachable")

    # --- websocket streams ------------------------------------------------------------------

    def _start_streams(self) -> None:
        """Start the watch loop of every series added since, once its exchange is measured."""
        for key in list(self._unwatched):
            series = self._series[key]
            if series.source.id not in self.offsets:
                continue  # its first poll connects the exchange; the stream starts after it
            self._unwatched.discard(key)
            client = self._client(series.source)
            if not self.stream or not (getattr(client, "has", None) or {}).get("watchOHLCV"):
                continue
            series.watch = SeriesWatch(
                client,
                key,
                series.step,
                deliver=lambda watch, series=series: self._on_stream(series, watch),
                on_down=lambda watch, error, series=series: self._on_stream_down(series, error),
                sleep=self.timer.sleep,
                backoff=self.backoff,
                backoff_cap=self.backoff_cap,
            )
            self._tasks[key] = asyncio.ensure_future(series.watch.run())

    async def _on_stream(self, series: _Series, watch: SeriesWatch) -> None:
        """Take the candles the stream shows closed; a hole before them is back-filled over REST."""
        if watch.answers == 1:
            self._say(
                logging.INFO, "%s %s: candle stream up", *series.key, pair=series.key[0], source=series.source
            )
        rows, hole = watch.view.closed_after(series.last_open)
        self._take(series, rows)
        if hole and not series.polling and self.timer.now_ms() >= series.retry_at:
            await self._poll(series)
            self._take(series, watch.view.closed_after(series.last_open)[0])
        if self._pending:
            self._changed.set()

    def _on_stream_down(self, series: _Series, error: BaseException) -> None:
        self._say(
            logging.WARNING,
            "%s %s: candle stream down (%s), polling meanwhile",
            *series.key,
            _describe(error),
            pair=series.key[0],
            source=series.source,
        )
        self._changed.set()  # the series is polled again from its close + settle

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


def _retry_after(error: BaseException, headers: Mapping[str, str] | None = None) -> float | None:
    """Seconds a rate-limited client was asked to wait, when the exchange said so."""
    from engine.exchanges.ccxt_exchange import translate_error

    translated = translate_error(error, headers)
    return getattr(translated, "retry_after", None)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return redact_text(f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__)


def _utc(ms: int) -> str:
    return pd.Timestamp(ms * _NS, tz="UTC").strftime("%Y-%m-%d %H:%M")


def _log(level: int, message: str, *args: Any, pair: str | None = None, mode: str = "paper") -> None:
    # The mode is passed explicitly: the feed's generator runs in the runtime's tasks, whose context
    # variables it must not set across a yield.
    log.log(level, message, *args, extra={"mode": mode, "pair": pair})
