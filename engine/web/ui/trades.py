"""The trades page at ``/trades``: closed trades filtered by bot, pair and start time, a page at a time,
with a CSV export of every filtered row (the columns of ``GET /trades/``) and new trades shown as they
close (a timer asks only for ids above the last one seen).

The small formatting helpers here are shared by the positions and logs pages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nicegui import ui
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import Bot, Trade
from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.api.schemas import TradeOut
from engine.web.live_tail import TRADES
from engine.web.queries import trades_query
from engine.web.ui._tables import data_table
from engine.web.ui.live_updates import follow_store
from engine.web.ui.shell import action_user, frame, page_user

__all__ = [
    "CSV_COLUMNS",
    "PAGE_SIZE",
    "REFRESH_SECONDS",
    "TradeFilter",
    "bot_names",
    "columns",
    "money",
    "parse_since",
    "register",
    "trades_csv",
    "when",
]

REFRESH_SECONDS = 3.0
PAGE_SIZE = 50
CSV_COLUMNS: tuple[str, ...] = tuple(TradeOut.model_fields)
ALL = 0  # the "every bot" choice of a bot filter (bot ids start at 1)


def money(value: float | Decimal | None) -> str:
    return "-" if value is None else f"{float(value):.8g}"


def when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def columns(*names: str) -> list[dict[str, Any]]:
    return [
        {"name": n, "label": n.replace("_", " ").capitalize(), "field": n, "align": "left"} for n in names
    ]


async def bot_names(db: AsyncSession) -> dict[int, str]:
    rows = await db.execute(select(Bot.id, Bot.name).order_by(Bot.name))
    return {bot_id: name for bot_id, name in rows.all()}


def parse_since(text: str) -> datetime | None:
    """``YYYY-MM-DD`` or an ISO-8601 time; without a zone it is UTC. Empty: None. ValueError if neither."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date or time: {text!r} (e.g. 2026-03-01 or 2026-03-01T12:00)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TradeFilter:
    bot_id: int | None = None
    pair: str | None = None
    since: datetime | None = None

    def query(self, *, after_id: int | None = None) -> Select[Any]:
        return trades_query(bot_id=self.bot_id, pair=self.pair, since=self.since, after_id=after_id)


