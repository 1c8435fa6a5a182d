"""Fast exits between candle closes: a bot holding a position whose strategy has ``fast_exit:`` rules
evaluates them on the trade stream, on its closed candles plus the candle forming now, and leaves at
market as soon as the rule holds, without waiting for the close.

* **The forming candle** is built from the public trades received since the last closed candle of
  the bot's window: open (first trade), high, low, close (last trade), volume and taker-buy volume
  (what a detector on trades would read; the DSL rules see open/high/low/close/volume). A trade counts
  only once received, so the forming candle never holds anything the bot could not have known.
  Trades of a candle older than the forming one (late) are dropped; trades of a later candle (the
  close has passed but the closed candle has not reached the bot through its feed yet, a second or
  two) start that candle, and nothing is evaluated until the window has caught up with it.
* **Throttled**: a pair is evaluated at most once per ``interval`` seconds of the exchange's clock
  (1 s by default), and only when trades arrived since its last evaluation; a bot with no position,
  or no ``fast_exit`` rule for the side it holds, evaluates nothing. One evaluation runs the whole
  plan on the window plus one row (about what a close costs the bot), never on the close path: it
  happens in the trade follower's task, and the candle close never waits for it (only for a fast
  exit's own transaction, when one is being written at that moment).
* **The exit** (:meth:`~engine.runtime.fast_exit_close.FastExitClose.fast_exit`) closes the position
  at market with the exit reason ``fast_exit`` and a ``trade``/``fast_exit`` event saying why.

Where the trades come from is :mod:`engine.runtime.trade_stream` (ccxt ``watch_trades``, or
``fetch_trades`` polled once a second). A replay (``engine run --replay``) has no trade stream: there
a fast exit is decided at the close and filled at the next open, as in a backtest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.feeds.sources.trades import Trade

__all__ = ["DEFAULT_INTERVAL", "FastExitGuard", "FormingCandle", "exit_pending", "has_fast_exit"]

DEFAULT_INTERVAL = 1.0  # seconds of the exchange's clock between two evaluations of a pair
_MS = 1_000_000

log = logging.getLogger("engine.runtime.fast_exit")


def exit_pending(trader: Any, pair: str) -> bool:
    """Whether ``pair``'s position is to close at the next open already (an exit decided on the last
    close). A paper bot's kernel fills it when the next candle closes, at that candle's open: the
    position is gone from that open on, so a fast exit must not take it again later in the candle.
    (Exchange modes send such an exit at the close and clear it.)"""
    from engine.trading import layout as L

    state = trader.state
    return bool(state.pos_i[state.pairs.index(pair), L.Q_PEND_EXIT])


def has_fast_exit(loaded: Any) -> bool:
    """Whether a bot's strategy has a ``fast_exit`` rule for either side."""
    strategy = loaded.strategy
    return any(strategy.fast_exit_column(side) is not None for side in ("long", "short"))


@dataclass(slots=True)
class FormingCandle:
    """The candle opened at ``open_ns`` as the trades received so far make it."""

    open_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    taker_buy: float = 0.0  # base amount bought by takers
    trades: int = 0
    last_ms: int = 0  # time of the latest trade

    @classmethod
    def first(cls, open_ns: int, trade: Trade) -> FormingCandle:
        candle = cls(open_ns, trade.price, trade.price, trade.price, trade.price)
        candle.add(trade)
        return candle

    def add(self, trade: Trade) -> None:
        price = trade.price
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += trade.amount
        if trade.taker_side == "buy":
            self.taker_buy += trade.amount
        self.trades += 1
        self.last_ms = max(self.last_ms, trade.time_ms)

    def row(self) -> tuple[float, float, float, float, float]:
        return (self.open, self.high, self.low, self.close, self.volume)

    def describe(self) -> dict[str, float | int]:
        return {
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "taker_buy_volume": self.taker_buy,
            "trades": self.trades,
            "candle_open_ms": self.open_ns // _MS,
            "last_trade_ms": self.last_ms,
        }


@dataclass
class _PairState:
    candle: FormingCandle | None = None
    dirty: bool = False  # trades arrived since the last evaluation
    last_eval_ms: float = float("-inf")


@dataclass
class FastExitGuard:
    """The fast exits of one bot (a :class:`~engine.runtime.bot.BotRunner`), fed the trades of its
    pairs by :class:`~engine.runtime.trade_stream.TradeStreams` (or by a test)."""

    runner: Any
    interval: float = DEFAULT_INTERVAL
    evaluations: int = 0  # forming-candle evaluations made (for tests and bench/)
    exits: int = 0
    _pairs: dict[str, _PairState] = field(default_factory=dict)

    def _expected_open(self, pair: str) -> int | None:
        """Open time (ns) of the candle after the last one in the bot's window (None: no window)."""
        last = self.runner.signals.last_time(pair)
        return None if last is None else int(last) + int(self.runner.step_ns)

    def take(self, pair: str, trades: Iterable[Trade]) -> None:
        """Fold newly received trades (oldest first) into the pair's forming candle."""
        state = self._pairs.setdefault(pair, _PairState())
        base = self._expected_open(pair)
        if base is None:
            return
        step = int(self.runner.step_ns)
        for trade in trades:
            ns = trade.time_ms * _MS
            if ns < base:
                continue  # part of a candle the bot has closed already
            open_ns = base + (ns - base) // step * step
            candle = state.candle
            if candle is None or open_ns > candle.open_ns:
                state.candle = FormingCandle.first(open_ns, trade)
            elif open_ns == candle.open_ns:
                candle.add(trade)
            else:
                continue  # a late trade of a candle that is over
            state.dirty = True

    def forming(self, pair: str) -> FormingCandle | None:
        state = self._pairs.get(pair)
        return None if state is None else state.candle

    async def check(self, pair: str, now_ms: float) -> bool:
        """Evaluate the pair's fast exit if it is due at ``now_ms`` (the exchange's clock) and close the
        position when it holds; True when a fast exit was taken."""
        state = self._pairs.get(pair)
        if state is None or not state.dirty or now_ms - state.last_eval_ms < self.interval * 1000:
            return False
        runner = self.runner
        held = runner.trader.held_side(pair)
        if held == 0 or exit_pending(runner.trader, pair):
            return False  # nothing to leave (or leaving at the next open already): no evaluation
        side = "long" if held > 0 else "short"
        if runner.loaded.strategy.fast_exit_column(side) is None:
            return False  # no fast exit for the side held
        candle = state.candle
        if candle is None or candle.open_ns != self._expected_open(pair):
            return False  # the window has not caught up with the candle the trades belong to
        state.dirty = False
        state.last_eval_ms = now_ms
        self.evaluations += 1
        if not runner.signals.forming_fast_exit(pair, side, candle.open_ns, candle.row()):
            return False
        taken = await runner.fast_exit(pair, side, candle, int(now_ms) * _MS)  # whole ms, as stored
        self.exits += int(taken)
        return taken
