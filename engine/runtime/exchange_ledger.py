"""The store side of a testnet/live bot's orders: the exchange's answers and what the kernel did with
them (orders, fills, events, closed trades repriced, positions, the checkpoint), and the market orders
of exits found inside a candle saved as sent. A mixin of :class:`~engine.runtime.execution.ExchangeMode`
(moved out of ``execution.py`` verbatim).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store import (
    EventCategory,
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    close_position,
    get_order,
    mark_closed,
    mark_sent,
    record_event,
    record_trade,
    save_order_intent,
    trades_from_frame,
)
from engine.store.models import Trade as TradeRow

if TYPE_CHECKING:
    from engine.runtime.execution import PlannedOrder, SendResult

__all__ = ["ExchangeLedger"]


class ExchangeLedger:
    """Writes of the exchange side, in the caller's transaction (a mixin; see the module docstring)."""

    name: str
    mode: str
    bot_id: int | None
    pairs: tuple[str, ...]
    trader: Any

    if TYPE_CHECKING:  # provided by BotRunner and ExitRetry

        async def _sync_position(self, session: AsyncSession, pair: str) -> None: ...

        async def _save_checkpoint(self, session: AsyncSession, time_ns: int) -> None: ...

        async def _record_exit_notes(self, session: AsyncSession) -> None: ...

    async def _record_results(
        self,
        session: AsyncSession,
        results: list[SendResult],
        n_trades: int,
        repriced: list[int],
        *,
        checkpoint: int | None,
        trades: bool = True,
    ) -> None:
        """Store the exchange's answers and what the kernel did with them, in the caller's transaction
        (``trades=False``: the answers only, the caller stores the kernel's changes)."""
        from engine.exchanges.orders import apply_exchange_order
        from engine.trading.state import trades_frame

        bot_id = self.bot_id
        assert bot_id is not None
        await self._record_exit_notes(session)
        for result in results:
            planned = result.planned
            cid = planned.client_order_id
            data = {"mode": self.mode, "pair": planned.pair, "client_order_id": cid, "action": planned.action}
            if result.order is not None:
                before = await get_order(session, client_order_id=cid)
                was = before.status if before is not None else None
                new_fills = await apply_exchange_order(session, cid, result.order)
                stored = await get_order(session, client_order_id=cid)
                if stored is not None and stored.status == was and not new_fills:
                    continue  # a look-up that found nothing new (an order still resting): no event
                status = stored.status.value if stored is not None else result.order.state
                await record_event(
                    session,
                    EventCategory.ORDER,
                    status,
                    f"{self.name} [{self.mode}] {planned.action} {planned.pair}: {planned.side} "
                    f"{planned.amount} {status}"
                    + (f" at {result.order.average_price}" if result.order.average_price else ""),
                    bot_id=bot_id,
                    data={
                        **data,
                        "filled": result.order.filled,
                        "price": result.order.average_price,
                        **({"fee": result.fill.fee} if result.fill is not None else {}),
                    },
                )
                if new_fills and result.fill is not None:
                    for asset in result.fill.unvalued:
                        await self._record_unvalued_fee(session, cid, planned.pair, asset)
            elif result.unknown:
                await record_event(
                    session,
                    EventCategory.ORDER,
                    "unknown",
                    f"{self.name} [{self.mode}] {planned.action} {planned.pair}: no answer ({result.error}); "
                    "looked up again at the next candle",
                    bot_id=bot_id,
                    data={**data, "error": str(result.error)},
                )
            else:
                status = OrderStatus.REJECTED if result.rejected else OrderStatus.FAILED
                error = f"{type(result.error).__name__}: {result.error}"
                await mark_closed(session, cid, status, error=error)
                await record_event(
                    session,
                    EventCategory.ORDER,
                    status.value,
                    f"{self.name} [{self.mode}] {planned.action} {planned.pair} {status.value}: {error}",
                    bot_id=bot_id,
                    data={**data, "error": error},
                )
                await record_event(
                    session,
                    EventCategory.ERROR,
                    "order_" + status.value,
                    f"{self.name} [{self.mode}] {planned.action} {planned.pair}: {error}",
                    bot_id=bot_id,
                    data=data,
                )
        if not trades:
            return
        # Most candles close no trade: no frame to build then (~2 ms of pandas).
        closed = trades_frame(self.trader.state, n_trades) if self.trader.state.n_trades > n_trades else None
        for trade in trades_from_frame(closed) if closed is not None else ():
            position = await close_position(session, bot_id, trade.pair, trade.close_time)
            await record_trade(session, bot_id, trade, position_id=position.id if position else None)
        for k in repriced:
            await self._update_trade_row(session, k)
        for pair in self.pairs:
            if self.trader.position(pair) is not None:
                await self._sync_position(session, pair)
        if checkpoint is not None and checkpoint > -(2**62):
            await self._save_checkpoint(session, checkpoint)

    async def _record_unvalued_fee(self, session: AsyncSession, cid: str, pair: str, asset: str) -> None:
        """A fee paid in ``asset`` that had no price in the quote currency: counted as 0, said here."""
        await record_event(
            session,
            EventCategory.ORDER,
            "fee_unvalued",
            f"{self.name} [{self.mode}] {pair}: the fee of order {cid} was paid in {asset}, which has no "
            "price in the quote currency; counted as 0 (profit is overstated by it)",
            bot_id=self.bot_id,
            data={"mode": self.mode, "pair": pair, "client_order_id": cid, "fee_asset": asset},
        )

    async def _update_trade_row(self, session: AsyncSession, k: int) -> None:
        from engine.trading.state import trades_frame

        row = trades_frame(self.trader.state, k).iloc[0]
        stored = (
            await session.execute(
                select(TradeRow)
                .where(
                    TradeRow.bot_id == self.bot_id,
                    TradeRow.pair == row["pair"],
                    TradeRow.close_time == row["close_time"].to_pydatetime(),
                )
                .order_by(TradeRow.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if stored is None:
            return
        stored.close_price = Decimal(repr(float(row["close_price"])))
        stored.profit_abs = Decimal(repr(float(row["profit_abs"])))
        stored.profit_ratio = float(row["profit_ratio"])
        stored.fees = Decimal(repr(float(row["fees"])))
        await session.flush()

    async def _exit_inside(self, session: AsyncSession, fill, planned: PlannedOrder) -> None:
        """Exchange modes: a stop, target or trailing exit the kernel found inside the candle becomes a
        market order sent at this close (no stop order rests on the exchange)."""
        await self._save_exit_intent(session, fill, planned)
        await record_event(
            session,
            EventCategory.TRADE,
            "exit_triggered",
            f"{self.name} [{self.mode}] {fill.pair}: {fill.reason} touched at {fill.price:g}; "
            "market order sent at the close",
            bot_id=self.bot_id,
            data={"pair": fill.pair, "reason": fill.reason, "level": fill.price, "mode": self.mode},
            time=fill.time.to_pydatetime(),
        )

    async def _save_exit_intent(self, session: AsyncSession, fill, planned: PlannedOrder) -> None:
        """The market order of an exit found inside the candle, saved as sent (once per client id)."""
        if await get_order(session, client_order_id=planned.client_order_id) is None:
            await save_order_intent(
                session,
                OrderIntent(
                    bot_id=self.bot_id,  # type: ignore[arg-type]
                    pair=fill.pair,
                    side=OrderSide(planned.side),
                    type=OrderType.MARKET,
                    amount=planned.amount,
                    reason=fill.reason,
                    signal_time=fill.time.to_pydatetime(),
                    client_order_id=planned.client_order_id,
                ),
            )
            await mark_sent(session, planned.client_order_id)
