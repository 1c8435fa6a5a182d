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
from datetime import datetime
from typing import Any

from nicegui import ui
from sqlalchemy import func, select

from engine.store.enums import EventCategory
from engine.store.models import Bot, BotCommand, EquitySnapshot, Event, Trade
from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.bot_chart import BotChart, load_bot_chart
from engine.web.portfolio import Rates, bot_currencies, realised_by_day
from engine.web.prices import bot_prices
from engine.web.profit import profit_chart
from engine.web.queries import (
    alerts_query,
    bot_by_ref,
    events_query,
    last_snapshot_times,
    trade_totals,
    trades_query,
)
from engine.web.ui._bot_cards import CommandWatch, allowed_actions, bot_path, request_bot_command, status_text
from engine.web.ui._bot_sentiment import sentiment_panel
from engine.web.ui._tables import data_table
from engine.web.ui.live_updates import follow_store, for_bot
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


SHARPE_MIN_TRADES = 30  # below this a Sharpe ratio says little: shown with a caveat


def performance(
    trades: Sequence[Sequence[Any]], equity: Sequence[tuple[Any, float]], currency: str | None = None
) -> dict[str, str]:
    """The backtest report's headline numbers on the bot's closed trades (rows of PERFORMANCE_COLUMNS)
    and its equity snapshots, amounts in ``currency``."""
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

    def num(x: float) -> str:
        return fmt.DASH if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"

    count = int(m["trades"])
    sharpe = num(m["sharpe"])
    if count < SHARPE_MIN_TRADES:
        sharpe = f"{sharpe} (only {count} trades: not meaningful yet)"
    return {
        "Equity": fmt.money(m["final_equity"], currency),
        "Return": fmt.percent(m["total_return"]),
        "Max drawdown": fmt.percent(-m["max_drawdown"]),
        "Sharpe": sharpe,
        "Trades": str(count),
        "Win rate": fmt.percent(m["win_rate"], signed=False),
        "Profit factor": num(m["profit_factor"]),
        "Fees": fmt.money(m["fees_paid"], currency),
    }


# ---- pages -------------------------------------------------------------------------------------


EVENT_COLUMNS = (("time", "Time (UTC)", True), ("kind", "Kind", False), ("message", "Message", True))
TRADE_COLUMNS = (
    ("pair", "Pair", True),
    ("side", "Side", False),
    ("opened", "Opened (UTC)", False),
    ("closed", "Closed (UTC)", True),
    ("open", "Entry", False),
    ("close", "Exit price", False),
    ("amount", "Amount", False),
    ("profit", "Profit", True),
    ("profit_pct", "Profit %", True),
    ("reason", "Exit", False),
)
BOT_COLUMNS = (
    ("name", "Bot", True),
    ("mode", "Mode", False),
    ("status", "Status", True),
    ("last", "Last candle (UTC)", False),
    ("trades", "Trades", False),
    ("profit", "Realised P&L", True),
)


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": fmt.when(event.time),
        "kind": f"{event.category}/{event.kind}",
        "message": event.message,
    }


def _trade_row(trade: Trade) -> dict[str, Any]:
    currency = fmt.quote_currency(trade.pair)
    return {
        "id": trade.id,
        "pair": trade.pair,
        "side": str(trade.side),
        "opened": fmt.when(trade.open_time),
        "closed": fmt.when(trade.close_time),
        "open": fmt.price(trade.open_price),
        "close": fmt.price(trade.close_price),
        "amount": fmt.amount(trade.amount),
        "profit": fmt.money(trade.profit_abs, currency, signed=True),
        "profit_pct": fmt.percent(trade.profit_ratio),
        "tone": fmt.tone(trade.profit_abs),
        "reason": trade.exit_reason,
    }


async def _bots_list(ctx: WebContext) -> None:
    async with ctx.sessions() as db:
        bots = list((await db.scalars(select(Bot).order_by(Bot.name))).all())
        totals = await trade_totals(db)
        last = await last_snapshot_times(db)
        currencies = await bot_currencies(db, await bot_prices(db))
    rows = []
    for bot in bots:
        total = totals.get(bot.id)
        profit = total.profit if total else 0
        rows.append(
            {
                "id": bot.id,
                "name": bot.name,
                "link": bot_path(bot.id),
                "mode": str(bot.mode),
                "status": status_text(bot).split(" · ")[0],
                "last": fmt.when(last.get(bot.id)),
                "trades": str(total.trades if total else 0),
                "profit": fmt.money(profit, currencies.get(bot.id), signed=True),
                "tone": fmt.tone(profit),
            }
        )
    table = data_table(
        BOT_COLUMNS, rows, empty="No bots yet.", toned={"profit": "tone"}, right=("trades", "profit")
    ).mark("bots")
    # The name as the link's text (Vue escapes interpolated text).
    table.add_slot(
        "body-cell-name",
        '<q-td :props="props"><a :href="props.row.link" class="text-primary">{{ props.value }}</a></q-td>',
    )


