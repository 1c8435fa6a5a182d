"""``/bots``: every bot with a link; ``/bot/{id or name}``: one bot's candles with the strategy's
indicators and its trades marked (:mod:`engine.web.bot_chart`, in a worker thread), its trades,
performance, configuration, reloads and errors.

Candles come from the engine's candle store (``$ENGINE_HOME/data``, :func:`engine.data.open_source`)
for the bot's exchange, pair and strategy timeframe; the strategy is compiled from the bot's file
(``bots.config_path``) with :func:`engine.config.load_bot`. The detail page is ``/bot/...``, singular:
``/bots/{id}`` is the REST API's route, registered before the pages.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from nicegui import ui
from sqlalchemy import select

from engine.store.enums import EventCategory
from engine.store.models import Bot, BotCommand, EquitySnapshot, Event, Trade
from engine.web.api.context import WebContext
from engine.web.bot_chart import BotChart, load_bot_chart
from engine.web.queries import (
    alerts_query,
    bot_by_ref,
    events_query,
    last_snapshot_times,
    trade_totals,
    trades_query,
)
from engine.web.ui.dashboard import REFRESH_SECONDS, bot_path, columns, money, request_bot_command, when
from engine.web.ui.shell import action_user, allowed, browser_id, current_user, frame, page_user

__all__ = ["performance", "register"]

TRADE_ROWS = 200
PERFORMANCE_COLUMNS = (
    Trade.pair,
    Trade.open_time,
    Trade.close_time,
    Trade.profit_abs,
    Trade.profit_ratio,
    Trade.fees,
)


# ---- performance -------------------------------------------------------------------------------


def performance(trades: Sequence[Sequence[Any]], equity: Sequence[tuple[Any, float]]) -> dict[str, str]:
    """The backtest report's headline numbers on the bot's closed trades (rows of PERFORMANCE_COLUMNS)
    and its equity snapshots."""
    import pandas as pd

    from engine.backtest.metrics import compute_metrics

    if not equity:
        return {}
    frame = pd.DataFrame([tuple(row) for row in trades], columns=[c.key for c in PERFORMANCE_COLUMNS])
    for column in ("open_time", "close_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("profit_abs", "profit_ratio", "fees"):
        frame[column] = frame[column].astype("float64")
    curve = pd.Series(
        [e for _, e in equity], index=pd.DatetimeIndex(pd.to_datetime([t for t, _ in equity], utc=True))
    )
    m = compute_metrics(frame, curve, float(curve.iloc[0]))

    def pct(x: float) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.2%}"

    def num(x: float) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"

    return {
        "Equity": money(m["final_equity"]),
        "Return": pct(m["total_return"]),
        "Max drawdown": pct(-m["max_drawdown"]),
        "Sharpe": num(m["sharpe"]),
        "Trades": str(m["trades"]),
        "Win rate": pct(m["win_rate"]).lstrip("+"),
        "Profit factor": num(m["profit_factor"]),
        "Fees": money(m["fees_paid"]),
    }


# ---- pages -------------------------------------------------------------------------------------


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": when(event.time),
        "kind": f"{event.category}/{event.kind}",
        "message": event.message,
    }


def _trade_row(trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.id,
        "pair": trade.pair,
        "side": str(trade.side),
        "opened": when(trade.open_time),
        "closed": when(trade.close_time),
        "open": money(trade.open_price),
        "close": money(trade.close_price),
        "amount": money(trade.amount),
        "profit": money(trade.profit_abs, signed=True),
        "ratio": f"{trade.profit_ratio:+.2%}",
        "reason": trade.exit_reason,
    }


async def _bots_list(ctx: WebContext) -> None:
    async with ctx.sessions() as db:
        bots = list((await db.scalars(select(Bot).order_by(Bot.name))).all())
        totals = await trade_totals(db)
        last = await last_snapshot_times(db)
    if not bots:
        ui.label("No bots yet.")
        return
    with ui.grid(columns=6).classes("gap-x-6 gap-y-1 items-center"):
        for head in ("Bot", "Mode", "Status", "Last candle", "Trades", "Profit"):
            ui.label(head).classes("font-bold")
        for bot in bots:
            total = totals.get(bot.id)
            ui.link(bot.name, bot_path(bot.id))  # the name as text
            ui.label(str(bot.mode))
            ui.label(str(bot.status))
            ui.label(when(last.get(bot.id)))
            ui.label(str(total.trades if total else 0))
            ui.label(money(total.profit if total else 0, signed=True))


async def _bot_detail(ctx: WebContext, bot: Bot, can_control: bool) -> None:
    async with ctx.sessions() as db:
        trades = list((await db.scalars(trades_query(bot_id=bot.id).limit(TRADE_ROWS))).all())
        all_trades = (
            await db.execute(select(*PERFORMANCE_COLUMNS).where(Trade.bot_id == bot.id).order_by(Trade.id))
        ).all()
        equity_rows = (
            await db.execute(
                select(EquitySnapshot.time, EquitySnapshot.equity)
                .where(EquitySnapshot.bot_id == bot.id)
                .order_by(EquitySnapshot.time, EquitySnapshot.id)
            )
        ).all()
        pending = await ctx.control.pending(db, bot.id)
        reloads = list(
            (await db.scalars(events_query(bot_id=bot.id, category=EventCategory.RELOAD).limit(50))).all()
        )
        problems = list((await db.scalars(alerts_query(bot_id=bot.id).limit(50))).all())
    bot_id, config_path = bot.id, bot.config_path

    with ui.row().classes("items-center gap-6"):
        status_label = ui.label(f"{bot.status} ({bot.mode})").classes("text-subtitle1")
        if bot.account:
            ui.label(f"Account: {bot.account}")
        pending_box = ui.row()

        def show_pending(commands: list[BotCommand]) -> None:
            pending_box.clear()
            with pending_box:
                for command in commands:
                    ui.label(f"Pending: {command.command} (requested {when(command.requested_at)})").classes(
                        "text-warning"
                    )

        show_pending(pending)

        async def command(name: str) -> None:
            if await request_bot_command(ctx, bot_id, name) is not None:
                await tick()

        if can_control:
            ui.button("Start", on_click=lambda: command("start")).props("dense")
            ui.button("Stop", on_click=lambda: command("stop")).props("dense color=negative")
    error_label = ui.label(f"Last error: {bot.last_error}" if bot.last_error else "").classes("text-negative")

    ui.label("Chart").classes("text-h6")
    pair_row = ui.row()
    chart_box = ui.column().classes("w-full")

    async def show_chart(pair: str | None) -> BotChart:
        result = await asyncio.to_thread(load_bot_chart, config_path, ctx.bots_dir, pair, trades)
        chart_box.clear()
        with chart_box:
            if result.options is not None:
                ui.echart(result.options).classes("w-full").style("height: 480px")
            if result.note:
                ui.label(result.note).classes("text-italic")
        return result

    first = await show_chart(None)
    if len(first.pairs) > 1:

        async def switch(event: Any) -> None:
            if await action_user(ctx, "read") is None:
                return
            await show_chart(event.value)

        with pair_row:
            ui.select(list(first.pairs), value=first.pairs[0], label="Pair", on_change=switch).classes("w-48")

    ui.label("Performance").classes("text-h6")
    numbers = await asyncio.to_thread(performance, all_trades, [(t, float(e)) for t, e in equity_rows])
    if numbers:
        with ui.grid(columns=8).classes("gap-x-6"):
            for key in numbers:
                ui.label(key).classes("text-caption")
            for value in numbers.values():
                ui.label(value).classes("text-subtitle1")
    else:
        ui.label("No equity recorded yet.")

    ui.label(f"Trades (latest {TRADE_ROWS})").classes("text-h6")
    trades_table = ui.table(
        columns=columns(
            "pair", "side", "opened", "closed", "open", "close", "amount", "profit", "ratio", "reason"
        ),
        rows=[_trade_row(t) for t in trades],
        row_key="id",
    ).classes("w-full")

    with ui.row().classes("w-full no-wrap gap-4"):
        with ui.column().classes("w-1/2"):
            ui.label("Reloads").classes("text-h6")
            ui.table(
                columns=columns("time", "kind", "message"),
                rows=[_event_row(e) for e in reloads],
                row_key="id",
            ).mark("reloads")
        with ui.column().classes("w-1/2"):
            ui.label("Errors and alerts").classes("text-h6")
            alerts_table = ui.table(
                columns=columns("time", "kind", "message"),
                rows=[_event_row(e) for e in problems],
                row_key="id",
            ).mark("alerts")

    seen = {
        "trade": max((t.id for t in trades), default=0),
        "alert": max((e.id for e in problems), default=0),
    }
    browser = browser_id()

    lock = asyncio.Lock()  # the timer and a button's handler both tick: one at a time

    async def tick() -> None:
        async with lock:
            await refresh()

    async def refresh() -> None:
        """Status, pending commands, new trades and alerts, without a reload (the chart stays)."""
        if await current_user(ctx, browser) is None:  # signed out or revoked meanwhile: no more data
            timer.cancel()
            ui.navigate.to("/login")
            return
        async with ctx.sessions() as db:
            fresh = await db.get(Bot, bot_id)
            commands = await ctx.control.pending(db, bot_id)
            new_trades = list((await db.scalars(trades_query(bot_id=bot_id, after_id=seen["trade"]))).all())
            new_alerts = list((await db.scalars(alerts_query(bot_id=bot_id, after_id=seen["alert"]))).all())
        if fresh is None:
            return
        status_label.set_text(f"{fresh.status} ({fresh.mode})")
        error_label.set_text(f"Last error: {fresh.last_error}" if fresh.last_error else "")
        show_pending(commands)
        for table, rows, key, to_row in (
            (trades_table, new_trades, "trade", _trade_row),
            (alerts_table, new_alerts, "alert", _event_row),
        ):
            if rows:
                seen[key] = max(seen[key], *(r.id for r in rows))
                table.rows = ([to_row(r) for r in rows] + list(table.rows))[:TRADE_ROWS]
                table.update()

    timer = ui.timer(REFRESH_SECONDS, tick, immediate=False)

    ui.label("Configuration").classes("text-h6")
    for line in first.config_errors:
        ui.label(line).classes("text-negative font-mono")
    if first.config_text is None:
        ui.label("The bot's file is not available.")
    elif "```" in first.config_text:
        # ui.code renders through a Markdown fence that such text could close: show it as plain text.
        ui.label(first.config_text).classes("font-mono whitespace-pre")
    else:
        ui.code(first.config_text, language="yaml").classes("w-full")


def register(ctx: WebContext) -> None:
    @ui.page("/bots")
    async def bots_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Bots"):
            await _bots_list(ctx)

    @ui.page("/bot/{ref}")
    async def bot_page(ref: str) -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        async with ctx.sessions() as db:
            bot = await bot_by_ref(db, ref)
        with frame(user, f"Bot {bot.name}" if bot else "Bot not found"):
            if bot is None:
                ui.label(f"No bot with id or name {ref!r}.")
                ui.link("All bots", "/bots")
                return
            await _bot_detail(ctx, bot, allowed(user, "bots:control"))
