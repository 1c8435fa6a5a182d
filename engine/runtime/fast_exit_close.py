"""A fast exit taken between candle closes (see :mod:`engine.runtime.fast_exit`): the position is closed
at market at once, outside the candle path, with the exit reason ``fast_exit``.

* **Paper** bots fill at the last trade price of the stream, slippage against them and the taker fee
  on top: the price a market order sent at that moment would have had at best.
* **Testnet/live** bots close the position in the kernel at that price first (an exit inside the
  candle, like a stop touched), commit the market order's intent, send it and reprice the trade with
  the exchange's fill; a refusal or a partial fill is handled like any inside exit's
  (:mod:`engine.runtime.exit_retry`: the rest is sold again at the next close).

Either way the writes are one or two transactions of their own (the intent on the urgent lane) and the
checkpoint is saved again at the last committed candle, now without the position, so a restart never
holds it again. The bot's turn lock keeps a fast exit and a candle close from interleaving: a close
arriving while a fast exit is written waits for that write only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from engine.runtime.execution import PlannedOrder
from engine.runtime.fast_exit import exit_pending
from engine.runtime.ids import client_order_id
from engine.store import EventCategory, record_event

if TYPE_CHECKING:
    from engine.runtime.fast_exit import FormingCandle

__all__ = ["FastExitClose"]

_NO_CANDLE = -(2**62)


def _utc(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, tz="UTC")


class FastExitClose:
    """The fast exit of :class:`~engine.runtime.bot.BotRunner` (a mixin on its state)."""

    name: str
    mode: str
    trader: Any
    params: Any
    execution: Any
    committer: Any
    step_ns: int
    last_time: int
    bot_id: int | None
    view: Any
    _turn: asyncio.Lock

    if TYPE_CHECKING:  # provided by BotRunner and its other mixins

        async def restore(self, rewind: bool = False) -> None: ...

        async def _fill(self, session: AsyncSession, fill: Any, cid: str | None = None) -> None: ...

        async def _save_checkpoint(self, session: AsyncSession, time_ns: int) -> None: ...

        async def _save_exit_intent(
            self, session: AsyncSession, fill: Any, planned: PlannedOrder
        ) -> None: ...

        async def _send_orders(self, time_ns: int, planned: list[PlannedOrder]) -> tuple[list, list[int]]: ...

        async def _record_results(self, session: AsyncSession, *args: Any, **kwargs: Any) -> None: ...

        def _report_exposure(self) -> None: ...

        def _refresh_view(self) -> None: ...

    async def fast_exit(self, pair: str, side: str, candle: FormingCandle, time_ns: int) -> bool:
        """Close ``pair``'s ``side`` position now (``time_ns``: the decision's moment) because its fast
        exit holds on ``candle``; False when that position is no longer held (a close got there first)."""
        async with self._turn:
            held = self.trader.position(pair)
            if held is None or held["side"] != side or self.last_time <= _NO_CANDLE:
                return False
            if exit_pending(self.trader, pair):
                return False  # a close decided it goes at the next open (paper): gone from there
            try:
                if self.execution is None:
                    await self._fast_exit_paper(pair, held, candle, time_ns)
                else:
                    await self._fast_exit_exchange(pair, held, candle, time_ns)
            except BaseException:
                await self.restore()  # never let memory run ahead of the database
                raise
            self.view.last_signal = f"fast_exit {pair} @ {_utc(time_ns):%Y-%m-%d %H:%M:%S}"
            self._report_exposure()
            self._refresh_view()
            return True

    async def _fast_exit_paper(self, pair: str, held: dict, candle: FormingCandle, time_ns: int) -> None:
        sign = 1.0 if held["side"] == "long" else -1.0
        price = candle.close * (1.0 - sign * self.params.slippage)
        amount = float(held["amount"])
        n_trades = self.trader.state.n_trades
        fill = self.trader.apply_external_fill(
            pair,
            price=price,
            amount=amount,
            fee=amount * price * self.params.fee_taker,
            time=time_ns,
            reason="fast_exit",
        )
        cid = client_order_id(self.name, pair, fill.time, "fast_exit")

        async def write(session: AsyncSession) -> None:
            await self._fill(session, fill, cid=cid)
            await self._record_fast_exit(session, pair, held["side"], candle, price, time_ns)
            await self._store_closed(session, n_trades)
            await self._save_checkpoint(session, self.last_time)

        await self.committer.run(write, urgent=True)

    async def _fast_exit_exchange(self, pair: str, held: dict, candle: FormingCandle, time_ns: int) -> None:
        long = held["side"] == "long"
        amount = float(held["amount"])
        n_trades = self.trader.state.n_trades
        # Closed in the kernel at the stream's price (an inside exit); the exchange's fill reprices it.
        fill = self.trader.apply_external_fill(
            pair,
            price=candle.close,
            amount=amount,
            fee=amount * candle.close * self.params.fee_taker,
            time=time_ns,
            reason="fast_exit",
        )
        cid = client_order_id(self.name, pair, fill.time, "fast_exit")
        planned = PlannedOrder(
            cid,
            pair,
            "sell" if long else "buy",
            self.execution.round_exit(pair, amount),
            "fast_exit",
            trade=self.trader.state.n_trades - 1,
        )

        async def intent(session: AsyncSession) -> None:
            await self._save_exit_intent(session, fill, planned)
            await self._record_fast_exit(session, pair, held["side"], candle, candle.close, time_ns)

        await self.committer.run(intent, urgent=True)
        # _send_orders fills at its time + one step: the decision's moment here.
        results, repriced = await self._send_orders(time_ns - self.step_ns, [planned])

        async def answers(session: AsyncSession) -> None:
            await self._record_results(session, results, n_trades, repriced, checkpoint=self.last_time)

        await self.committer.run(answers)

    async def _store_closed(self, session: AsyncSession, n_trades: int) -> None:
        from engine.store import close_position, record_trade, trades_from_frame
        from engine.trading.state import trades_frame

        closed = trades_frame(self.trader.state, n_trades)
        for trade in trades_from_frame(closed):
            position = await close_position(session, self.bot_id, trade.pair, trade.close_time)
            await record_trade(session, self.bot_id, trade, position_id=position.id if position else None)

    async def _record_fast_exit(
        self, session: AsyncSession, pair: str, side: str, candle: FormingCandle, price: float, time_ns: int
    ) -> None:
        before = (candle.open_ns + self.step_ns - time_ns) / 1e9
        await record_event(
            session,
            EventCategory.TRADE,
            "fast_exit",
            f"{self.name} [{self.mode}] {pair}: fast exit of the {side} at {price:g}, "
            f"{before:.0f} s before the close of the candle opened at {_utc(candle.open_ns):%H:%M} "
            f"(fast_exit rule true on the trade stream: {candle.trades} trades, low {candle.low:g})",
            bot_id=self.bot_id,
            data={
                "pair": pair,
                "side": side,
                "price": price,
                "reason": "fast_exit",
                "mode": self.mode,
                "seconds_before_close": before,
                "forming": candle.describe(),
            },
            time=_utc(time_ns).to_pydatetime(),
        )
