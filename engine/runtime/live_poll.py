"""Getting a live feed's candles in: REST polls (with backoff, Retry-After and a slower pace for a
market that publishes nothing), the exchange's clock offset, warm-up requests (also from synchronous
code, on a worker thread), and the websocket streams whose holes are back-filled over REST. Candles
end up in the feed's pending buffer, which :class:`~engine.runtime.live_feed.LiveFeed` groups into
batches.

:class:`_Polling` holds no state of its own: it is a part of ``LiveFeed``, which sets the attributes
annotated below in its ``__init__``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from engine.runtime.feed import Row, SeriesKey
from engine.runtime.live_market import _NS, MarketDataError, MarketSource, Timer, _describe, _retry_after
from engine.runtime.live_series import _fetch_pages, _Series
from engine.runtime.live_ws import SeriesWatch


class _Polling:
    """REST polls and websocket streams of a :class:`~engine.runtime.live_feed.LiveFeed`."""

    # State owned by LiveFeed.__init__.
    clients: dict[str, Any]
    client_factory: Callable[[MarketSource], Any]
    timer: Timer
    grace: float
    settle: float
    retry: float
    backoff: float
    backoff_cap: float
    page_limit: int
    offsets: dict[str, float]
    stream: bool
    stream_wait: float
    _series: dict[SeriesKey, _Series]
    _pending: dict[int, dict[SeriesKey, Row]]
    _keep: dict[SeriesKey, int]
    _changed: asyncio.Event
    _unwatched: set[SeriesKey]
    _tasks: dict[SeriesKey, asyncio.Task[None]]

    if TYPE_CHECKING:  # defined by LiveFeed (stubs here would shadow them at run time)

        def _say(self, level: int, message: str, *args: Any, **where: Any) -> None: ...

        def _client(self, source: MarketSource) -> Any: ...

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
