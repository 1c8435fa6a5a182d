"""The public trade stream of the pairs whose bots have ``fast_exit:`` rules, handed to their
:class:`~engine.runtime.fast_exit.FastExitGuard` as the trades arrive.

One :class:`TradeFollower` per pair (shared by every bot trading it) on the live feed's own key-less
ccxt client for that pair's exchange:

* ``watch_trades`` (ccxt.pro: Binance's ``<symbol>@trade`` websocket stream) where the client has
  ``has["watchTrades"]``: trades arrive as the exchange publishes them;
* else ``fetch_trades`` polled every ``poll`` seconds (1 s by default) from a cursor (on Binance the
  aggregate trades, ``GET /api/v3/aggTrades``, paginated from the last trade's time, ids de-duplicated).
  A dump is then seen up to ``poll`` seconds late. A stream that fails falls back to polling for the
  next ``poll`` period and subscribes again.

Following starts with the trades since the open of the candle forming now (fetched over REST once),
so the forming candle is whole from the first evaluation. After each answer the guards of that pair
are asked to evaluate (they throttle themselves). The exchange's clock is the local clock plus the
offset the live feed measured. A replay (``ReplayFeed``) has no trade stream: nothing is followed.

The recorded trades feed (``engine.feeds.sources.trades``) is a different thing: complete one-minute
buckets stored as point-in-time series for rules and backtests, 2 s after each bucket ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.feeds.sources.trades import Trade, parse_trade
from engine.runtime.fast_exit import DEFAULT_INTERVAL, FastExitGuard, has_fast_exit

__all__ = ["TradeFollower", "TradeStreams"]

log = logging.getLogger("engine.runtime.fast_exit")

DEFAULT_POLL = 1.0  # seconds between two fetch_trades of a pair without a websocket
_PAGE = 1000
_WINDOW_MS = 3_600_000


@dataclass
class TradeFollower:
    """The trades of one pair from ``client``, from ``since`` (exchange ms) on, each new batch handed to
    ``deliver(trades, now_ms)`` (oldest first, never twice)."""

    client: Any
    pair: str
    deliver: Callable[[list[Trade], float], Awaitable[None]]
    now_ms: Callable[[], float]
    poll: float = DEFAULT_POLL
    stream: bool = True
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    cursor: int = 0  # ms: every trade before it was delivered
    _edge: set[str] = field(default_factory=set)  # ids delivered at the cursor's ms
    received: int = 0

    def _new(self, rows: list[dict]) -> list[Trade]:
        """The trades of ``rows`` not delivered yet, oldest first; moves the cursor past them."""
        fresh: list[Trade] = []
        for row in sorted(rows, key=lambda r: r.get("timestamp") or 0):
            trade = parse_trade(row)
            if trade is None or trade.time_ms < self.cursor:
                continue
            key = trade.id or f"{trade.time_ms}:{trade.price}:{trade.amount}:{trade.taker_side}"
            if trade.time_ms == self.cursor and key in self._edge:
                continue
            if trade.time_ms > self.cursor:
                self.cursor, self._edge = trade.time_ms, set()
            self._edge.add(key)
            fresh.append(trade)
        self.received += len(fresh)
        return fresh

    async def fetch(self) -> None:
        """Every trade published since the cursor, page after page (REST). Binance refuses a
        startTime..endTime window of an hour or more (ccxt sends one with ``since``): the request
        names its own end, and an exhausted window moves the cursor to the next one."""
        windowed = str(getattr(self.client, "id", "")).startswith("binance")
        while True:
            now = self.now_ms()
            until = min(int(now), self.cursor + _WINDOW_MS - 1)
            params = {"until": until} if windowed else {}
            rows = list(await self.client.fetch_trades(self.pair, self.cursor, _PAGE, params))
            fresh = self._new(rows)
            await self.deliver(fresh, max(now, float(self.cursor)))
            if len(rows) >= _PAGE and fresh:
                continue  # a full page: more from the cursor
            if not windowed or until >= int(now):
                return
            if self.cursor <= until:
                self.cursor, self._edge = until + 1, set()

    async def run(self) -> None:
        """Follow until cancelled; errors are logged and retried after ``poll`` seconds."""
        streaming = self.stream and bool(getattr(self.client, "has", {}).get("watchTrades"))
        caught_up = False
        while True:
            try:
                if not caught_up or not streaming:
                    await self.fetch()
                    caught_up = True
                    if not streaming:
                        await self.sleep(self.poll)
                        continue
                rows = await self.client.watch_trades(self.pair)
                await self.deliver(self._new(list(rows)), max(self.now_ms(), float(self.cursor)))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the exchange is down or refuses: retried, never fatal
                log.warning("%s: trade stream: %s: %s; retrying", self.pair, type(error).__name__, error)
                caught_up = False  # whatever was missed comes over REST first
                await self.sleep(self.poll)


class TradeStreams:
    """The runtime's trade followers and the guards they feed (see the module docstring).

    ``feed`` is the runtime's candle feed: a live one lends its clients, sources and clock offsets; any
    other (a replay) follows nothing."""

    def __init__(
        self,
        feed: Any,
        *,
        interval: float = DEFAULT_INTERVAL,
        poll: float = DEFAULT_POLL,
        stream: bool = True,
    ) -> None:
        self.feed = feed
        self.interval, self.poll, self.stream = interval, poll, stream
        self.guards: dict[str, FastExitGuard] = {}  # bot name -> its guard
        self.followers: dict[tuple[str, str], TradeFollower] = {}  # (source id, pair) -> follower
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    @property
    def live(self) -> bool:
        return hasattr(self.feed, "_client") and hasattr(self.feed, "_source")

    def follow(self, runner: Any, loaded: Any = None) -> FastExitGuard | None:
        """Start evaluating ``runner``'s fast exits on the trades of its pairs (None: the bot has no
        ``fast_exit`` rule, or there is no trade stream to follow). ``loaded``: the configuration a
        hot reload stages for it (applied at its next close; the guard reads the rules then in force).
        Following a bot followed already keeps its guard."""
        if not has_fast_exit(loaded or runner.loaded) or not self.live:
            return None
        known = self.guards.get(runner.name)
        if known is not None and known.runner is runner:
            return known
        guard = FastExitGuard(runner, interval=self.interval)
        self.guards[runner.name] = guard
        for pair in runner.pairs:
            try:
                source = self.feed._source(pair)
            except ValueError as error:  # no exchange serves it: the close path still decides exits
                log.warning(
                    "%s: no trade stream for %s (%s): fast exits at the close", runner.name, pair, error
                )
                continue
            key = (source.id, pair)
            if key in self.followers:
                continue
            feed, timer, step_ms = self.feed, self.feed.timer, runner.step_ns // 1_000_000

            def now_ms(feed: Any = feed, source_id: str = source.id) -> float:
                # The exchange's clock: the live feed measures (and re-measures) its offset.
                return feed.timer.now_ms() + feed.offsets.get(source_id, 0.0)

            now = now_ms()
            follower = TradeFollower(
                self.feed._client(source),
                pair,
                self._deliverer(pair),
                now_ms,
                poll=self.poll,
                stream=self.stream,
                sleep=timer.sleep,
                cursor=int(now - now % step_ms),  # the open of the candle forming now
            )
            self.followers[key] = follower
            self._tasks[key] = asyncio.create_task(follower.run(), name=f"trades:{pair}")
        log.info("%s: fast exits followed on the trade stream of %s", runner.name, ", ".join(runner.pairs))
        return guard

    def _deliverer(self, pair: str) -> Callable[[list[Trade], float], Awaitable[None]]:
        async def deliver(trades: list[Trade], now_ms: float) -> None:
            for guard in list(self.guards.values()):
                if pair not in guard.runner.pairs:
                    continue
                if trades:
                    guard.take(pair, trades)
                try:
                    await guard.check(pair, now_ms)
                except Exception:  # the bot restored its checkpoint; the next trades try again
                    log.exception("%s: fast exit on %s failed", guard.runner.name, pair)

        return deliver

    async def unfollow(self, name: str) -> None:
        """Stop ``name``'s fast exits; followers of pairs no other guarded bot trades end."""
        self.guards.pop(name, None)
        wanted = {pair for guard in self.guards.values() for pair in guard.runner.pairs}
        for key in [k for k in self._tasks if k[1] not in wanted]:
            task = self._tasks.pop(key)
            self.followers.pop(key, None)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self) -> None:
        for name in list(self.guards):
            await self.unfollow(name)
