"""Orders of a testnet/live bot on its exchange: sizing to the market's rules, sending, and the fills
the kernel must follow.

A paper bot needs none of this: the kernel's own simulation fills its orders at the next open, as in
a backtest. In the exchange modes the orders the kernel decides on a close (and the exits it detects
inside a candle) are sent as market orders at once, after the candle's transaction has committed them
as ``sent`` (so a crash between the commit and the answer is found by :func:`reconcile` at the next
start); the real fills (average price, amount, fee) then replace the kernel's simulated ones.

    execution = ExchangeExecution(exchange, bot="eth", mode="testnet")
    await execution.start()                      # environment check, markets, authentication, futures settings
    amount, refusal = execution.round_entry("ETH/USDT", 0.01234567, price=2000.0)
    result = await execution.send(planned)       # never raises an ExchangeError: see SendResult
"""

from __future__ import annotations

import asyncio
import random
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.exchanges.base import (
    Exchange,
    ExchangeError,
    ExchangeOrder,
    ExchangeTrade,
    InsufficientFunds,
    InvalidOrder,
    MarketInfo,
    OperationalExchangeError,
    OrderRequest,
    RateLimited,
    TemporaryExchangeError,
)
from engine.exchanges.fee_rates import FeeRates
from engine.observability import category_logger
from engine.runtime.commit import Committer
from engine.runtime.exchange_ledger import ExchangeLedger
from engine.runtime.exit_retry import INSIDE_EXITS, ExitRetry
from engine.runtime.fills import FillSummary, summarize_fills, summarize_trades, third_assets
from engine.runtime.ids import client_order_id
from engine.store import (
    CLIENT_ID_PREFIX,
    EventCategory,
    OrderStatus,
    get_order,
    list_open_orders,
    record_event,
)
from engine.store.models import Order as OrderRow

__all__ = [
    "ExchangeExecution",
    "ExchangeMode",
    "ExchangeStartError",
    "FillSummary",
    "PlannedOrder",
    "SendResult",
    "planned_from_row",
    "summarize_fills",
    "summarize_trades",
]

log = category_logger("orders")

ENTRY_ACTIONS = ("open_long", "open_short")
# Exits the kernel finds inside a candle (INSIDE_EXITS, from exit_retry) are market orders sent at its close.


