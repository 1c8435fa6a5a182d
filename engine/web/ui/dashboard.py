"""The dashboard at ``/``: the portfolio valued in one currency the user picks (USDT by default) with
the figures of each quote currency beside it, equity and drawdown, a card per bot (start/stop for
traders), open positions with their live P&L, the newest closed trades and the alerts, kept current
by a timer without a reload. Every amount carries its unit (:mod:`engine.web.formatting`).

The timer reads only what is new (rows with an id above the last one seen) for trades, alerts and
equity; the bot cards and the open positions are small and are re-read whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nicegui import app, ui
from sqlalchemy import func, select

from engine.store.models import Bot, BotCommand, Trade
from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.portfolio import (
    VALUATION_CURRENCIES,
    Rates,
    bot_currencies,
    load_positions,
    newest,
    realised_by_day,
    valuate,
)
from engine.web.position_lines import position_cells
from engine.web.profit import profit_chart
from engine.web.queries import (
    Point,
    alerts_query,
    drawdown,
    equity_before,
    equity_by_bot,
    first_equity_by_bot,
    last_snapshot_times,
    pending_by_bot,
    pnl_summary,
    trade_totals,
    trades_query,
)
from engine.web.ui._bot_cards import CardFacts, CommandWatch, bot_card, bot_path, request_bot_command
from engine.web.ui._dashboard_parts import (
    ALERT_COLUMNS,
    CURRENCY_COLUMNS,
    TRADE_COLUMNS,
    alert_row,
    currency_rows,
    line_chart,
    trade_row,
)
from engine.web.ui._tables import data_table, figure, positions_table
from engine.web.ui.live_updates import follow_store
from engine.web.ui.shell import allowed, browser_id, current_user, frame, page_user

__all__ = ["bot_path", "register", "request_bot_command"]

EQUITY_DAYS = 30
FEED_LENGTH = 20
DEFAULT_VALUATION = "USDT"


@dataclass
class _Dashboard:
    """One open dashboard: its elements and what it has read so far."""

    ctx: WebContext
    can_control: bool
    valuation: str = DEFAULT_VALUATION
    series: dict[int, list[Point]] = field(default_factory=dict)
    last_snapshot: int = 0
    last_trade: int = 0
    last_alert: int = 0
    names: dict[int, str] = field(default_factory=dict)
    shown_cards: list[tuple[Any, ...]] | None = None
    first: dict[int, float] = field(default_factory=dict)
    elements: dict[str, Any] = field(default_factory=dict)
    watch: CommandWatch = field(default_factory=CommandWatch)
    last_trade_seen: int = 0  # the newest trade id in the store at the last refresh
    profit_key: tuple[int, str] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def build(self) -> None:
        el = self.elements
        with ui.row().classes("w-full items-end gap-x-8 gap-y-2"):
            el["value_in"] = (
                ui.select(
                    list(VALUATION_CURRENCIES), value=self.valuation, label="Value in", on_change=self.revalue
                )
                .classes("w-28")
                .mark("valuation")
            )
            el["equity"] = figure("Equity", mark="equity")
            el["today"] = figure("P&L today", mark="pnl-today")
            el["week"] = figure("P&L this week", mark="pnl-week")
            el["all"] = figure("P&L all time", mark="pnl-all")
        el["as_of"] = ui.label("").classes("text-caption text-grey-7")
        el["notes"] = ui.label("").classes("text-caption text-warning")
        el["currencies"] = data_table(
            CURRENCY_COLUMNS,
            [],
            empty="No equity recorded yet.",
            toned={"today": "tone_today", "week": "tone_week", "all": "tone_all"},
            right=("equity", "today", "week", "all"),
        ).mark("per-currency")
        with ui.element("div").classes("w-full grid grid-cols-1 lg:grid-cols-2 gap-4"):
            el["equity_chart"] = ui.echart(line_chart("Total equity", [])).classes("w-full h-64")
            el["drawdown_chart"] = ui.echart(
                line_chart("Drawdown", [], percent=True, color="#dc2626")
            ).classes("w-full h-64")
        el["profit_chart"] = (
            ui.echart(profit_chart([], self.valuation)).classes("w-full h-64").mark("profit-chart")
        )
        el["profit_note"] = ui.label("").classes("text-caption text-grey-7")
        ui.label("Bots").classes("text-h6")
        el["cards"] = ui.element("div").classes("w-full grid grid-cols-1 sm:grid-cols-2 xl:grid-cols-3 gap-4")
        ui.label("Open positions").classes("text-h6")
        el["positions"] = positions_table([])
        with ui.element("div").classes("w-full grid grid-cols-1 xl:grid-cols-2 gap-4"):
            with ui.column().classes("w-full min-w-0"):
                ui.label("Latest trades").classes("text-h6")
                el["trades"] = data_table(
                    TRADE_COLUMNS,
                    [],
                    empty="No closed trades yet.",
                    toned={"profit": "tone", "profit_pct": "tone"},
                    right=("profit", "profit_pct"),
                ).mark("latest-trades")
            with ui.column().classes("w-full min-w-0"):
                ui.label("Alerts").classes("text-h6")
                el["alerts"] = data_table(ALERT_COLUMNS, [], empty="No alerts.").mark("alerts")
        # The page goes to the browser first: reading and valuing everything may take longer than
        # NiceGUI's response timeout on a busy machine; the figures follow over the socket.
        await ui.context.client.connected()
        await self.refresh()

    async def revalue(self, event: Any) -> None:
        if await current_user(self.ctx) is None:
            ui.navigate.to("/login")
            return
        self.valuation = str(event.value or DEFAULT_VALUATION)
        app.storage.user["valuation"] = self.valuation  # a display preference, no secret
        await self._show_equity()

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
            lines, prices = await load_positions(db, self.names)
            self.currencies = await bot_currencies(db, prices)
            totals = await trade_totals(db)
            trades = list((await db.scalars(trades_query(after_id=self.last_trade).limit(FEED_LENGTH))).all())
            self.last_trade_seen = await db.scalar(select(func.max(Trade.id))) or 0
            alerts = list((await db.scalars(alerts_query(after_id=self.last_alert).limit(FEED_LENGTH))).all())
            outcomes = await self.watch.check(db)
        self.prices = prices
        for owner, equity in carried.items():
            new_series.setdefault(owner, []).insert(0, (since, equity))
        if new_series or not self.series or self.profit_key != (self.last_trade_seen, self.valuation):
            for owner, points in new_series.items():
                self.series.setdefault(owner, []).extend(points)
                self.series[owner].sort(key=lambda p: p[0])
            self._trim()
            await self._show_equity()
        self._show_cards(bots, pending, last_candles, lines, totals)
        now = newest(prices) or max(last_candles.values(), default=None)
        table = self.elements["positions"]
        table.rows = [position_cells(line, now) for line in lines]
        table.update()
        self._prepend("trades", [trade_row(t, self.names) for t in trades])
        self._prepend("alerts", [alert_row(e, self.names) for e in alerts])
        if trades:
            self.last_trade = max(self.last_trade, *(t.id for t in trades))
        if alerts:
            self.last_alert = max(self.last_alert, *(e.id for e in alerts))
        for message, failed in outcomes:
            ui.notify(message, type="negative" if failed else "positive")

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

    async def _show_equity(self) -> None:
        v, rates = await valuate(
            self.series, getattr(self, "currencies", {}), self.valuation, getattr(self, "prices", {}),
            self.ctx.data_dir, self.first,
        )  # fmt: skip
        el, unit = self.elements, v.currency
        for key, value in (("today", v.pnl.today), ("week", v.pnl.week), ("all", v.pnl.all_time)):
            el[key].set_text(fmt.money(value, unit, signed=True))
            el[key].classes(
                remove="text-positive text-negative",
                add={"gain": "text-positive", "loss": "text-negative"}.get(fmt.tone(value), ""),
            )
        el["equity"].set_text(fmt.money(v.equity, unit))
        el["as_of"].set_text(
            f"As of the bots' last candle, {fmt.when(v.pnl.as_of)} UTC (replay time when replaying); "
            f"other currencies converted at the rates below; charts: the last {EQUITY_DAYS} days in {unit}"
            if v.pnl.as_of
            else "No equity recorded yet."
        )
        el["notes"].set_text("; ".join(v.notes))
        table = el["currencies"]
        table.rows = currency_rows(v, self.names)
        table.update()
        chart = el["equity_chart"]
        chart.options.update(line_chart(f"Total equity ({unit})", v.curve, unit=unit))
        chart.update()
        chart = el["drawdown_chart"]
        chart.options.update(line_chart("Drawdown", drawdown(v.curve), percent=True, color="#dc2626"))
        chart.update()
        await self._show_profit(rates)

    async def _show_profit(self, rates: Rates) -> None:
        """Realised profit per day and cumulative, in the valuation currency; re-read only when a
        trade closed or the currency changed."""
        key = (self.last_trade_seen, self.valuation)
        if key == self.profit_key:
            return
        self.profit_key = key
        async with self.ctx.sessions() as db:
            days, left_out = await realised_by_day(db, self.valuation, rates)
        chart = self.elements["profit_chart"]
        chart.options.clear()
        chart.options.update(profit_chart(days, self.valuation, "Realised profit, all bots"))
        chart.update()
        note = "Each trade converted at the rate known when it closed; days in UTC."
        if left_out:
            note += f" {left_out} trade(s) without a rate are left out."
        self.elements["profit_note"].set_text(note)

    def _show_cards(
        self,
        bots: list[Bot],
        pending: dict[int, list[BotCommand]],
        last_candles: dict[int, datetime],
        lines: list[Any],
        totals: dict[int, Any],
    ) -> None:
        # "Today" is the portfolio's day (of its latest candle) for every card: a bot that stopped
        # yesterday made nothing today.
        ends = [points[-1][0] for points in self.series.values() if points]
        now = max(ends) if ends else None
        cards = [
            CardFacts(
                bot,
                self.currencies.get(bot.id),
                tuple(pending.get(bot.id, [])),
                last_candles.get(bot.id),
                sum(1 for line in lines if line.bot_id == bot.id),
                pnl_summary(self.series.get(bot.id, []), now).today,
                totals.get(bot.id),
                self._all_time(bot.id),
            )
            for bot in bots
        ]
        # Rebuild only on a change: the buttons stay put under the user's pointer between ticks.
        shown = [card.key() for card in cards]
        if shown == self.shown_cards:
            return
        self.shown_cards = shown
        container = self.elements["cards"]
        container.clear()
        with container:
            if not bots:
                ui.label("No bots yet.").classes("text-grey-7")
            for card in cards:
                bot_card(card, self.can_control, self._command)

    def _all_time(self, bot_id: int) -> float | None:
        points = self.series.get(bot_id)
        if not points:
            return None
        return points[-1][1] - self.first.get(bot_id, points[0][1])

    async def _command(self, bot_id: int, command: str) -> None:
        row = await request_bot_command(self.ctx, bot_id, command)
        if row is not None:
            self.watch.add(row, self.names.get(bot_id, str(bot_id)))
            await self.refresh()


def register(ctx: WebContext) -> None:
    @ui.page("/")
    async def dashboard_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Dashboard"):
            chosen = app.storage.user.get("valuation", DEFAULT_VALUATION)
            view = _Dashboard(
                ctx,
                can_control=allowed(user, "bots:control"),
                valuation=chosen if chosen in VALUATION_CURRENCIES else DEFAULT_VALUATION,
            )
            await view.build()
            # Re-read when the runtime commits (a candle close, a trade, an event), not on a timer; a
            # page whose session ended (sign-out elsewhere, revocation) gets nothing more.
            await follow_store(ctx, view.refresh, browser=browser_id())
