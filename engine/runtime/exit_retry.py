"""Exits the exchange refused or filled only in part: the kernel gets the unsold amount back as its open
position, which is sold again at the pair's next close, until it is gone or it is dust.

An exit found inside a candle (stop, target, trailing...) is a closed trade in the kernel before its
market order goes out at the close; an exit decided on a close (exit signal, close request) is not.
Either way, what the exchange did not sell is still on the account, so the kernel must hold it too:

* refused (insufficient funds, invalid order, market closed) or ended with nothing filled: an inside
  exit's trade is undone (:meth:`~engine.trading.trader.Trader.reopen`); a close exit never left;
* filled in part (a market order answered ``expired`` with less than its amount): an inside exit's
  trade shrinks to what was sold, repriced, and the rest is the position again; a close exit keeps the
  rest open (``Trader.apply_external_fill``).

The position is then exited again at the pair's next close, as a new decision (a new client order id
from that close's time) through the path of a close request. An amount the market will never take
(below its amount step or its minimum order value: "dust") is not retried: the kernel writes it off
(:meth:`~engine.trading.trader.Trader.write_off`: a closed trade with no proceeds, so the cash stays the
account's) and a ``risk``/``dust`` event names the amount left on the exchange account.

A refused exit's entry partner in the same round (a stop and a new entry on the same pair at one close)
is not sent: the position it would open is still held. After a restart the pairs to retry are found in
the store (their last order is an exit refused or partly filled, and the kernel holds them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.exchanges.base import OperationalExchangeError
from engine.observability import category_logger
from engine.store import EventCategory, OrderStatus, record_event
from engine.store.models import Order as OrderRow
from engine.store.models import Trade as TradeRow

if TYPE_CHECKING:
    from engine.runtime.execution import ExchangeExecution, PlannedOrder, SendResult

__all__ = ["EntryHeldBack", "ExitNote", "ExitRetry"]

log = category_logger("orders")

# Exits the kernel finds inside a candle (a closed trade before their order is sent).
# A fast exit taken between closes on the trade stream is one too (engine.runtime.fast_exit_close).
INSIDE_EXITS = ("stop_loss", "take_profit", "trailing_stop", "daily_limit", "end_of_data", "fast_exit")
EXITS = (*INSIDE_EXITS, "close")
_TINY = 1e-9


class EntryHeldBack(OperationalExchangeError):
    """An entry not sent because the exit before it on the same pair, in the same round, did not fill."""


@dataclass(frozen=True, slots=True)
class ExitNote:
    """What happened to an exit, stored as an event with the candle's bookkeeping."""

    category: EventCategory
    kind: str  # partial | exit_retry | dust
    pair: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    owner: Any  # the Trader these changes were made to
    notes: list[ExitNote] = field(default_factory=list)
    fixes: list[tuple[str, int, float | None]] = field(default_factory=list)
    undone: int = 0


