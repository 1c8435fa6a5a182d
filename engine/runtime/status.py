"""The status table: from a running engine's memory (the live dashboard) or from the database
(``engine status``, while another process runs)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.runtime.bot import BotView

__all__ = ["render_status", "views_from_db"]


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
    """One view per bot in the database: its positions, P&L since the start of the UTC day of its last
    equity snapshot, last order decided and last error."""
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
                day = pd.Timestamp(last.time).normalize()
                first = (
                    await session.execute(
                        select(EquitySnapshot.equity)
                        .where(EquitySnapshot.bot_id == bot.id, EquitySnapshot.time <= day.to_pydatetime())
                        .order_by(EquitySnapshot.time.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if first is None:
                    first = (
                        await session.execute(
                            select(EquitySnapshot.equity)
                            .where(EquitySnapshot.bot_id == bot.id)
                            .order_by(EquitySnapshot.time)
                            .limit(1)
                        )
                    ).scalar_one()
                view.day_start_equity = first
                view.last_candle = pd.Timestamp(last.time)
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
