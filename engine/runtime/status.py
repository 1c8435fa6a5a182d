"""The status table: from a running engine's memory (the live dashboard) or from the database
(``engine status``, while another process runs).

One definition of **P&L today** serves both: a bot's equity now minus its equity at the start of the
UTC day, that is the last equity snapshot *before* 00:00 UTC of the day of its newest snapshot (a
snapshot is stamped with its candle's open time and holds the equity at that candle's close), or the
day's first snapshot when the bot has none before. "Today" is the day of the bot's newest candle, so a
replay shows its market day. :class:`DayStart` follows it candle by candle in the runtime;
:func:`day_start_equity` reads it from the database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.runtime.bot import BotView

__all__ = ["DayStart", "day_start_equity", "render_status", "views_from_db"]


@dataclass
class DayStart:
    """A bot's equity at the start of its current UTC day, kept up to date from its committed candles."""

    day: pd.Timestamp | None = None
    start_equity: float = math.nan
    last_equity: float | None = None  # the newest snapshot's equity

    def observe(self, time: pd.Timestamp, equity: float) -> None:
        """The snapshot of the candle opened at ``time`` (UTC) holds ``equity``."""
        day = time.normalize()
        if self.day is None or day > self.day:
            self.day = day
            self.start_equity = equity if self.last_equity is None else self.last_equity
        self.last_equity = equity

    @classmethod
    async def from_db(cls, session: AsyncSession, bot_id: int) -> DayStart:
        """The state after the bot's stored snapshots (a restarted bot goes on where it was)."""
        from engine.store.models import EquitySnapshot

        last = (
            await session.execute(
                select(EquitySnapshot.time, EquitySnapshot.equity)
                .where(EquitySnapshot.bot_id == bot_id)
                .order_by(EquitySnapshot.time.desc(), EquitySnapshot.id.desc())
                .limit(1)
            )
        ).first()
        if last is None:
            return cls()
        day = _utc(last.time).normalize()
        start = await day_start_equity(session, bot_id, day)
        return cls(day=day, start_equity=math.nan if start is None else start, last_equity=last.equity)


def _utc(time: datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(time)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


async def day_start_equity(session: AsyncSession, bot_id: int, day: pd.Timestamp) -> float | None:
    """The bot's equity at 00:00 UTC of ``day``: its last snapshot before then, else the day's first one."""
    from engine.store import equity_before
    from engine.store.models import EquitySnapshot

    start = day.to_pydatetime()
    before = await equity_before(session, bot_id, start)
    if before is not None:
        return before
    return (
        await session.execute(
            select(EquitySnapshot.equity)
            .where(EquitySnapshot.bot_id == bot_id, EquitySnapshot.time >= start)
            .order_by(EquitySnapshot.time, EquitySnapshot.id)
            .limit(1)
        )
    ).scalar_one_or_none()


def render_status(views: Sequence[BotView], *, title: str = "engine", notes: Sequence[str] = ()) -> Table:
    table = Table(title=title, caption="\n".join(notes) or None, expand=False)
    for column in (
        "bot",
        "mode",
        "status",
        "last candle",
        "open positions",
        "P&L today",
        "last signal",
        "errors",
    ):
        table.add_column(column, justify="right" if column in ("P&L today",) else "left")
    for v in views:
        pnl = v.equity - v.day_start_equity
        pnl_text = "" if math.isnan(pnl) else f"{pnl:+.6g}"
        error = f"{v.errors}: {v.last_error}" if v.errors else v.last_error
        status = f"[red]{v.status}[/red]" if v.status in ("error", "retrying") else v.status
        table.add_row(
            v.name,
            v.mode,
            status,
            "" if v.last_candle is None else f"{v.last_candle:%Y-%m-%d %H:%M}",
            "\n".join(f"{pair}: {text}" for pair, text in v.positions.items()) or "-",
            pnl_text,
            v.last_signal,
            error[:120],
        )
    return table


async def views_from_db(factory: async_sessionmaker[AsyncSession]) -> list[BotView]:
    """One view per bot in the database: its positions, P&L today (see the module docstring), last
    order decided and last error."""
    from engine.store import EventCategory, list_bots, list_open_positions
    from engine.store.models import EquitySnapshot, Event, Order

    views: list[BotView] = []
    async with factory() as session:
        for bot in await list_bots(session):
            view = BotView(bot.name, str(bot.mode.value), status=str(bot.status.value))
            view.last_error = bot.last_error or ""
            for position in await list_open_positions(session, bot.id):
                view.positions[position.pair] = (
                    f"{position.side.value} {float(position.amount):.6g} @ {float(position.entry_price):.6g}"
                )
            last = (
                await session.execute(
                    select(EquitySnapshot)
                    .where(EquitySnapshot.bot_id == bot.id)
                    .order_by(EquitySnapshot.time.desc(), EquitySnapshot.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if last is not None:
                view.equity = last.equity
                day = _utc(last.time).normalize()
                start = await day_start_equity(session, bot.id, day)
                view.day_start_equity = math.nan if start is None else start
                view.day = day
                view.last_candle = _utc(last.time)
            order = (
                await session.execute(
                    select(Order).where(Order.bot_id == bot.id).order_by(Order.id.desc()).limit(1)
                )
            ).scalar_one_or_none()
            if order is not None and order.signal_time is not None:
                view.last_signal = (
                    f"{order.reason} {order.pair} @ {pd.Timestamp(order.signal_time):%Y-%m-%d %H:%M}"
                )
            view.errors = (
                await session.execute(
                    select(func.count())
                    .select_from(Event)
                    .where(Event.bot_id == bot.id, Event.category == EventCategory.ERROR)
                )
            ).scalar_one()
            views.append(view)
    return views