def _utc(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


def dust_reason(execution: ExchangeExecution, pair: str, amount: float, price: float) -> str | None:
    """``lot_size`` or ``min_notional`` when the market will never take ``amount`` at ``price`` in one
    order; None when it may."""
    market = execution.markets.get(pair)
    if market is None:
        return None
    value = execution.round_exit(pair, amount)
    if value <= 0:
        return "lot_size"
    if market.min_notional > 0 and price > 0 and value * Decimal(repr(float(price))) < market.min_notional:
        return "min_notional"
    return None


class ExitRetry:
    """The exits that did not complete (a mixin of :class:`~engine.runtime.execution.ExchangeMode`)."""

    name: str
    mode: str
    bot_id: int | None
    pairs: tuple[str, ...]
    step_ns: int
    last_time: int
    trader: Any
    view: Any
    execution: ExchangeExecution | None
    _closes: dict[str, float]
    _synced: dict[str, Any]

    # Created on first use: the runner's constructor does not know this mixin.
    @property
    def _exit_retries(self) -> dict[str, str]:
        """pair -> the exit action to retry at the pair's next close (kept by a restore: a pair found
        flat at its close is dropped)."""
        return self.__dict__.setdefault("_exit_retries_", {})

    @property
    def _exit_pending(self) -> _Pending:
        """What the kernel did that the next bookkeeping stores. It belongs to the kernel it was done
        to: a restore builds a new Trader, and the changes of the failed attempt are dropped with it."""
        pending = self.__dict__.get("_exit_pending_")
        if pending is None or pending.owner is not self.trader:
            pending = self.__dict__["_exit_pending_"] = _Pending(self.trader)
        return pending

    @property
    def _exit_notes(self) -> list[ExitNote]:
        return self._exit_pending.notes

    @property
    def _trade_fixes(self) -> list[tuple[str, int, float | None]]:
        """Stored trade rows to change: (pair, close time ns, amount left; None: delete the row)."""
        return self._exit_pending.fixes

    # --- sending --------------------------------------------------------------------------------

    async def _send_round(self, planned: list[PlannedOrder]) -> list[SendResult]:
        """Send a round's orders in order; an entry on a pair whose exit in this round did not fill
        completely is held back (its position is still held)."""
        from engine.runtime.execution import SendResult

        assert self.execution is not None
        results: list[SendResult] = []
        short: set[str] = set()
        for order in planned:
            if order.entry and order.pair in short:
                error = EntryHeldBack(f"entry not sent: the exit before it on {order.pair} did not fill")
                results.append(SendResult(order, error=error))
                continue
            result = await self.execution.send(order)
            if not order.entry and not _complete(result):
                short.add(order.pair)
            results.append(result)
        return results

    # --- the kernel -----------------------------------------------------------------------------

    def _exit_refused(self, planned: PlannedOrder, error: str, fill_ns: int) -> int | None:
        """An exit the exchange did not execute at all (``fill_ns``: when it would have filled). Returns
        the trade number removed from the kernel (an inside exit), else None."""
        if planned.action not in EXITS:
            return None
        pair = planned.pair
        removed = None
        reason = "exit_signal"
        if planned.action != "close":
            k = self._exit_trade(planned)
            if k is None:
                return None
            st = self.trader.state
            from engine.trading import layout as L

            reason = planned.action
            self._note_stored(k, None)
            self.trader.reopen(k, float(st.tr_f[k, L.T_AMOUNT]))
            removed = k
        held = self.trader.position(pair)
        if held is None:
            return removed
        amount = float(held["amount"])
        self._after_short(pair, amount, fill_ns, reason, f"{planned.action} refused ({error})", "exit_retry")
        return removed

    def _exit_partial(
        self, planned: PlannedOrder, price: float, sold: float, fee: float, fill_ns: int
    ) -> int | None:
        """An inside exit that sold ``sold`` of its trade at ``fill_ns``: the rest becomes the position
        again and the trade is repriced. Returns the trade number (repriced)."""
        from engine.trading import layout as L

        k = self._exit_trade(planned)
        if k is None:
            return None
        st = self.trader.state
        full = float(st.tr_f[k, L.T_AMOUNT])
        rest = full - sold
        self._note_stored(k, sold)
        self.trader.reopen(k, rest)
        self.trader.reprice_exit(k, price=price, fee=fee)
        what = f"{planned.action} filled {sold:g} of {full:g}"
        self._after_short(planned.pair, rest, fill_ns, planned.action, what, "partial", sold=sold)
        return k

    def _close_partial(self, planned: PlannedOrder, sold: float, fill_ns: int) -> None:
        """A close exit that sold ``sold``: the kernel kept the rest open (apply_external_fill)."""
        held = self.trader.position(planned.pair)
        if held is None:
            return
        rest = float(held["amount"])
        what = f"close filled {sold:g} of {sold + rest:g}"
        self._after_short(planned.pair, rest, fill_ns, "exit_signal", what, "partial", sold=sold)

    def _after_short(
        self, pair: str, amount: float, when: int, reason: str, what: str, kind: str, *, sold: float = 0.0
    ) -> None:
        """The kernel holds ``amount`` of ``pair`` that an exit did not sell: retried at the pair's next
        close, or written off as dust at ``when`` (the exit's fill time: after the trade it leaves, so the
        stored rows of the two never share a close time)."""
        assert self.execution is not None
        self._synced.pop(pair, None)  # the position row is written again
        price = self._closes.get(pair, 0.0)
        why = dust_reason(self.execution, pair, amount, price)
        data = {"pair": pair, "mode": self.mode, "amount": amount, "sold": sold, "what": what}
        if why is not None:
            self.trader.write_off(pair, time=when, reason=reason)
            self._exit_retries.pop(pair, None)
            message = (
                f"{self.name} [{self.mode}] {pair}: {what}; the {amount:g} left is below the market's "
                f"minimum ({why}) and can never be sold: written off (it stays on the exchange account)"
            )
            self._exit_notes.append(
                ExitNote(EventCategory.RISK, "dust", pair, message, {**data, "reason": "dust", "rule": why})
            )
            self.view.last_error = message
            log.warning("%s", message)
            return
        self._exit_retries[pair] = "close"
        message = (
            f"{self.name} [{self.mode}] {pair}: {what}; {amount:g} still held, sold again at the next close"
        )
        self._exit_notes.append(ExitNote(EventCategory.ORDER, kind, pair, message, data))
        self.view.last_error = message
        log.warning("%s", message)

    def _exit_trade(self, planned: PlannedOrder) -> int | None:
        """The kernel's closed trade of an inside exit: the planned number while it still is that trade,
        else the pair's last trade when it closed for that reason (after a restart, or when an undone
        trade renumbered the later ones). None while the pair holds a position again: that one is what
        the account holds now (logged)."""
        from engine.trading import layout as L

        st = self.trader.state
        p = st.pairs.index(planned.pair)
        if st.pos_i[p, L.Q_SIDE] != 0:
            log.error(
                "%s [%s] %s: %s not sold but a position is held again; left as it is",
                self.name, self.mode, planned.pair, planned.action,
            )  # fmt: skip
            return None
        k = planned.trade
        reason = L.EXIT_REASONS.get(int(st.tr_i[k, L.U_REASON])) if 0 <= k < st.n_trades else None
        if reason == planned.action and st.tr_i[k, L.U_PAIR] == p:
            return k
        for k in range(st.n_trades - 1, -1, -1):
            if st.tr_i[k, L.U_PAIR] == p:
                return k if L.EXIT_REASONS[int(st.tr_i[k, L.U_REASON])] == planned.action else None
        return None

    def _note_stored(self, k: int, amount: float | None) -> None:
        """Trade ``k`` changes; when a committed candle stored it already, its row must follow."""
        from engine.trading import layout as L

        st = self.trader.state
        close_ns = int(st.tr_i[k, L.U_CLOSE_TIME])
        if close_ns < self.last_time + self.step_ns:
            self._trade_fixes.append((st.pairs[int(st.tr_i[k, L.U_PAIR])], close_ns, amount))
            if amount is None:
                self._exit_pending.undone += 1

    def _take_stored_undone(self) -> int:
        """How many stored trades were undone since the last call: the trades after them moved down, so
        a caller's count of the trades already stored shrinks by as many."""
        pending = self._exit_pending
        undone, pending.undone = pending.undone, 0
        return undone

    def _retry_orders(self, time_ns: int, events: list) -> None:
        """Close decisions for the pairs whose exit did not complete, on this close of theirs (added to
        ``events`` as the orders a close request adds)."""
        from engine.trading import layout as L
        from engine.trading.trader import Order

        st = self.trader.state
        for pair in list(self._exit_retries):
            p = st.pairs.index(pair)
            if st.pos_i[p, L.Q_LAST_TIME] != time_ns:
                continue  # that pair's candle has not closed yet
            self._exit_retries.pop(pair)
            if st.pos_i[p, L.Q_SIDE] == 0:
                continue  # closed inside this candle (its stop): that exit is sent instead
            if not any(isinstance(e, Order) and e.pair == pair and e.action == "close" for e in events):
                self.trader.request_exit(pair)
                events.append(Order(pair, _utc(time_ns), "close"))

    # --- the store ------------------------------------------------------------------------------

    async def _record_exit_notes(self, session: AsyncSession) -> None:
        """The notes and stored-trade changes since the last bookkeeping, in the caller's transaction."""
        fixes, notes = list(self._trade_fixes), list(self._exit_notes)
        self._trade_fixes.clear()
        self._exit_notes.clear()
        for pair, close_ns, amount in fixes:
            when = _utc(close_ns).to_pydatetime()
            where = (TradeRow.bot_id == self.bot_id, TradeRow.pair == pair, TradeRow.close_time == when)
            if amount is None:
                await session.execute(delete(TradeRow).where(*where))
                continue
            row = (
                await session.execute(select(TradeRow).where(*where).order_by(TradeRow.id.desc()).limit(1))
            ).scalar_one_or_none()
            if row is not None:
                row.amount = Decimal(repr(float(amount)))
        for note in notes:
            await record_event(
                session, note.category, note.kind, note.message, bot_id=self.bot_id, data=note.data
            )
        if fixes:
            await session.flush()

    async def _retries_from_store(self, session: AsyncSession) -> None:
        """After a restart: the held pairs whose last order is an exit that did not complete."""
        for pair in self.pairs:
            if self.trader.position(pair) is None:
                continue
            row = (
                await session.execute(
                    select(OrderRow)
                    .where(OrderRow.bot_id == self.bot_id, OrderRow.pair == pair)
                    .order_by(OrderRow.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if row is None or row.reason not in EXITS:
                continue
            ended_short = row.status == OrderStatus.CANCELLED and row.filled < row.amount
            if row.status in (OrderStatus.REJECTED, OrderStatus.FAILED) or ended_short:
                self._exit_retries[pair] = "close"


def _complete(result: SendResult) -> bool:
    """The exchange executed the whole order (or may have: no answer yet)."""
    if result.order is None:
        return result.unknown
    order = result.order
    if order.state in ("open", "partially_filled"):
        return True  # resting: looked up later
    return order.filled >= order.amount or order.state == "filled"
