"""The dashboard at ``/``: portfolio equity and drawdown, P&L, a card per bot (start/stop for traders),
open positions, the newest closed trades and the alerts, kept current by a timer without a reload.

The timer reads only what is new (rows with an id above the last one seen) for trades, alerts and
equity; the bot cards and the open positions are small and are re-read whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from nicegui import ui
from sqlalchemy import select

from engine.store.models import Bot, BotCommand, Event, Position, Trade
from engine.web.api.context import WebContext
from engine.web.auth.accounts import audit
from engine.web.queries import (
    Point,
    alerts_query,
    downsample,
    drawdown,
    equity_before,
    equity_by_bot,
    first_equity_by_bot,
    last_snapshot_times,
    pending_by_bot,
    pnl_summary,
    portfolio_pnl,
    positions_query,
    total_equity,
    trades_query,
)
from engine.web.ui.shell import (
    action_user,
    allowed,
    browser_id,
    client_address,
    current_user,
    frame,
    page_user,
)

__all__ = ["REFRESH_SECONDS", "bot_path", "register", "request_bot_command"]

REFRESH_SECONDS = 3.0
EQUITY_DAYS = 30
FEED_LENGTH = 20


def bot_path(bot_id: int) -> str:
    """The bot page. Not ``/bots/{id}``: that path is the REST API's (registered first, it would answer)."""
    return f"/bot/{bot_id}"


