"""The logs page at ``/logs``: a live tail of the store's ``events`` table (trades, orders, risk blocks,
reloads, errors, system), newest first, filtered by category and bot. Lines are table cells (text).

Only the events table is shown: the engine's JSON log files stay on the server (they are for the
operator's log tooling, and reading files from a page would be a second, unaudited way to them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nicegui import ui
from sqlalchemy import func, select

from engine.store.enums import EventCategory
from engine.store.models import Event
from engine.web.api.context import WebContext
from engine.web.live_tail import EVENTS
from engine.web.queries import events_query
from engine.web.ui._tables import data_table
from engine.web.ui.live_updates import follow_store
from engine.web.ui.shell import frame, page_user
from engine.web.ui.trades import bot_names, when

__all__ = ["TAIL", "register"]

TAIL = 200  # lines kept on the page
ALL = ""


def event_row(event: Event, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": when(event.time),
        "bot": names.get(event.bot_id, str(event.bot_id)) if event.bot_id is not None else "",
        "category": str(event.category),
        "kind": event.kind,
        "message": event.message,
    }


@dataclass
class _LogsView:
    ctx: WebContext
    names: dict[int, str] = field(default_factory=dict)
    bot_id: int | None = None
    category: EventCategory | None = None
    last_id: int = 0
    elements: dict[str, Any] = field(default_factory=dict)

    async def build(self) -> None:
        async with self.ctx.sessions() as db:
            self.names = await bot_names(db)
        with ui.row().classes("items-end gap-x-4 gap-y-1"):
            self.elements["category"] = (
                ui.select(
                    {ALL: "all categories", **{c.value: c.value for c in EventCategory}},
                    value=ALL,
                    label="Category",
                    on_change=self.apply,
                )
                .classes("min-w-[12rem]")
                .mark("filter-category")
            )
            self.elements["bot"] = (
                ui.select({0: "all bots", **self.names}, value=0, label="Bot", on_change=self.apply)
                .classes("min-w-[12rem]")
                .mark("filter-bot")
            )
        ui.label(
            f"Newest first, the last {TAIL} events of the store (not the JSON log files). Times are UTC: "
            "what a bot decided on a candle (trades, risk blocks) carries that candle's time, which in a "
            "replay is the replayed time; everything else (starts, reloads, commands, errors) the wall clock."
        ).classes("text-caption text-grey-7")
        self.elements["table"] = data_table(
            (
                ("time", "Time (UTC)", True),
                ("bot", "Bot", False),
                ("category", "Category", False),
                ("kind", "Kind", False),
                ("message", "Message", True),
            ),
            [],
            empty="No events match.",
        ).mark("events")
        await self.load()
        await follow_store(self.ctx, self.follow, tables=(EVENTS,))  # when events are committed

    async def apply(self) -> None:
        category = self.elements["category"].value
        bot = self.elements["bot"].value
        self.category = EventCategory(category) if category else None
        self.bot_id = int(bot) if bot else None
        await self.load()

    async def load(self) -> None:
        async with self.ctx.sessions() as db:
            # The newest id first, then rows up to it: an event added in between is not skipped.
            self.last_id = await db.scalar(select(func.max(Event.id))) or 0
            query = events_query(bot_id=self.bot_id, category=self.category).where(Event.id <= self.last_id)
            rows = (await db.scalars(query.limit(TAIL))).all()
        table = self.elements["table"]
        table.rows = [event_row(e, self.names) for e in rows]
        table.update()

    async def follow(self) -> None:
        query = events_query(bot_id=self.bot_id, category=self.category, after_id=self.last_id)
        async with self.ctx.sessions() as db:
            fresh = (await db.scalars(query.limit(TAIL))).all()
            if any(e.bot_id is not None and e.bot_id not in self.names for e in fresh):
                self.names = await bot_names(db)
        if fresh:
            self.last_id = max(e.id for e in fresh)
            table = self.elements["table"]
            table.rows = [event_row(e, self.names) for e in fresh] + table.rows
            del table.rows[TAIL:]
            table.update()


def register(ctx: WebContext) -> None:
    @ui.page("/logs")
    async def logs_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Logs"):
            await _LogsView(ctx).build()