def _utc(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


async def _no_price(symbol: str) -> Decimal | None:
    return None  # an exchange without tickers: fees in a third asset stay unvalued


class ExchangeStartError(ValueError):
    """The bot's exchange could not be prepared (wrong environment, credentials, unreachable): the bot
    does not start; the others do."""


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """One market order to send for a bot: ``action`` is ``open_long``, ``open_short``, ``close`` (an exit
    decided on a close) or the reason of an exit the kernel found inside a candle (``stop_loss``, ...),
    in which case ``trade`` is the kernel's closed-trade number to reprice."""

    client_order_id: str
    pair: str
    side: str  # buy | sell
    amount: Decimal
    action: str
    trade: int = -1

    @property
    def entry(self) -> bool:
        return self.action in ENTRY_ACTIONS


@dataclass(frozen=True, slots=True)
class SendResult:
    planned: PlannedOrder
    order: ExchangeOrder | None = None  # the exchange's answer (None when it failed)
    error: ExchangeError | None = None
    fill: FillSummary | None = None  # the order's fills valued in the quote currency (None: none yet)

    @property
    def rejected(self) -> bool:
        """Refused by the exchange for good (the order does not exist there)."""
        return isinstance(self.error, InvalidOrder | InsufficientFunds)

    @property
    def unknown(self) -> bool:
        """The retries ran out: the order may or may not exist; it stays ``sent`` for a later look-up."""
        return isinstance(self.error, TemporaryExchangeError)


class ExchangeExecution:
    """The exchange side of one testnet/live bot."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        bot: str,
        mode: str,
        retries: int = 2,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
    ) -> None:
        self.exchange = exchange
        self.bot = bot
        self.mode = mode
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.markets: dict[str, MarketInfo] = {}
        self.fee_rates: FeeRates | None = None

    @property
    def account(self) -> str:
        """``exchange:mode:key fingerprint`` (what the bots table shows; never the key itself)."""
        from engine.exchanges.ccxt_exchange import _fingerprint

        client = getattr(self.exchange, "client", None)
        key = getattr(client, "apiKey", None) if client is not None else None
        suffix = f":{_fingerprint(key)}" if key else ""
        return f"{self.exchange.name}:{self.mode}{suffix}"

    async def start(self) -> None:
        try:
            await self.exchange.start()
            self.markets = await self.exchange.markets()
        except ExchangeError as error:
            await self.exchange.close()  # the bot does not start: nothing else would release the client
            raise ExchangeStartError(f"{self.exchange.name} {self.mode}: {error}") from error
        price = getattr(self.exchange, "last_price", None)
        scope = getattr(self.exchange, "price_scope", None)
        self.fee_rates = FeeRates(price or _no_price, self.markets, scope=scope)

    async def value_trades(self, trades: Sequence[ExchangeTrade], side: str, pair: str) -> FillSummary | None:
        """:func:`summarize_trades` with fees paid in a third asset valued at its price in the pair's
        quote currency (cached a minute); a fee without a price is counted as 0 and logged."""
        market = self.markets.get(pair)
        rates: dict[str, float | None] = {}
        assets = third_assets(trades, market)
        if assets and self.fee_rates is not None:
            quote = market.quote if market else pair.split("/")[-1].split(":")[0]
            rates = {asset: await self.fee_rates.rate(asset, quote) for asset in sorted(assets)}
        filled = summarize_trades(trades, side, market, rates)
        if filled is not None and filled.unvalued:
            log.warning(
                "[%s] %s %s: fee paid in %s has no price in the quote currency; counted as 0",
                self.mode,
                self.bot,
                pair,
                ", ".join(filled.unvalued),
            )
        return filled

    async def value(self, order: ExchangeOrder, pair: str) -> FillSummary | None:
        """The order's fills valued as :meth:`value_trades` does; None when nothing filled."""
        if order.trades:
            return await self.value_trades(order.trades, order.side, pair)
        return summarize_fills(order, self.markets.get(pair))

    async def close(self) -> None:
        await self.exchange.close()

    def round_entry(self, pair: str, amount: float, price: float) -> tuple[Decimal, str | None]:
        """``amount`` floored to the market's amount step; ``(0, reason)`` below its minimum notional
        or when it rounds to nothing."""
        market = self.markets.get(pair)
        if market is None:
            return Decimal(0), "unknown_market"
        value = Decimal(repr(float(amount)))
        if market.amount_step > 0:
            value = (value / market.amount_step).to_integral_value(ROUND_DOWN) * market.amount_step
        if value <= 0:
            return Decimal(0), "lot_size"
        if market.min_notional > 0 and value * Decimal(repr(float(price))) < market.min_notional:
            return Decimal(0), "min_notional"
        return value.normalize(), None

    def round_exit(self, pair: str, amount: float) -> Decimal:
        """A position's amount as the exchange takes it (floored to the step, so never more than held)."""
        market = self.markets.get(pair)
        value = Decimal(repr(float(amount)))
        if market is not None and market.amount_step > 0:
            value = (value / market.amount_step).to_integral_value(ROUND_DOWN) * market.amount_step
        return value.normalize()

    async def send(self, planned: PlannedOrder) -> SendResult:
        """Send one market order (already saved and committed as ``sent``) with bounded retries and the
        same client id every time. Exchange errors are returned, not raised."""
        request = OrderRequest(
            client_order_id=planned.client_order_id,
            symbol=planned.pair,
            side=planned.side,  # type: ignore[arg-type]
            type="market",
            amount=planned.amount,
            reduce_only=not planned.entry and ":" in planned.pair,
        )
        attempt = 0
        while True:
            try:
                order = await self.exchange.create_order(request)
            except TemporaryExchangeError as error:
                attempt += 1
                if attempt > self.retries:
                    log.warning(
                        "[%s] %s order %s: %s; left as sent for the next look-up",
                        self.mode,
                        self.bot,
                        planned.client_order_id,
                        error,
                    )
                    return SendResult(planned, error=error)
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                delay += random.uniform(0, delay / 2)
                if isinstance(error, RateLimited) and error.retry_after is not None:
                    delay = max(delay, error.retry_after)
                await asyncio.sleep(delay)
            except OperationalExchangeError as error:
                log.error("[%s] %s order %s refused: %s", self.mode, self.bot, planned.client_order_id, error)
                return SendResult(planned, error=error)
            else:
                log.info(
                    "[%s] %s order %s %s %s %s: %s",
                    self.mode,
                    self.bot,
                    planned.client_order_id,
                    planned.side,
                    planned.amount,
                    planned.pair,
                    order.state,
                )
                return SendResult(planned, order=order)

    async def valued(self, results: list[SendResult]) -> list[SendResult]:
        """``results`` with their fills valued (:meth:`value`): after a round's orders are all sent, so
        a price look-up for a fee never delays the next order."""
        out = []
        for result in results:
            if result.order is not None and result.fill is None:
                result = replace(result, fill=await self.value(result.order, result.planned.pair))
            out.append(result)
        return out

    async def look_up(self, pair: str, client_order_id: str) -> ExchangeOrder | None:
        """The order as the exchange has it now; None when it does not know it or cannot be reached."""
        try:
            return await self.exchange.fetch_order(pair, client_order_id)
        except ExchangeError as error:
            log.info("[%s] %s look-up of %s: %s", self.mode, self.bot, client_order_id, error)
            return None


def planned_from_row(row: OrderRow) -> PlannedOrder:
    """A stored order as the runtime's plan of it (for look-ups and reconciliation)."""
    return PlannedOrder(row.client_order_id, row.pair, row.side.value, row.amount, row.reason or "adopted")


class ExchangeMode(ExitRetry, ExchangeLedger):
    """The exchange side of :class:`~engine.runtime.bot.BotRunner` (a mixin: it uses the runner's
    ``trader``, ``execution``, ``factory``, ``committer``, ``signals`` and identity attributes): planning
    the market orders of a close, sending them, making the kernel follow their fills, looking up orders
    without an answer and reconciling at start. Storing it is
    :class:`~engine.runtime.exchange_ledger.ExchangeLedger`'s job; exits the exchange refused or filled
    in part are :class:`~engine.runtime.exit_retry.ExitRetry`'s."""

    name: str
    mode: str
    bot_id: int | None
    pairs: tuple[str, ...]
    step_ns: int
    last_time: int
    hash: str
    trader: Any
    signals: Any
    view: Any
    factory: async_sessionmaker[AsyncSession]
    committer: Committer
    execution: ExchangeExecution | None
    _unresolved: dict[str, PlannedOrder]
    _exchange_refusals: list[tuple[str, str, str]]
    _closes: dict[str, float]
    sent: list[float]

    if TYPE_CHECKING:  # provided by BotRunner

        async def restore(self) -> None: ...

        async def _sync_position(self, session: AsyncSession, pair: str) -> None: ...

        async def _save_checkpoint(self, session: AsyncSession, time_ns: int) -> None: ...

    def _plan(
        self, time_ns: int, events: list, n_trades: int, refused: list, *, late: bool = False
    ) -> list[PlannedOrder]:
        """The market orders this close sends: exits found inside the candle, then exits decided on the
        close, then entries sized by the kernel's rule at the close price and the market's rules. The
        kernel's pending orders are cleared: they execute on the exchange, not in its simulation. On a
        ``late`` candle (back-filled after an outage) entries are not sent: its price is gone; exits
        still are, since the position should not be held any longer."""
        from engine.trading import layout as L
        from engine.trading.trader import Order

        assert self.execution is not None
        st = self.trader.state
        plan: list[PlannedOrder] = []
        if self._exit_retries:
            self._retry_orders(time_ns, events)
        for k in range(n_trades, st.n_trades):
            reason = L.EXIT_REASONS[int(st.tr_i[k, L.U_REASON])]
            if reason in ("exit_signal", "fast_exit"):
                continue  # a pending exit the kernel filled itself: none in exchange modes
            pair = st.pairs[int(st.tr_i[k, L.U_PAIR])]
            when = _utc(int(st.tr_i[k, L.U_CLOSE_TIME]))
            side = "sell" if st.tr_i[k, L.U_SIDE] > 0 else "buy"
            amount = self.execution.round_exit(pair, float(st.tr_f[k, L.T_AMOUNT]))
            cid = client_order_id(self.name, pair, when, reason)
            plan.append(PlannedOrder(cid, pair, side, amount, reason, trade=k))
        entries = []
        next_open = time_ns + self.step_ns
        for event in events:
            if not isinstance(event, Order):
                continue
            cid = client_order_id(self.name, event.pair, event.time, event.action)
            if event.action == "close":
                held = self.trader.position(event.pair)
                self.trader.cancel_pending(event.pair, entry=False)
                if held is None:
                    continue
                side = "sell" if held["side"] == "long" else "buy"
                amount = self.execution.round_exit(event.pair, float(held["amount"]))
                plan.append(PlannedOrder(cid, event.pair, side, amount, "close"))
                continue
            close = self._closes[event.pair]
            size, why = self.trader.entry_preview(event.pair, close, next_open)
            self.trader.cancel_pending(event.pair, exit=False)
            amount = None
            if why is None and late:
                why = "late_candle"  # back-filled after an outage: its price is gone
            if why is None and any(o.pair == event.pair for o in self._unresolved.values()):
                # An earlier order on this pair may have filled without the engine hearing of it (an
                # entry whose answer was lost): a second entry could double the position on the
                # exchange while the kernel follows one. It waits until the look-ups settle that one.
                why = "order_pending"
            if why is None:
                amount, why = self.execution.round_entry(event.pair, size, close)
            wants = "long" if event.action == "open_long" else "short"
            if why is not None:
                self._exchange_refusals.append((event.pair, wants, why))
                continue
            side = "buy" if wants == "long" else "sell"
            entries.append(PlannedOrder(cid, event.pair, side, amount, event.action))  # type: ignore[arg-type]
        return plan + entries

    async def _send_orders(
        self, time_ns: int, planned: list[PlannedOrder]
    ) -> tuple[list[SendResult], list[int]]:
        """Send the committed orders and make the kernel follow their fills (nothing stored yet);
        returns the answers and the closed trades repriced."""
        assert self.execution is not None
        results = await self._send_round(planned)
        results = await self.execution.valued(results)
        return results, self._follow(results, time_ns + self.step_ns)

    async def _send(self, time_ns: int, planned: list[PlannedOrder], began: float) -> None:
        """Send the committed orders, make the kernel follow their fills, and store what happened
        (after the whole candle was committed: the order without intent-first)."""
        assert self.execution is not None
        results = await self._send_round(planned)
        self.sent.append(_time.perf_counter() - began)
        results = await self.execution.valued(results)
        n_trades = self.trader.state.n_trades
        repriced = self._follow(results, time_ns + self.step_ns)
        try:
            await self.committer.run(
                lambda session: self._record_results(session, results, n_trades, repriced, checkpoint=time_ns)
            )
        except BaseException:
            await self.restore()
            raise

    def _follow(self, results: list[SendResult], fill_ns: int) -> list[int]:
        """Apply the exchange's fills to the kernel; returns the closed trades repriced."""
        assert self.execution is not None
        repriced: list[int] = []
        refused: list[tuple[PlannedOrder, str]] = []
        for result in results:
            planned = result.planned
            if result.order is None:
                if result.unknown:
                    self._unresolved[planned.client_order_id] = planned
                else:
                    self.view.last_error = f"{planned.action} {planned.pair} refused: {result.error}"
                    refused.append((planned, str(result.error)))
                continue
            if result.order.state == "open" and not result.order.trades and result.order.filled <= 0:
                # Accepted, not executed yet (an exchange that matches later): looked up at every
                # candle until it fills or ends, and no other entry goes out on its pair meanwhile.
                self._unresolved[planned.client_order_id] = planned
                continue
            self._unresolved.pop(planned.client_order_id, None)
            filled = result.fill or summarize_fills(result.order, self.execution.markets.get(planned.pair))
            if filled is None:
                if result.order.state in ("cancelled", "expired", "rejected"):
                    refused.append((planned, f"{result.order.state} with nothing filled"))
                continue
            ended = result.order.state not in ("open", "partially_filled")
            k = self._apply_fill(planned, filled.price, filled.amount, filled.fee, fill_ns, ended=ended)
            if k is not None:
                repriced.append(k)
        # Refused inside exits last, latest trade first: undoing a trade renumbers the ones after it.
        refused.sort(key=lambda item: -item[0].trade)
        for planned, error in refused:
            removed = self._exit_refused(planned, error, fill_ns)
            if removed is not None:
                repriced = [k - (k > removed) for k in repriced if k != removed]
        return repriced

    def _apply_fill(
        self,
        planned: PlannedOrder,
        price: float,
        amount: float,
        fee: float,
        fill_ns: int,
        *,
        ended: bool = True,
    ):
        """One order's fills into the kernel. Returns the trade number when a closed trade was repriced.
        An exit that ``ended`` with less than its amount leaves the rest held (see exit_retry)."""
        held = self.trader.position(planned.pair)
        if planned.entry:
            if held is None:
                side = "long" if planned.action == "open_long" else "short"
                self.trader.apply_external_fill(
                    planned.pair, price=price, amount=amount, fee=fee, time=fill_ns, side=side
                )
            return None
        short = ended and amount < float(planned.amount) * (1 - 1e-9)  # the exchange sold less than asked
        if planned.action == "close":
            if held is not None:
                self.trader.apply_external_fill(
                    planned.pair, price=price, amount=amount, fee=fee, time=fill_ns
                )
                if short:
                    self._close_partial(planned, amount, fill_ns)
            return None
        if planned.action not in INSIDE_EXITS:
            return None  # adopted or unknown orders: stored, not followed by the kernel
        if short:
            return self._exit_partial(planned, price, amount, fee, fill_ns)
        k = planned.trade if planned.trade >= 0 else self._trade_of(planned)
        if k is not None:
            self.trader.reprice_exit(k, price=price, fee=fee)
        return k

    def _trade_of(self, planned: PlannedOrder) -> int | None:
        """The kernel's closed trade an exit inside a candle belongs to (after a restart)."""
        from engine.trading import layout as L

        st = self.trader.state
        p = st.pairs.index(planned.pair)
        for k in range(st.n_trades - 1, -1, -1):
            if st.tr_i[k, L.U_PAIR] == p:
                return k
        return None

    async def _look_up_unresolved(self) -> tuple[list[SendResult], list[int]]:
        """Orders sent without a known answer: ask the exchange again; the kernel follows their fills."""
        from engine.exchanges.base import OrderNotFound

        assert self.execution is not None
        results = []
        for cid, planned in list(self._unresolved.items()):
            try:
                order = await self.execution.exchange.fetch_order(planned.pair, cid)
            except OrderNotFound as error:
                self._unresolved.pop(cid)
                results.append(SendResult(planned, error=error))
                continue
            except Exception:
                continue  # still unreachable: next candle
            results.append(SendResult(planned, order=order))
        results = await self.execution.valued(results)
        repriced = self._follow(results, self.last_time + self.step_ns)
        return results, repriced

    async def _reconcile(self) -> None:
        """At start: the store's active orders against the exchange; fills made while the engine was
        down are applied to the store (by ``reconcile``) and to the kernel (here), then checkpointed."""
        from engine.exchanges.orders import reconcile

        assert self.execution is not None and self.bot_id is not None
        summary = await reconcile(
            self.factory,
            self.execution.exchange,
            self.bot_id,
            CLIENT_ID_PREFIX,
            symbols=list(self.pairs),
            check_delay=0.2,
        )
        n_trades = self.trader.state.n_trades
        repriced = []
        unvalued: list[tuple[str, str, str]] = []
        async with self.factory() as session:
            rows = {
                cid: await get_order(session, client_order_id=cid)
                for cid in summary.filled + summary.adopted + summary.failed
            }
        for cid in summary.filled:
            row = rows.get(cid)
            trades = [t for t in summary.new_fills if t.client_order_id == cid]
            if row is None or not trades or row.pair not in self.pairs:
                continue
            planned = planned_from_row(row)
            filled = await self.execution.value_trades(trades, row.side.value, row.pair)
            if filled is None:
                continue
            unvalued.extend((cid, row.pair, asset) for asset in filled.unvalued)
            when = pd.Timestamp(row.signal_time) if row.signal_time else _utc(self.last_time)
            fill_ns = int(when.as_unit("ns").value) + self.step_ns
            ended = row.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.SENT)
            k = self._apply_fill(planned, filled.price, filled.amount, filled.fee, fill_ns, ended=ended)
            if k is not None:
                repriced.append(k)
        for cid in summary.failed:
            # An exit the exchange never got (the engine stopped first): its amount is still held.
            row = rows.get(cid)
            if row is not None and row.pair in self.pairs:
                error = row.error or "not found on the exchange"
                fill_ns = self.last_time + self.step_ns
                removed = self._exit_refused(planned_from_row(row), error, fill_ns)
                if removed is not None:
                    repriced = [k - (k > removed) for k in repriced if k != removed]
        n_trades -= self._take_stored_undone()
        async with self.factory() as session, session.begin():
            await self._retries_from_store(session)
            open_orders = await list_open_orders(session, self.bot_id)
            self._unresolved = {o.client_order_id: planned_from_row(o) for o in open_orders}
            await self._record_results(session, [], n_trades, repriced, checkpoint=self.last_time)
            parts = summary.messages()
            await record_event(
                session,
                EventCategory.SYSTEM,
                "reconciled",
                f"{self.name} [{self.mode}]: {len(summary.checked)} order(s) checked"
                + (f"; {'; '.join(parts)}" if parts else ""),
                bot_id=self.bot_id,
                data={
                    "mode": self.mode,
                    "checked": summary.checked,
                    "filled": summary.filled,
                    "cancelled": summary.cancelled,
                    "adopted": summary.adopted,
                    "failed": summary.failed,
                    "unreachable": summary.unreachable,
                },
            )
            for cid, pair, asset in unvalued:
                await self._record_unvalued_fee(session, cid, pair, asset)