def money(value: float | Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{float(value):{'+' if signed else ''}.6g}"


def when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def line_chart(title: str, points: list[Point], *, percent: bool = False, color: str = "#2563eb") -> dict:
    """ECharts options for one time series."""
    data = [[t.isoformat(), round(v * 100, 4) if percent else v] for t, v in downsample(points)]
    return {
        "title": {"text": title, "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True, "name": "%" if percent else ""},
        "series": [
            {
                "type": "line",
                "name": title,
                "showSymbol": False,
                "data": data,
                "lineStyle": {"color": color},
                **({"areaStyle": {"color": color, "opacity": 0.2}} if percent else {}),
            }
        ],
    }


def trade_row(trade: Trade, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": trade.id,
        "bot": names.get(trade.bot_id, str(trade.bot_id)),
        "pair": trade.pair,
        "side": str(trade.side),
        "closed": when(trade.close_time),
        "profit": money(trade.profit_abs, signed=True),
        "ratio": f"{trade.profit_ratio:+.2%}",
        "reason": trade.exit_reason,
    }


def position_row(position: Position, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": position.id,
        "bot": names.get(position.bot_id, str(position.bot_id)),
        "pair": position.pair,
        "side": str(position.side),
        "amount": money(position.amount),
        "entry": money(position.entry_price),
        "stop": money(position.stop),
        "opened": when(position.opened_at),
    }


def alert_row(event: Event, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": when(event.time),
        "bot": names.get(event.bot_id, "") if event.bot_id is not None else "",
        "kind": f"{event.category}/{event.kind}",
        "message": event.message,
    }


def columns(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "label": n.capitalize(), "field": n, "align": "left"} for n in names]


async def request_bot_command(ctx: WebContext, bot_id: int, command: str) -> BotCommand | None:
    """The start/stop handler: checks the session and ``bots:control`` first (it runs over the socket,
    later than the page was built), then queues the command for the runtime and audits it."""
    user = await action_user(ctx, "bots:control")
    if user is None:
        return None
    async with ctx.sessions() as db, db.begin():
        bot = await db.get(Bot, bot_id)
        if bot is None:
            ui.notify("this bot no longer exists", type="negative")
            return None
        row = await ctx.control.request(db, bot_id, command, user_id=user.id)
        await audit(db, f"bot.{command}", user_id=user.id, target=f"bot:{bot_id}", address=client_address())
        name = bot.name
    ui.notify(f"{command} requested for {name}")
    return row


@dataclass
class _Dashboard:
    """One open dashboard: its elements and what it has read so far."""

    ctx: WebContext
    can_control: bool
    series: dict[int, list[Point]] = field(default_factory=dict)
    last_snapshot: int = 0
    last_trade: int = 0
    last_alert: int = 0
    names: dict[int, str] = field(default_factory=dict)
    shown_cards: list[tuple[Any, ...]] | None = None
    first: dict[int, float] = field(default_factory=dict)
    elements: dict[str, Any] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def build(self) -> None:
        with ui.row().classes("gap-8"):
            for key, label in (("today", "P&L today"), ("week", "P&L this week"), ("all", "P&L all time")):
                with ui.column().classes("gap-0"):
                    ui.label(label).classes("text-caption")
                    self.elements[key] = ui.label("-").classes("text-h6")
            with ui.column().classes("gap-0"):
                ui.label("Equity").classes("text-caption")
                self.elements["equity"] = ui.label("-").classes("text-h6")
        self.elements["as_of"] = ui.label("").classes("text-caption")
        with ui.row().classes("w-full no-wrap"):
            self.elements["equity_chart"] = ui.echart(line_chart("Total equity", [])).classes("w-1/2 h-64")
            self.elements["drawdown_chart"] = ui.echart(
                line_chart("Drawdown", [], percent=True, color="#dc2626")
            ).classes("w-1/2 h-64")
        ui.label("Bots").classes("text-h6")
        self.elements["cards"] = ui.row().classes("gap-4")
        ui.label("Open positions").classes("text-h6")
        self.elements["positions"] = ui.table(
            columns=columns("bot", "pair", "side", "amount", "entry", "stop", "opened"), rows=[], row_key="id"
        ).classes("w-full")
        with ui.row().classes("w-full no-wrap gap-4"):
            with ui.column().classes("w-1/2"):
                ui.label("Latest trades").classes("text-h6")
                self.elements["trades"] = ui.table(
                    columns=columns("bot", "pair", "side", "closed", "profit", "ratio", "reason"),
                    rows=[],
                    row_key="id",
                ).classes("w-full")
            with ui.column().classes("w-1/2"):
                ui.label("Alerts").classes("text-h6")
                self.elements["alerts"] = ui.table(
                    columns=columns("time", "bot", "kind", "message"), rows=[], row_key="id"
                ).classes("w-full")
        await self.refresh()

    async def refresh(self) -> None:
        # The timer and a button's handler may both refresh: one at a time, or both would add the
        # same new rows.
        async with self.lock:
            await self._refresh()

    async def _refresh(self) -> None:
        async with self.ctx.sessions() as db:
            bots = list((await db.scalars(select(Bot).order_by(Bot.name))).all())
            self.names = {bot.id: bot.name for bot in bots}
            last_candles = await last_snapshot_times(db)
            since = None
            carried: dict[int, float] = {}
            if self.last_snapshot == 0 and last_candles:
                # First read: the recent window only (a year of 5m candles is 100k rows per bot),
                # each bot starting from its last value before the window (an idle bot still counts).
                since = max(last_candles.values()) - timedelta(days=EQUITY_DAYS)
                self.first = await first_equity_by_bot(db)
                carried = await equity_before(db, since)
            new_series, self.last_snapshot = await equity_by_bot(db, after_id=self.last_snapshot, since=since)
            pending = await pending_by_bot(db)
            positions = list((await db.scalars(positions_query())).all())
            trades = list((await db.scalars(trades_query(after_id=self.last_trade).limit(FEED_LENGTH))).all())
            alerts = list((await db.scalars(alerts_query(after_id=self.last_alert).limit(FEED_LENGTH))).all())
        for owner, equity in carried.items():
            new_series.setdefault(owner, []).insert(0, (since, equity))
        if new_series or not self.series:
            for owner, points in new_series.items():
                self.series.setdefault(owner, []).extend(points)
                self.series[owner].sort(key=lambda p: p[0])
            self._trim()
            self._show_equity()
        self._show_cards(bots, pending, last_candles, positions)
        self.elements["positions"].rows = [position_row(p, self.names) for p in positions]
        self.elements["positions"].update()
        self._prepend("trades", [trade_row(t, self.names) for t in trades])
        self._prepend("alerts", [alert_row(e, self.names) for e in alerts])
        if trades:
            self.last_trade = max(self.last_trade, *(t.id for t in trades))
        if alerts:
            self.last_alert = max(self.last_alert, *(e.id for e in alerts))

    def _trim(self) -> None:
        """Keep the window: points older than EQUITY_DAYS before the latest go, except each bot's
        last one before the cut, which carries its value (memory stays bounded while the page is open)."""
        ends = [points[-1][0] for points in self.series.values() if points]
        if not ends:
            return
        cut = max(ends) - timedelta(days=EQUITY_DAYS)
        for owner, points in self.series.items():
            old = sum(1 for t, _ in points if t < cut)
            if old > 1:
                self.series[owner] = points[old - 1 :]

    def _prepend(self, key: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table = self.elements[key]
        table.rows = (rows + list(table.rows))[:FEED_LENGTH]
        table.update()

    def _show_equity(self) -> None:
        curve = total_equity(self.series)
        pnl = portfolio_pnl(self.series, self.first)
        self.elements["today"].set_text(money(pnl.today, signed=True))
        self.elements["week"].set_text(money(pnl.week, signed=True))
        self.elements["all"].set_text(money(pnl.all_time, signed=True))
        self.elements["equity"].set_text(money(curve[-1][1]) if curve else "-")
        self.elements["as_of"].set_text(
            f"as of the last candle, {when(pnl.as_of)} UTC; charts: the last {EQUITY_DAYS} days"
            if pnl.as_of
            else "no equity recorded yet"
        )
        chart = self.elements["equity_chart"]
        chart.options.update(line_chart("Total equity", curve))
        chart.update()
        chart = self.elements["drawdown_chart"]
        chart.options.update(line_chart("Drawdown", drawdown(curve), percent=True, color="#dc2626"))
        chart.update()

    def _show_cards(
        self,
        bots: list[Bot],
        pending: dict[int, list[BotCommand]],
        last_candles: dict[int, datetime],
        positions: list[Position],
    ) -> None:
        # "Today" is the portfolio's day (of its latest candle) for every card: a bot that stopped
        # yesterday made nothing today.
        ends = [points[-1][0] for points in self.series.values() if points]
        now = max(ends) if ends else None
        cards = [
            (
                bot,
                pending.get(bot.id, []),
                last_candles.get(bot.id),
                sum(1 for p in positions if p.bot_id == bot.id),
                pnl_summary(self.series.get(bot.id, []), now).today,
            )
            for bot in bots
        ]
        # Rebuild only on a change: the buttons stay put under the user's pointer between ticks.
        shown = [
            (b.id, b.name, b.status, b.mode, b.last_error, [c.id for c in p], last, n, today)
            for b, p, last, n, today in cards
        ]
        if shown == self.shown_cards:
            return
        self.shown_cards = shown
        container = self.elements["cards"]
        container.clear()
        with container:
            if not bots:
                ui.label("No bots yet.")
            for card in cards:
                self._card(*card)

    def _card(
        self,
        bot: Bot,
        pending: list[BotCommand],
        last_candle: datetime | None,
        open_count: int,
        today: float | None,
    ) -> None:
        with ui.card().classes("w-72").mark(f"bot-{bot.id}"):
            ui.link(bot.name, bot_path(bot.id)).classes("text-subtitle1 font-bold")  # text, not HTML
            ui.label(f"{bot.status} ({bot.mode})")
            ui.label(f"Open positions: {open_count}")
            ui.label(f"P&L today: {money(today, signed=True)}")
            ui.label(f"Last candle: {when(last_candle)}")
            if bot.last_error:
                ui.label(f"Error: {bot.last_error}").classes("text-negative")
            for command in pending:
                ui.label(f"Pending: {command.command} (requested {when(command.requested_at)})").classes(
                    "text-warning"
                )
            if self.can_control:
                with ui.row():
                    ui.button("Start", on_click=lambda b=bot.id: self._command(b, "start")).props("dense")
                    ui.button("Stop", on_click=lambda b=bot.id: self._command(b, "stop")).props(
                        "dense color=negative"
                    )

    async def _command(self, bot_id: int, command: str) -> None:
        if await request_bot_command(self.ctx, bot_id, command) is not None:
            await self.refresh()


def register(ctx: WebContext) -> None:
    @ui.page("/")
    async def dashboard_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Dashboard"):
            ui.label(f"Signed in as {user.username} ({user.role})")
            view = _Dashboard(ctx, can_control=allowed(user, "bots:control"))
            await view.build()
            browser = browser_id()

            async def tick() -> None:
                # The page stays open after a sign-out elsewhere or a revocation: stop feeding it.
                if await current_user(ctx, browser) is None:
                    timer.cancel()
                    ui.navigate.to("/login")
                    return
                await view.refresh()

            timer = ui.timer(REFRESH_SECONDS, tick, immediate=False)