async def _bot_detail(ctx: WebContext, bot: Bot, can_control: bool) -> None:
    # The page goes to the browser first: the chart (candles, indicators) may take longer than
    # NiceGUI's response timeout on a busy machine; the rest follows over the socket.
    await ui.context.client.connected()
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
        currency = (await bot_currencies(db, await bot_prices(db, [bot.id]))).get(bot.id)
    bot_id, config_path, name = bot.id, bot.config_path, bot.name
    last_candle = equity_rows[-1][0] if equity_rows else None
    watch = CommandWatch()
    built: list[Any] = []  # the refresh, once the page is whole

    with ui.row().classes("items-center gap-x-6 gap-y-2"):
        status_label = ui.label(status_text(bot)).classes("text-subtitle1").mark("bot-status")
        if bot.account:
            ui.label(f"Account: {bot.account}")
        buttons: dict[str, Any] = {}

        async def command(action: str) -> None:
            row = await request_bot_command(ctx, bot_id, action)
            if row is not None:
                watch.add(row, name)
                if built:  # else the page's timer, once it exists, shows it
                    await built[0]()

        if can_control:
            buttons["start"] = ui.button("Start", on_click=lambda: command("start")).props("dense")
            buttons["stop"] = ui.button("Stop", on_click=lambda: command("stop")).props(
                "dense color=negative"
            )
        pending_box = ui.row()

    def show_state(status: str, commands: list[BotCommand]) -> None:
        pending_box.clear()
        with pending_box:
            for item in commands:
                ui.label(f"Pending: {item.command} (requested {fmt.when(item.requested_at)} UTC)").classes(
                    "text-warning"
                )
        actions = allowed_actions(status, bool(commands))
        for action, button in buttons.items():
            button.set_enabled(action in actions)

    show_state(bot.status, pending)
    error_label = ui.label(f"Last error: {bot.last_error}" if bot.last_error else "").classes("text-negative")

    ui.label("Chart").classes("text-h6")
    pair_row = ui.row()
    chart_box = ui.column().classes("w-full")

    panel_box = ui.column().classes("w-full")
    # What the chart shows; a candle close of the bot (its equity snapshot) extends it in place.
    shown: dict[str, Any] = {"pair": None, "until": last_candle, "trades": trades, "chart": None}

    async def show_chart(pair: str | None) -> BotChart:
        result = await asyncio.to_thread(
            load_bot_chart, config_path, ctx.bots_dir, pair, shown["trades"], ctx.data_dir, shown["until"]
        )
        shown["pair"] = pair
        chart = shown["chart"]
        if chart is not None and result.options is not None and not result.note:
            # The same chart with more candles and markers: no flicker, the zoom stays where it was.
            chart.options.clear()
            chart.options.update(result.options)
            chart.update()
        else:
            chart_box.clear()
            shown["chart"] = None
            with chart_box:
                if result.options is not None:
                    shown["chart"] = (
                        ui.echart(result.options)
                        .classes("w-full")
                        .style("height: min(480px, 70vh)")
                        .mark("bot-chart")
                    )
                if result.note:
                    ui.label(result.note).classes("text-grey-8").mark("chart-note")
        # The coin's news sentiment under the chart (engine.web.ui._bot_sentiment), updated in place.
        await sentiment_panel(ctx, panel_box, pair or (result.pairs or ("",))[0], result.options)
        return result

    async def extend_chart(newest: datetime | None, new_trades: list[Trade]) -> None:
        """A candle closed or a trade was made since the chart was drawn: draw it up to now."""
        later = newest is not None and (shown["until"] is None or newest > shown["until"])
        if not (later or new_trades):
            return
        if new_trades:
            shown["trades"] = (new_trades + list(shown["trades"]))[:TRADE_ROWS]
        if later:
            shown["until"] = newest
        await show_chart(shown["pair"])

    first = await show_chart(None)
    if len(first.pairs) > 1:

        async def switch(event: Any) -> None:
            if await action_user(ctx, "read") is None:
                return
            await show_chart(event.value)

        with pair_row:
            ui.select(list(first.pairs), value=first.pairs[0], label="Pair", on_change=switch).classes("w-48")

    ui.label("Performance").classes("text-h6")
    numbers = await asyncio.to_thread(
        performance, all_trades, [(t, float(e)) for t, e in equity_rows], currency
    )
    if numbers:
        with (
            ui.element("div")
            .classes("w-full grid grid-cols-2 sm:grid-cols-4 gap-x-6 gap-y-3")
            .mark("performance")
        ):
            for key, value in numbers.items():
                with ui.column().classes("gap-0 min-w-0"):
                    ui.label(key).classes("text-caption text-grey-7")
                    ui.label(value).classes("text-subtitle1 break-words")
    else:
        ui.label("No equity recorded yet.").classes("text-grey-7")

    if currency is not None and all_trades:
        async with ctx.sessions() as db:
            days, _ = await realised_by_day(db, currency, Rates({}, {}), bot_id=bot_id)
        ui.echart(profit_chart(days, currency)).classes("w-full h-64").mark("profit-chart")

    ui.label(f"Trades (latest {TRADE_ROWS})").classes("text-h6")
    trades_table = data_table(
        TRADE_COLUMNS,
        [_trade_row(t) for t in trades],
        empty="No closed trades yet.",
        toned={"profit": "tone", "profit_pct": "tone"},
        right=("open", "close", "amount", "profit", "profit_pct"),
    ).mark("trades")

    with ui.element("div").classes("w-full grid grid-cols-1 lg:grid-cols-2 gap-4"):
        with ui.column().classes("w-full min-w-0"):
            ui.label("Reloads").classes("text-h6")
            data_table(EVENT_COLUMNS, [_event_row(e) for e in reloads], empty="No reloads yet.").mark(
                "reloads"
            )
        with ui.column().classes("w-full min-w-0"):
            ui.label("Errors and alerts").classes("text-h6")
            alerts_table = data_table(
                EVENT_COLUMNS, [_event_row(e) for e in problems], empty="No errors or alerts."
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
            follow.stop()
            ui.navigate.to("/login")
            return
        async with ctx.sessions() as db:
            fresh = await db.get(Bot, bot_id)
            commands = await ctx.control.pending(db, bot_id)
            new_trades = list((await db.scalars(trades_query(bot_id=bot_id, after_id=seen["trade"]))).all())
            new_alerts = list((await db.scalars(alerts_query(bot_id=bot_id, after_id=seen["alert"]))).all())
            newest = await db.scalar(
                select(func.max(EquitySnapshot.time)).where(EquitySnapshot.bot_id == bot_id)
            )
            outcomes = await watch.check(db)
        if fresh is None:
            return
        await extend_chart(newest, new_trades)
        status_label.set_text(status_text(fresh))
        error_label.set_text(f"Last error: {fresh.last_error}" if fresh.last_error else "")
        show_state(fresh.status, commands)
        for table, rows, key, to_row in (
            (trades_table, new_trades, "trade", _trade_row),
            (alerts_table, new_alerts, "alert", _event_row),
        ):
            if rows:
                seen[key] = max(seen[key], *(r.id for r in rows))
                table.rows = ([to_row(r) for r in rows] + list(table.rows))[:TRADE_ROWS]
                table.update()
        for message, failed in outcomes:
            ui.notify(message, type="negative" if failed else "positive")

    # Re-read when this bot's events, trades or candle closes are committed, not on a timer.
    # (refresh checks the session itself: the buttons call it too)
    follow = await follow_store(ctx, tick, concerns=for_bot(bot_id), check_session=False)
    built.append(tick)  # the buttons may be clicked before the page is whole (it is sent first)

    ui.label("Configuration").classes("text-h6")
    for line in first.config_errors:
        ui.label(line).classes("text-negative font-mono")
    if first.config_text is None:
        ui.label("The bot's file is not available.")
    elif "```" in first.config_text:
        # ui.code renders through a Markdown fence that such text could close: show it as plain text.
        ui.label(first.config_text).classes("font-mono whitespace-pre overflow-x-auto w-full")
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
