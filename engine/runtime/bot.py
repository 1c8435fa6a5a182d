"""One bot in the live runtime: candles in, signals, the trading kernel, and its transactions per candle.

Per closed candle (all of the bot's pairs that closed at that moment, together, as in a backtest):

1. the strategy computes signals on the bot's candle windows (:class:`~engine.strategy.live.LiveSignals`);
2. the portfolio risk manager may refuse new entries (the reason is stored as a ``risk`` event);
3. the :class:`~engine.trading.trader.Trader` advances: fills at this candle's open of the orders
   decided on the previous close, stops and targets inside the candle, orders for the next open;
4. the order intents the candle decides (with deterministic client ids) are committed first, in a
   small transaction of their own, and sent (exchange modes; paper: marked sent); then a second
   transaction stores the fills, positions, closed trades, events, an equity snapshot and the
   kernel's state as a checkpoint (a candle that decides nothing has only that one).

A paper bot executes with the kernel's own simulation: an order decided on a close fills at the next
open exactly as in the backtest. A testnet/live bot sends its orders to the exchange right after the
intent transaction committed them, and the kernel follows the real fills (``engine.runtime.execution``).
If anything fails, the bot reloads its last committed checkpoint, so the in-memory state never runs
ahead of the database.

The writes go through a :class:`~engine.runtime.commit.Committer`: one shared by every bot writes
the intents of all bots whose candle is ready in one urgent transaction, then their bookkeeping in
bounded batches (one savepoint each).
"""

from __future__ import annotations

import asyncio
import math
import time as _time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dsl.timeframes import timeframe_seconds
from engine.config import LoadedBot
from engine.exchanges.base import Exchange
from engine.runtime.checkpoint import load_checkpoint, load_state
from engine.runtime.commit import Committer, RowInsert
from engine.runtime.execution import (
    ExchangeExecution,
    ExchangeMode,
    PlannedOrder,
    SendResult,
    planned_from_row,
)
from engine.runtime.fast_exit_close import FastExitClose
from engine.runtime.feed import Batch, ReplayFeed
from engine.runtime.ledger import CandleLedger, CandleWork, CloseRequest, _utc
from engine.runtime.momentum import AlertLimiter
from engine.runtime.portfolio import PortfolioRisk
from engine.runtime.shared_signals import SharedSignals, strategy_key
from engine.store import (
    BotMode,
    EventCategory,
    insert_order_rows,
    list_open_orders,
    record_event,
    stored_client_ids,
    upsert_bot,
)

__all__ = ["BotRunner", "BotView", "config_hash"]


def config_hash(bot: LoadedBot) -> str:
    """What a reload compares: the bot file, its profile and its strategy's text."""
    import hashlib

    text = "\x1f".join((bot.text, bot.profile or "", bot.strategy.text))
    return hashlib.sha256(text.encode()).hexdigest()


_DAY_NS = 86_400 * 1_000_000_000


@dataclass
class BotView:
    """What the dashboard shows for one bot."""

    name: str
    mode: str
    account: str = ""
    status: str = "starting"
    positions: dict[str, str] = field(default_factory=dict)
    equity: float = math.nan
    day_start_equity: float = math.nan
    last_candle: pd.Timestamp | None = None
    day: pd.Timestamp | None = None
    last_signal: str = ""
    last_error: str = ""
    errors: int = 0
    candles: int = 0


@dataclass(slots=True)
class _Prepared:
    """What :meth:`BotRunner.prepare` computed for the bot's next candle."""

    close_time: int
    rows: dict
    signals: dict
    deferred: list[str]  # pairs whose candle is not in the window yet (signals taken from another bot)
    cost: float  # seconds spent