def trades_csv(trades: Iterable[Trade]) -> str:
    """The trades as CSV with the columns and value formats of ``GET /trades/`` (exact decimals, ISO times)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for trade in trades:
        writer.writerow(TradeOut.model_validate(trade).model_dump(mode="json"))
    return out.getvalue()


def trade_row(trade: Trade, names: dict[int, str]) -> dict[str, Any]:
    currency = fmt.quote_currency(trade.pair)
    return {
        "id": trade.id,
        "bot": names.get(trade.bot_id, str(trade.bot_id)),
        "pair": trade.pair,
        "side": str(trade.side),
        "opened": fmt.when(trade.open_time),
        "closed": fmt.when(trade.close_time),
        "amount": fmt.amount(trade.amount),
        "open_price": fmt.price(trade.open_price),
        "close_price": fmt.price(trade.close_price),
        "profit": fmt.money(trade.profit_abs, currency, signed=True),
        "profit_pct": fmt.percent(trade.profit_ratio),
        "tone": fmt.tone(trade.profit_abs),
        "fees": fmt.money(trade.fees, currency),
        "reason": trade.exit_reason,
    }


TABLE_COLUMNS = (
    ("id", "#", False),
    ("pair", "Pair", True),
    ("bot", "Bot", False),
    ("side", "Side", False),
    ("opened", "Opened (UTC)", False),
    ("closed", "Closed (UTC)", True),
    ("amount", "Amount", False),
    ("open_price", "Entry", False),
    ("close_price", "Exit price", False),
    ("profit", "Profit", True),
    ("profit_pct", "Profit %", True),
    ("fees", "Fees", False),
    ("reason", "Exit", False),
)


@dataclass
class _TradesView:
    ctx: WebContext
    names: dict[int, str] = field(default_factory=dict)
    filter: TradeFilter = field(default_factory=TradeFilter)
    offset: int = 0
    total: int = 0
    last_id: int = 0
    elements: dict[str, Any] = field(default_factory=dict)

    async def build(self) -> None:
        async with self.ctx.sessions() as db:
            self.names = await bot_names(db)
        with ui.row().classes("items-end gap-x-4 gap-y-1"):
            self.elements["bot"] = (
                ui.select({ALL: "all bots", **self.names}, value=ALL, label="Bot")
                .classes("min-w-[12rem]")
                .mark("filter-bot")
            )
            self.elements["pair"] = ui.input("Pair", placeholder="BTC/USDT").props("clearable")
            self.elements["since"] = ui.input("Closed since (UTC)", placeholder="2026-03-01")
            ui.button("Apply", on_click=self.apply)
            ui.button("Export CSV", on_click=self.export).props("outline")
        self.elements["error"] = ui.label("").classes("text-negative")
        self.elements["table"] = data_table(
            TABLE_COLUMNS,
            [],
            empty="No closed trades match.",
            toned={"profit": "tone", "profit_pct": "tone"},
            right=("amount", "open_price", "close_price", "profit", "profit_pct", "fees"),
        ).mark("trades")
        with ui.row().classes("items-center gap-4"):
            ui.button("Previous", on_click=lambda: self.turn(-1)).props("flat")
            self.elements["range"] = ui.label("")
            ui.button("Next", on_click=lambda: self.turn(1)).props("flat")
        await self.load()
        await follow_store(self.ctx, self.follow, tables=(TRADES,))  # when trades are committed

    def read_filter(self) -> TradeFilter | None:
        try:
            since = parse_since(self.elements["since"].value or "")
        except ValueError as exc:
            self.elements["error"].set_text(str(exc))
            return None
        self.elements["error"].set_text("")
        bot = self.elements["bot"].value
        pair = (self.elements["pair"].value or "").strip().upper() or None
        return TradeFilter(bot_id=int(bot) if bot else None, pair=pair, since=since)

    async def apply(self) -> None:
        wanted = self.read_filter()
        if wanted is not None:
            self.filter, self.offset = wanted, 0
            await self.load()

    async def turn(self, step: int) -> None:
        offset = self.offset + step * PAGE_SIZE
        if 0 <= offset < max(self.total, 1):
            self.offset = offset
            await self.load()

    async def load(self) -> None:
        async with self.ctx.sessions() as db:
            # The newest id first, then rows up to it: a trade added in between is not skipped.
            self.last_id = await db.scalar(select(func.max(Trade.id))) or 0
            query = self.filter.query().where(Trade.id <= self.last_id)
            counted = select(func.count()).select_from(query.order_by(None).subquery())
            self.total = await db.scalar(counted) or 0
            rows = (await db.scalars(query.offset(self.offset).limit(PAGE_SIZE))).all()
        self.show(rows)

    def show(self, rows: Sequence[Trade]) -> None:
        table = self.elements["table"]
        table.rows = [trade_row(t, self.names) for t in rows]
        table.update()
        first = self.offset + 1 if self.total else 0
        self.elements["range"].set_text(f"{first}-{self.offset + len(rows)} of {self.total}")

    async def follow(self) -> None:
        """New trades matching the filter go on top of the first page (later pages stay put)."""
        async with self.ctx.sessions() as db:
            fresh = (await db.scalars(self.filter.query(after_id=self.last_id))).all()
            if not fresh:
                return
            self.last_id = max(t.id for t in fresh)
            if any(t.bot_id not in self.names for t in fresh):
                self.names = await bot_names(db)
        self.total += len(fresh)
        if self.offset == 0:
            await self.load()
        else:
            self.elements["range"].set_text(
                f"{self.offset + 1}-{self.offset + len(self.elements['table'].rows)} of {self.total}"
            )

    async def export(self) -> None:
        # The session may have ended since the page was built.
        if await action_user(self.ctx, "read") is None:
            return
        wanted = self.read_filter()
        if wanted is None:
            return
        async with self.ctx.sessions() as db:
            rows = (await db.scalars(wanted.query())).all()
        ui.download.content(trades_csv(rows).encode(), "trades.csv", "text/csv")


def register(ctx: WebContext) -> None:
    @ui.page("/trades")
    async def trades_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Trades"):
            await _TradesView(ctx).build()
