"""The SQL side of a live bot's candle: what :class:`~engine.runtime.bot.BotRunner` writes for it.

A mixin of the runner (it uses the runner's identity, ``trader``, ``params``, ``execution`` and the
exchange-side writers of :class:`~engine.runtime.execution.ExchangeMode`): the order rows a close
decides (``_intents``, ``_intent_values``), and the bookkeeping transaction of the candle (``_commit``):
reload and close-request events, paper fills as orders and fills, exits found inside the candle on an
exchange, refused entries, closed trades, positions, the equity snapshot and the checkpoint.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from engine.runtime.checkpoint import save_checkpoint
from engine.runtime.commands import record_command_outcome
from engine.runtime.execution import PlannedOrder, SendResult
from engine.runtime.ids import client_order_id
from engine.runtime.momentum import AlertFired, alert_data
from engine.store import (
    EventCategory,
    FillReport,
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    PositionState,
    apply_fill,
    close_position,
    get_order,
    insert_order_rows,
    list_open_orders,
    mark_closed,
    mark_sent,
    order_intent_values,
    record_event,
    record_trade,
    save_order_intent,
    snapshot_equity,
    trades_from_frame,
    upsert_position,
)

__all__ = ["CandleLedger", "CandleWork", "CloseRequest"]


def _utc(ns: int | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC") if isinstance(ns, int) else pd.Timestamp(ns)


def _quote(pair: str) -> str:
    return pair.split(":")[-1] if ":" in pair else pair.split("/")[-1]


class CloseRequest(NamedTuple):
    """A request to close ``pair`` taken on a candle: ``closing`` False when the position was gone by
    then (closed inside the candle). ``commands``: the ``bot_commands`` rows asking for it, marked done
    in the candle's transaction."""

    pair: str
    commands: tuple[int, ...]
    closing: bool


class CandleWork(NamedTuple):
    """What one candle decided, for the transactions that store it."""

    time_ns: int  # the candle's open time
    events: list  # the Trader's events
    refused: list[tuple[str, str, str]]  # entries the portfolio refused: (pair, side, reason)
    n_trades: int  # closed trades before this candle
    reloaded: bool  # a new configuration took effect on it
    planned: list[PlannedOrder]  # orders to send (exchange modes)
    late: tuple[list[SendResult], list[int]]  # answers looked up for orders of earlier candles
    requested: list[CloseRequest]  # requests to close a pair taken on this candle