class BotRunner(ExchangeMode, CandleLedger, FastExitClose):
    """Holds one bot's strategy, kernel state and database identity."""

    # The order intents of a candle are committed (and sent) before the rest of its writes.
    intent_first: bool = True

    def __init__(
        self,
        loaded: LoadedBot,
        factory: async_sessionmaker[AsyncSession],
        feed: ReplayFeed,
        portfolio: PortfolioRisk,
        write_lock: asyncio.Lock | None = None,
        shared: SharedSignals | None = None,
        *,
        committer: Committer | None = None,
        exchange: Exchange | None = None,
        feed_reader: Any = None,
    ) -> None:
        self.shared = shared
        # The point-in-time series the rules read (engine.feeds SeriesReader), shared by every bot.
        self.feed_reader = feed_reader
        self.loaded = loaded
        # SQLite has one writer: queueing the bots' transactions here is far cheaper than letting
        # them collide on the database lock and back off.
        self.write_lock = write_lock or asyncio.Lock()
        self.committer = committer or Committer(factory, group=False, lock=self.write_lock)
        # testnet | live: orders go to the exchange (``exchange``, or the bot's own from make_exchange)
        mode = loaded.model.exchange.mode
        self.mode = mode if mode in ("testnet", "live") else BotMode.PAPER.value
        self._exchange = exchange
        self.execution: ExchangeExecution | None = None
        self._unresolved: dict[str, PlannedOrder] = {}  # sent, answer unknown: looked up each candle
        # pair -> ids of the close_position commands asking for it (none: asked directly). A command
        # row stays pending until the candle that carries it out commits (a restart re-applies it).
        self._close_requests: dict[str, list[int]] = {}
        self._closing_commands: set[int] = set()  # taken by a candle not committed yet
        self._prepared: _Prepared | None = None  # computed by prepare() for the next on_batch
        self._exchange_refusals: list[tuple[str, str, str]] = []  # entries this close does not send
        self.factory = factory
        self.feed = feed
        self.portfolio = portfolio
        self.name = loaded.model.bot
        self.hash = config_hash(loaded)
        self.pairs = tuple(loaded.model.pairs)
        self.timeframe = loaded.strategy.timeframe
        self.step_ns = timeframe_seconds(self.timeframe) * 1_000_000_000
        # (pair, timeframe) of every pair: fixed for a runner (a reload changing them starts a new one)
        self.series = tuple((pair, self.timeframe) for pair in self.pairs)
        self.bot_id: int | None = None
        self.last_time = -(2**62)  # open time (ns) of the last committed candle
        self.view = BotView(self.name, self.mode)
        self.sent: list[
            float
        ] = []  # seconds from the bot taking a candle to its orders sent (exchange modes)
        self.compute: list[float] = []  # seconds of signals + kernel per candle (CPU, no awaits inside)
        self.latencies: list[float] = []  # seconds from the bot taking a candle to its orders committed
        self.delays: list[float] = []  # seconds from the feed handing out the candle to committed
        # seconds from the feed handing out a candle that decided orders to their intents committed and
        # sent (exchange modes) or marked sent (paper): the "candle close to order sent"
        self.order_latencies: list[float] = []
        self._orders_waiting = True  # paper orders may wait for their open: look them up at the next candle
        self._synced: dict[str, tuple] = {}  # last position row written per pair (skip unchanged upserts)
        self._restops: dict[str, tuple[float, float]] = {}  # levels recalculated by the last reload
        self._maybe_stored = True  # this candle's decisions may be stored already (first after a restore)
        self._closes: dict[str, float] = {}  # close of each pair's last candle
        self._next: LoadedBot | None = None
        self._alert_limiter = AlertLimiter()  # the strategy's alerts, rate limited per pair and alert
        # One of a candle close and a fast exit between closes (engine.runtime.fast_exit) at a time.
        self._turn = asyncio.Lock()
        self._build(loaded)

    # --- lifecycle ------------------------------------------------------------------------------

    def _build(self, loaded: LoadedBot) -> None:
        from engine.backtest.from_config import trading_params
        from engine.strategy.live import LiveSignals
        from engine.trading.trader import Trader

        self.params = trading_params(loaded)
        self.signals = LiveSignals(loaded.strategy, context_for=self._context_for(loaded))
        self.capacity = self.signals.capacity  # candles a window holds (read per pair and candle)
        self.strategy_key = strategy_key(loaded.strategy)
        self.window_len = dict.fromkeys(self.pairs, 0)  # candles held per pair (capped at capacity)
        self.trader = Trader(self.pairs, self.params, self.timeframe)

    def _context_for(self, loaded: LoadedBot) -> Any:
        from engine.feeds.context import contexts_for, uses_external_series

        if not uses_external_series(loaded.strategy.plan):
            return None
        return contexts_for(loaded.strategy.plan, loaded.model.exchange.name, self.feed_reader)

    async def start(self) -> None:
        """Register the bot, reload its last checkpoint (restart recovery) and seed its windows. In the
        exchange modes the exchange is checked and authenticated first, and the orders of the bot the
        store still thinks active are reconciled with it (fills made while down reach the kernel)."""
        account = f"{self.loaded.model.exchange.name}:paper"
        if self.mode != BotMode.PAPER.value:
            from engine.exchanges import make_exchange

            exchange = self._exchange or make_exchange(self.loaded.model, session_factory=self.factory)
            self.execution = ExchangeExecution(exchange, bot=self.name, mode=self.mode)
            await self.execution.start()
            account = self.execution.account
        self.view.account = account
        async with self.factory() as session, session.begin():
            bot = await upsert_bot(
                session,
                name=self.name,
                config_hash=self.hash,
                mode=BotMode(self.mode),
                config_path=str(self.loaded.path),
                account=account,
            )
            self.bot_id = bot.id
        await self.restore(rewind=True)
        if self.execution is not None:
            await self._reconcile()
        self.portfolio.register(self.name, self.params.initial_capital, self.trader.equity)
        self._report_exposure()

    async def close(self) -> None:
        """Release the exchange connection (exchange modes); the bot's state stays in the database."""
        if self.execution is not None:
            await self.execution.close()

    def request_close(self, pair: str, command_id: int | None = None) -> bool:
        """Close ``pair``'s position at the next candle close, as an exit decided there (paper: filled at
        the following open like an exit signal; exchange modes: sent at once). False when the bot holds
        no position on ``pair``. The request is recorded as an event with that candle, and the
        ``bot_commands`` row ``command_id`` (if given) is marked done in the same transaction."""
        if pair not in self.pairs or self.trader.position(pair) is None:
            return False
        commands = self._close_requests.setdefault(pair, [])
        if command_id is not None and command_id not in commands:
            commands.append(command_id)
        return True

    def held_commands(self) -> set[int]:
        """The close_position commands this bot is carrying out (requested, or taken by a candle whose
        transaction has not committed yet): the command pump leaves them pending to it."""
        return self._closing_commands.union(*self._close_requests.values())

    async def restore(self, rewind: bool = False) -> None:
        """Load the last committed checkpoint (if any) and reconcile open orders with it. ``rewind`` (at
        start): the feed goes back to the candle after the checkpoint, so the candles that closed while
        the bot was not running are processed before the live ones (a live feed's catch-up is capped:
        then the bot resumes from where the feed can take it, ``LiveFeed.rewind``). Not after a failed
        candle: the feed has handed out the candles queued for the bot already."""
        assert self.bot_id is not None
        self._build(self.loaded)
        self.last_time = -(2**62)
        self._prepared = None
        async with self.factory() as session, session.begin():
            saved = await load_checkpoint(session, self.bot_id)
            open_orders = await list_open_orders(session, self.bot_id)
            if self.loaded.strategy.model.alerts:
                self._alert_limiter = await AlertLimiter.restored(session, self.bot_id, self.step_ns)
            self._orders_waiting = bool(open_orders)
            self._maybe_stored = True
            self._synced = {}
            self._unresolved = {
                o.client_order_id: planned_from_row(o) for o in open_orders if self.execution is not None
            }
            same_market = (
                saved is not None and saved.pairs == self.pairs and saved.timeframe == self.timeframe
            )
            if same_market:
                assert saved is not None
                state = load_state(saved.state)
                # The configuration may have changed while the engine was down: current parameters.
                state.prm_i, state.prm_f = self.params.pack()
                state.lim = self.params.pack_limits(self.pairs)
                self.trader.state = state
                self.last_time = saved.time
                await record_event(
                    session,
                    EventCategory.SYSTEM,
                    "recovered",
                    f"{self.name}: resumed after candle {_utc(self.last_time)} with "
                    f"{sum(1 for p in self.pairs if self.trader.position(p))} open position(s) and "
                    f"{len(open_orders)} pending order(s)",
                    bot_id=self.bot_id,
                    data={"mode": self.mode, "time": self.last_time},
                )
        # Fill the candle windows: up to the last committed candle after a restart, else up to where
        # the feed starts (the warm-up history before the first live candle).
        seed_until = None
        if self.last_time > -(2**62):
            if rewind:
                resumed = max(self.feed.rewind(key, self.last_time) for key in self.series)
                self.last_time = max(self.last_time, resumed)
            seed_until = self.last_time + self.step_ns
        else:
            # A new bot joins at the replay's start or its current moment (a bot added by a reload).
            start = -(2**62) if self.feed.start is None else int(self.feed.start.as_unit("ns").value)
            if max(start, self.feed.clock) > -(2**62):
                seed_until = max(start, self.feed.clock)
                self.last_time = seed_until - self.step_ns
        if seed_until is not None:
            for key in self.series:
                history = self.feed.history(key, seed_until, self.signals.capacity)
                if not history.empty:
                    self.signals.seed(key[0], history)
                    self.window_len[key[0]] = min(len(history), self.signals.capacity)
        self._refresh_view()

    @property
    def pending_reload(self) -> bool:
        """A validated new configuration waits for the next candle close."""
        return self._next is not None

    def replace(self, loaded: LoadedBot) -> None:
        """Hot reload with the same pairs and timeframe: applied at the next candle close."""
        self._next = loaded

    def _apply_replacement(self) -> None:
        from engine.backtest.from_config import trading_params

        loaded, self._next = self._next, None
        assert loaded is not None
        self.loaded = loaded
        self.hash = config_hash(loaded)
        self.params = trading_params(loaded)
        self.signals.replace_strategy(loaded.strategy)
        self.signals.context_for = self._context_for(loaded)
        self.capacity = self.signals.capacity
        self.strategy_key = strategy_key(loaded.strategy)
        self.window_len = {p: min(n, self.signals.capacity) for p, n in self.window_len.items()}
        # Open positions keep their entry; their stop and target are recalculated under the new rules
        # at this candle's close (on_batch). The new rules (stops, trailing, sizing, limits) govern
        # everything decided from this candle on.
        state = self.trader.state
        state.prm_i, state.prm_f = self.params.pack()
        state.lim = self.params.pack_limits(self.pairs)
        self.trader.params = self.params

    # --- one candle -----------------------------------------------------------------------------

    def _rows(self, batch: Batch) -> dict:
        rows = {}
        candles, last = batch.candles, self.last_time
        for key in self.series:
            row = candles.get(key)
            if row is not None and row[0] > last:
                rows[key[0]] = row
        return rows

    def prepare(self, batch: Batch) -> bool:
        """Compute this bot's signals on ``batch`` ahead of :meth:`on_batch` (which then uses them) and
        say whether its candle may decide an order: the runtime hands the candle first to the bots that
        may, so their orders do not wait for the decisions of bots that cannot. Only for a bot that is
        idle (every earlier candle taken) and has no reload staged; True when in doubt.

        Signals another bot computed on the same window are taken without appending the candle to this
        bot's window: :meth:`on_batch` appends it. Three appends per bot are most of what prepare costs
        a bot whose signals are shared, and all of it stands between the close and the first order."""
        if self._next is not None or self._prepared is not None:
            return True
        rows = self._rows(batch)
        if not rows:
            return False
        began = _time.perf_counter()
        signals = {}
        deferred = []
        for pair, row in rows.items():
            cached = self._shared_signals(pair, row[0])
            if cached is None:
                signals[pair] = self._compute_signals(pair, *row)
            else:
                signals[pair] = cached
                deferred.append(pair)
        self._prepared = _Prepared(batch.close_time, rows, signals, deferred, _time.perf_counter() - began)
        if self._close_requests:
            return True
        held_side = self.trader.held_side
        if self.execution is not None and (self._unresolved or any(held_side(p) for p in self.pairs)):
            return True  # a stop touched inside the candle is sent as a market order at its close
        # The kernel decides orders for the next open from these flags only (kernel._decide): an exit
        # signal of the side held, or an entry signal (a position held may be stopped out inside the
        # candle and re-entered at its close).
        for pair, (_, s) in signals.items():
            if s.entry_long or s.entry_short:
                return True
            side = held_side(pair)
            if side and (s.exit_long or s.fast_exit_long if side > 0 else s.exit_short or s.fast_exit_short):
                return True
        return False

    def _take_prepared(self, batch: Batch) -> tuple[dict, dict, float]:
        """This candle's rows, the signals prepare() computed (none without it) and their cost; the
        candles prepare() did not append are appended now."""
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared.close_time != batch.close_time:
            return self._rows(batch), {}, 0.0
        for pair in prepared.deferred:
            t, o, h, lo, c, v = prepared.rows[pair]
            self.signals.append(pair, t, (o, h, lo, c, v))
        return prepared.rows, prepared.signals, prepared.cost

    async def on_batch(self, batch: Batch, received: float | None = None) -> bool:
        """Process this bot's candles of ``batch``; False when it holds none (or they were done)."""
        async with self._turn:  # uncontended unless a fast exit is being written at this moment
            return await self._on_batch(batch, received)

    async def _on_batch(self, batch: Batch, received: float | None) -> bool:
        from engine.trading.trader import Order

        rows, computed_signals, signals_cost = self._take_prepared(batch)
        if not rows:
            return False
        began = _time.perf_counter()
        received = began if received is None else received
        day_ns = batch.close_time - batch.close_time % _DAY_NS  # (a Timestamp per bot and candle costs)
        if self.view.day is None or self.view.day.value != day_ns:
            self.view.day, self.view.day_start_equity = _utc(day_ns), self.trader.equity
        reloaded = self._next is not None
        if reloaded:
            self._apply_replacement()
            if computed_signals:
                # Staged after prepare() judged this candle by the old rules: the new ones judge it.
                computed_signals = {pair: self.signals.evaluate(pair) for pair in computed_signals}
        time_ns = next(iter(rows.values()))[0]
        decided = {}
        refused: list[tuple[str, str, str]] = []
        for pair, (t, o, h, lo, c, v) in rows.items():
            self._closes[pair] = c
            candle, signals = computed_signals.get(pair) or self._signals(pair, t, o, h, lo, c, v)
            wants = "long" if signals.entry_long else "short" if signals.entry_short else None
            if wants and self.trader.position(pair) is None:
                reason = self.portfolio.entry_refusal()
                if reason is None:
                    self.portfolio.note_entry(self.name)
                else:
                    signals = replace(signals, entry_long=False, entry_short=False)
                    refused.append((pair, wants, reason))
            decided[pair] = (candle, signals)
        n_trades = self.trader.state.n_trades
        late = await self._look_up_unresolved() if self._unresolved else ([], [])
        n_trades -= self._take_stored_undone()  # exits found refused undo stored trades (exit_retry)
        events = self.trader.on_candles(decided)
        if self.loaded.strategy.model.alerts:
            events.extend(self._alert_limiter.take(self.loaded.strategy, time_ns, self.step_ns, decided))
        if reloaded:
            # Positions held across the reload take the new rules' stop and target from this close on.
            self._restops = {
                pair: levels
                for pair, (_, signals) in decided.items()
                if (levels := self.trader.restop(pair, signals)) is not None
            }
        requested = self._take_close_requests(rows, time_ns, events)
        planned: list[PlannedOrder] = []
        self._exchange_refusals = []
        try:
            if self.execution is not None:
                planned = self._plan(time_ns, events, n_trades, refused, late=batch.late)
            computed = _time.perf_counter()
            has_orders = bool(planned) or (
                self.execution is None and any(isinstance(e, Order) for e in events)
            )
            work = CandleWork(time_ns, events, refused, n_trades, reloaded, planned, late, requested)
            if self.intent_first and has_orders:
                await self._intents_then_bookkeeping(work, began, received)
            else:
                await self.committer.run(lambda session: self._commit(session, work))
        except BaseException:
            # Never let memory run ahead of the database: back to the last committed candle, with the
            # close requests this candle took waiting again.
            self._give_back(requested)
            await self.restore()
            raise
        self._closing_commands.difference_update(c for r in requested for c in r.commands)
        self.last_time = time_ns
        self._maybe_stored = False
        if planned and not self.intent_first:
            await self._send(time_ns, planned, began)
            self.order_latencies.append(_time.perf_counter() - received)
        elif has_orders and not self.intent_first:
            self.order_latencies.append(_time.perf_counter() - received)
        done = _time.perf_counter()
        self.compute.append(computed - began + signals_cost)
        self.latencies.append(done - began)
        self.delays.append(done - received)
        self._report_exposure()
        self._refresh_view()
        self.view.last_candle = _utc(time_ns)
        self.view.candles += 1
        return True

    async def _intents_then_bookkeeping(self, work: CandleWork, began: float, received: float) -> None:
        """The candle's order intents in a small transaction of their own (the Committer's urgent lane),
        then sent (exchange modes; paper: marked sent in that transaction), then the rest of the candle.

        A crash between the two commits leaves the intents without the candle's checkpoint: the restart
        restores the previous checkpoint, decides the same orders again with the same client ids and
        finds them stored (``_decide``'s look-up), so nothing is placed twice."""
        time_ns, planned = work.time_ns, work.planned
        rows, exits = self._intents(work.events, planned)
        if self._maybe_stored and rows:
            async with self.factory() as session:
                stored = await stored_client_ids(session, [row["client_order_id"] for row in rows])
            rows = [row for row in rows if row["client_order_id"] not in stored]
        if exits:
            await self.committer.run(lambda session: self._commit_intents(session, rows, exits), urgent=True)
        elif rows:
            await self.committer.run(RowInsert(insert_order_rows, rows), urgent=True)
        results: list[SendResult] = []
        repriced: list[int] = []
        if planned:
            results, repriced = await self._send_orders(time_ns, planned)
            self.sent.append(_time.perf_counter() - began)
        self.order_latencies.append(_time.perf_counter() - received)

        async def bookkeeping(session: AsyncSession) -> None:
            await self._commit(session, work, intents_written=True)
            if planned:
                # The fills the kernel followed are in its state already (the candle's trades above);
                # this stores the exchange's answers and the checkpoint after them.
                n_now = self.trader.state.n_trades
                await self._record_results(session, results, n_now, repriced, checkpoint=time_ns)

        await self.committer.run(bookkeeping)

    def _take_close_requests(self, rows, time_ns: int, events: list) -> list[CloseRequest]:
        """Requested closes become exit decisions on this close (added to ``events`` as orders)."""
        from engine.trading.trader import Order

        taken = []
        for pair in sorted(self._close_requests):
            if pair not in rows:
                continue  # that pair's candle has not closed yet
            commands = tuple(self._close_requests.pop(pair))
            self._closing_commands.update(commands)
            closing = self.trader.request_exit(pair)  # False: closed inside this candle already
            taken.append(CloseRequest(pair, commands, closing))
            if closing and not any(
                isinstance(e, Order) and e.pair == pair and e.action == "close" for e in events
            ):
                events.append(Order(pair, _utc(time_ns), "close"))
        return taken

    def _give_back(self, requested: list[CloseRequest]) -> None:
        for request in requested:
            commands = self._close_requests.setdefault(request.pair, [])
            commands.extend(c for c in request.commands if c not in commands)
            self._closing_commands.difference_update(request.commands)

    def _signals(self, pair: str, t: int, o: float, h: float, lo: float, c: float, v: float):
        cached = self._shared_signals(pair, t)
        if cached is None:
            return self._compute_signals(pair, t, o, h, lo, c, v)
        # The window takes the candle without a one-row DataFrame (building one cost ~1.3 ms of the
        # bot's ~1.5 ms per pair): the same append that ``seed`` and ``on_candle`` make.
        self.signals.append(pair, t, (o, h, lo, c, v))
        return cached

    def _shared_signals(self, pair: str, t: int):
        """Signals of a bot with the same strategy on the same window, counting the candle into this
        bot's window length (None: nobody computed them; then :meth:`_compute_signals` must follow)."""
        length = min(self.window_len[pair] + 1, self.capacity)
        self.window_len[pair] = length
        return None if self.shared is None else self.shared.get(self.strategy_key, pair, t, length)

    def _compute_signals(self, pair: str, t: int, o: float, h: float, lo: float, c: float, v: float):
        candle, signals = self.signals.on_candle(pair, t, o, h, lo, c, v)
        if self.shared is not None:
            self.shared.put(self.strategy_key, pair, t, self.window_len[pair], candle, signals)
        return candle, signals

    # --- views ----------------------------------------------------------------------------------

    def _report_exposure(self) -> None:
        from engine.trading import layout as L

        state = self.trader.state
        held = [self.trader.position(p) for p in self.pairs]
        notional = sum(float(h["amount"]) * float(h["entry_price"]) for h in held if h)
        pending = int(np.count_nonzero(state.pos_i[:, L.Q_PEND_ENTRY]))
        self.portfolio.update(
            self.name,
            equity=self.trader.equity,
            open_trades=sum(1 for h in held if h),
            notional=notional,
            pending=pending,
        )

    def _refresh_view(self) -> None:
        view = self.view
        view.equity = self.trader.equity
        if math.isnan(view.day_start_equity):
            view.day_start_equity = view.equity
        positions = {}
        for pair in self.pairs:
            held = self.trader.position(pair)
            if held:
                positions[pair] = (
                    f"{held['side']} {float(held['amount']):.6g} @ {float(held['entry_price']):.6g}"
                )
        view.positions = positions