class CandleLedger:
    """The writes of a candle (a mixin of BotRunner; see the module docstring)."""

    name: str
    mode: str
    loaded: Any
    bot_id: int | None
    pairs: tuple[str, ...]
    timeframe: str
    step_ns: int
    hash: str
    trader: Any
    params: Any
    view: Any
    execution: Any
    _closes: dict[str, float]
    _maybe_stored: bool
    _orders_waiting: bool
    _synced: dict[str, Any]
    _restops: dict[str, Any]
    _exchange_refusals: list[tuple[str, str, str]]

    if TYPE_CHECKING:  # provided by ExchangeMode

        async def _record_results(self, session: AsyncSession, *args: Any, **kwargs: Any) -> None: ...

        async def _exit_inside(self, session: AsyncSession, fill: Any, order: PlannedOrder) -> None: ...

        async def _update_trade_row(self, session: AsyncSession, k: int) -> None: ...

        async def _save_exit_intent(
            self, session: AsyncSession, fill: Any, planned: PlannedOrder
        ) -> None: ...

    def _intents(self, events: list, planned: list[PlannedOrder]) -> tuple[list[dict], list[tuple]]:
        """The order rows this close decides (saved as sent) and, on an exchange, the exits found inside
        the candle whose market orders go out at the close (saved by ``_save_exit_intent``)."""
        from engine.trading.trader import Fill, Order

        amounts = {(p.pair, p.action): p for p in planned}
        rows: list[dict] = []
        exits: list[tuple] = []
        for event in events:
            if isinstance(event, Order):
                if self.execution is None:
                    rows.append(self._intent_values(event))
                elif (order := amounts.get((event.pair, event.action))) is not None:
                    rows.append(self._intent_values(event, order))
            elif (
                isinstance(event, Fill)
                and self.execution is not None
                and (order := amounts.get((event.pair, event.reason))) is not None
            ):
                exits.append((event, order))
        return rows, exits

    async def _commit_intents(self, session: AsyncSession, rows: list[dict], exits: list[tuple]) -> None:
        await insert_order_rows(session, rows)
        for fill, order in exits:
            await self._save_exit_intent(session, fill, order)

    async def _save_checkpoint(self, session: AsyncSession, time_ns: int) -> None:
        await save_checkpoint(
            session,
            self.bot_id,  # type: ignore[arg-type]
            time=time_ns,
            pairs=self.pairs,
            timeframe=self.timeframe,
            state=self.trader.state,
            config_hash=self.hash,
        )

    async def _commit(self, session: AsyncSession, work: CandleWork, intents_written: bool = False) -> None:
        """Everything of one candle, in the caller's transaction (a savepoint under group commit);
        ``intents_written``: its order intents are committed already (intent first)."""
        time_ns, events, refused, n_trades, reloaded, planned, late, requested = work
        from engine.trading.state import trades_frame
        from engine.trading.trader import Blocked, Fill, Order

        when = _utc(time_ns)
        bot_id = self.bot_id
        assert bot_id is not None
        exchange_mode = self.execution is not None
        late_results, late_repriced = late
        if late_results:
            await self._record_results(session, late_results, n_trades, [], checkpoint=None, trades=False)
        if reloaded:
            await record_event(
                session,
                EventCategory.RELOAD,
                "applied",
                f"{self.name}: new configuration in effect from the candle at {when}",
                bot_id=bot_id,
                data={
                    "config_hash": self.hash,
                    "time": str(when),
                    "mode": self.mode,
                    # pair -> [stop, take_profit] recalculated for the positions kept (null: none)
                    "restops": {
                        pair: [None if math.isnan(x) else x for x in levels]
                        for pair, levels in self._restops.items()
                    },
                },
            )
        for pair, commands, closing in requested:
            if closing:
                message = f"{pair}: position closed on request at the close of {when}"
                await record_event(
                    session,
                    EventCategory.ORDER,
                    "close_requested",
                    f"{self.name} [{self.mode}] {message}",
                    bot_id=bot_id,
                    data={"pair": pair, "mode": self.mode, "time": str(when)},
                    time=when.to_pydatetime(),
                )
            else:
                message = f"{pair}: the position was closed inside the candle of {when} already"
            for command_id in commands:
                await record_command_outcome(
                    session, command_id, "close_position", bot_id, f"{self.name}: {message}"
                )
        amounts = {(p.pair, p.action): p for p in planned}
        for event in events:
            if isinstance(event, Order):
                if intents_written:
                    continue  # committed by _commit_intents before this transaction
                if exchange_mode:
                    order = amounts.get((event.pair, event.action))
                    if order is not None:
                        await self._decide(session, event, order)
                else:
                    await self._decide(session, event)
            elif isinstance(event, Fill):
                if exchange_mode:
                    order = amounts.get((event.pair, event.reason))
                    if order is not None:
                        await self._exit_inside(session, event, order)
                else:
                    await self._fill(session, event)
            elif isinstance(event, AlertFired):
                spec = self.loaded.strategy.model.alerts.get(event.name)
                score = "" if math.isnan(event.score) else f" (score {event.score:.3g})"
                await record_event(
                    session,
                    EventCategory.ALERT,
                    "momentum",
                    f"{self.name} [{self.mode}] {event.pair}: {event.name}{score}: {event.message}",
                    bot_id=bot_id,
                    data=alert_data(event, self.mode, spec.every if spec is not None else None),
                    time=_utc(event.time_ns).to_pydatetime(),
                )
            elif isinstance(event, Blocked):
                await record_event(
                    session,
                    EventCategory.RISK,
                    "blocked",
                    f"{self.name} {event.pair}: {event.side} entry refused ({event.reason})",
                    bot_id=bot_id,
                    data={"pair": event.pair, "side": event.side, "reason": event.reason, "mode": self.mode},
                    time=event.time.to_pydatetime(),
                )
        for pair, side, reason in self._exchange_refusals:
            await record_event(
                session,
                EventCategory.RISK,
                "blocked",
                f"{self.name} [{self.mode}] {pair}: {side} entry not sent ({reason})",
                bot_id=bot_id,
                data={"pair": pair, "side": side, "reason": reason, "mode": self.mode},
                time=when.to_pydatetime(),
            )
        for pair, side, reason in refused:
            await record_event(
                session,
                EventCategory.RISK,
                "blocked",
                f"{self.name} {pair}: {side} entry refused by the portfolio ({reason})",
                bot_id=bot_id,
                data={"pair": pair, "side": side, "reason": reason, "mode": self.mode},
                time=when.to_pydatetime(),
            )
        # Most candles close no trade: no frame to build then (~2 ms of pandas).
        closed = trades_frame(self.trader.state, n_trades) if self.trader.state.n_trades > n_trades else None
        for trade in trades_from_frame(closed) if closed is not None else ():
            position = await close_position(session, bot_id, trade.pair, trade.close_time)
            await record_trade(session, bot_id, trade, position_id=position.id if position else None)
        for k in late_repriced:
            await self._update_trade_row(session, k)
        touched = {e.pair for e in events if isinstance(e, Fill)}
        for pair in self.pairs:
            if pair in touched or self.trader.position(pair) is not None:
                await self._sync_position(session, pair)
        if not exchange_mode and self._orders_waiting:
            # Orders decided for an open that has passed without filling them are over. (On an
            # exchange an order without an answer stays sent until a look-up settles it.) Paper
            # orders live one candle: only a candle after one that decided some has any to look at.
            for order in await list_open_orders(session, bot_id):
                if order.signal_time is not None and pd.Timestamp(order.signal_time) < when:
                    await mark_closed(
                        session,
                        order.client_order_id,
                        OrderStatus.CANCELLED,
                        error="not filled at the next open",
                    )
        self._orders_waiting = any(isinstance(e, Order) for e in events)
        st = self.trader.state
        await snapshot_equity(
            session,
            bot_id=bot_id,
            time=when.to_pydatetime(),
            equity=st.equity,
            cash=st.cash,
        )
        await self._save_checkpoint(session, time_ns)

    async def _decide(self, session: AsyncSession, order, planned: PlannedOrder | None = None) -> None:
        """An order decided on this close for the next open, saved as sent in the candle's transaction."""
        values = self._intent_values(order, planned)
        # Only the first candle after a restore can find its decisions stored (an attempt that died or
        # failed after its intents were committed); later candles decide ids never seen before.
        if self._maybe_stored and await get_order(session, client_order_id=values["client_order_id"]):
            return  # decided before a restart: never twice
        await insert_order_rows(session, [values])

    def _intent_values(self, order, planned: PlannedOrder | None = None) -> dict:
        """The row of an order decided on this close: status sent (paper: handed to the kernel's
        simulated book; exchange modes: sent right after the transaction that stores it commits, so
        no reader ever sees it as an intent)."""
        cid = client_order_id(self.name, order.pair, order.time, order.action)
        if planned is not None:
            amount = planned.amount
            side = OrderSide(planned.side)
        else:
            close = self._closes[order.pair]
            position = self.trader.position(order.pair)
            if order.action == "close" and position is not None:
                amount = float(position["amount"])
                side = OrderSide.SELL if position["side"] == "long" else OrderSide.BUY
            else:
                # Market entries are sized by the kernel at the fill; the intent carries the estimate.
                amount = self.trader.equity * self.params.max_per_trade / close
                side = OrderSide.BUY if order.action == "open_long" else OrderSide.SELL
        self.view.last_signal = f"{order.action} {order.pair} @ {order.time:%Y-%m-%d %H:%M}"
        return order_intent_values(
            OrderIntent(
                bot_id=self.bot_id,  # type: ignore[arg-type]
                pair=order.pair,
                side=side,
                type=OrderType.MARKET,
                amount=amount,
                reason=order.action,
                signal_time=order.time.to_pydatetime(),
                client_order_id=cid,
            ),
            OrderStatus.SENT,
        )

    async def _fill(self, session: AsyncSession, fill, cid: str | None = None) -> None:
        """A paper fill the kernel made; ``cid``: the order's client id when it is not one the kernel's
        own decisions name (a fast exit between closes, engine.runtime.fast_exit_close)."""
        decided_at = fill.time - pd.Timedelta(self.step_ns)
        if cid is not None:
            side = OrderSide.SELL if fill.side == "long" else OrderSide.BUY
        elif fill.action == "open":
            cid = client_order_id(self.name, fill.pair, decided_at, f"open_{fill.side}")
            side = OrderSide.BUY if fill.side == "long" else OrderSide.SELL
        elif fill.reason in ("exit_signal", "fast_exit"):  # decided on a close, filled at the open
            cid = client_order_id(self.name, fill.pair, decided_at, "close")
            side = OrderSide.SELL if fill.side == "long" else OrderSide.BUY
        else:  # stop, target, end of day: an exit inside the candle, not decided on a close
            cid = client_order_id(self.name, fill.pair, fill.time, fill.reason)
            side = OrderSide.SELL if fill.side == "long" else OrderSide.BUY
        order = await get_order(session, client_order_id=cid, for_update=True)
        if order is None:
            await save_order_intent(
                session,
                OrderIntent(
                    bot_id=self.bot_id,  # type: ignore[arg-type]
                    pair=fill.pair,
                    side=side,
                    type=OrderType.MARKET,
                    amount=fill.amount,
                    reason=fill.reason,
                    signal_time=fill.time.to_pydatetime(),
                    client_order_id=cid,
                ),
            )
            await mark_sent(session, cid)
        else:
            order.amount = Decimal(repr(float(fill.amount)))
        await apply_fill(
            session,
            FillReport(
                trade_id=f"{cid}-1",
                amount=fill.amount,
                price=fill.price,
                time=fill.time.to_pydatetime(),
                fee=fill.fee,
                fee_currency=_quote(fill.pair) if fill.fee else None,
                client_order_id=cid,
            ),
        )
        verb = "opened" if fill.action == "open" else "closed"
        await record_event(
            session,
            EventCategory.TRADE,
            verb,
            f"{self.name} {fill.pair}: {fill.side} {verb} at {fill.price:g} ({fill.reason})",
            bot_id=self.bot_id,
            data={
                "pair": fill.pair,
                "side": fill.side,
                "price": fill.price,
                "amount": fill.amount,
                "mode": self.mode,
            },
            time=fill.time.to_pydatetime(),
        )

    async def _sync_position(self, session: AsyncSession, pair: str) -> None:
        from engine.trading import layout as L

        state = self.trader.state
        p = state.pairs.index(pair)
        held = self.trader.position(pair)
        if held is None:
            return  # closed with its trade above

        def finite(x: float) -> float | None:
            return float(x) if np.isfinite(x) and x > 0 else None

        # Most candles change nothing of an open position: no statement then.
        key = (
            held["side"],
            float(held["amount"]),
            float(held["entry_price"]),
            int(state.pos_i[p, L.Q_ENTRY_TIME]),
            finite(held["stop"]),
            finite(held["take_profit"]),
            finite(held["trailing_stop"]),
        )
        if self._synced.get(pair) == key:
            return
        self._synced[pair] = key
        await upsert_position(
            session,
            self.bot_id,  # type: ignore[arg-type]
            PositionState(
                pair=pair,
                side=PositionSide(held["side"]),
                amount=held["amount"],
                entry_price=held["entry_price"],
                opened_at=_utc(int(state.pos_i[p, L.Q_ENTRY_TIME])).to_pydatetime(),
                stop=finite(held["stop"]),  # type: ignore[arg-type]
                take_profit=finite(held["take_profit"]),  # type: ignore[arg-type]
                trailing=None
                if not finite(held["trailing_stop"])  # type: ignore[arg-type]
                else {"stop": float(held["trailing_stop"])},
            ),
        )
