"""The positions page at ``/positions``: the open positions in the dashboard's table (current price,
unrealised P&L, stop and take-profit with their distance, age), re-read by a timer, and for a TRADER
or ADMIN a "Close" button per position that asks for confirmation, then queues a ``close_position``
command for the runtime (the same function as ``POST /positions/{id}/close``). The runtime closes it
at market; the page shows the pending request until the position is gone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nicegui import ui
from sqlalchemy import select

from engine.store.models import BotCommand
from engine.web import admin_actions
from engine.web.api.context import WebContext
from engine.web.portfolio import load_positions, newest
from engine.web.position_lines import position_cells
from engine.web.ui._tables import positions_table
from engine.web.ui.live_updates import follow_store
from engine.web.ui.shell import action_user, allowed, client_address, frame, page_user
from engine.web.ui.trades import bot_names

__all__ = ["register", "request_close"]


async def request_close(ctx: WebContext, position_id: int) -> BotCommand | None:
    """The confirmed close: checks the session and ``positions:close`` again (a handler runs later
    than the page was built), then queues the command and audits it. None if refused or not open."""
    user = await action_user(ctx, "positions:close")
    if user is None:
        return None
    async with ctx.sessions() as db, db.begin():
        row = await admin_actions.close_position(
            db, ctx.control, position_id, user_id=user.id, address=client_address()
        )
    if row is None:
        ui.notify(f"position {position_id} is no longer open", type="warning")
    return row


@dataclass
class _PositionsView:
    ctx: WebContext
    can_close: bool
    shown: tuple[Any, ...] | None = None
    box: Any = None
    dialog: Any = None
    question: Any = None
    target: int | None = None

    async def build(self) -> None:
        if self.can_close:
            with ui.dialog() as self.dialog, ui.card():
                self.question = ui.label("")
                with ui.row():
                    ui.button("Close at market", on_click=self.confirm).props("color=negative")
                    ui.button("Cancel", on_click=self.dialog.close).props("flat")
        ui.label(
            "Price: each bot's last close of the pair (the price it marks the position to); "
            "P&L before the exit fee; distances from that price; times UTC."
        ).classes("text-caption text-grey-7")
        self.box = positions_table([], on_close=self.ask if self.can_close else None)
        await ui.context.client.connected()  # the page first, the rows over the socket
        await self.refresh()
        await follow_store(self.ctx, self.refresh)  # positions move at candle closes, trades and orders

    async def refresh(self) -> None:
        async with self.ctx.sessions() as db:
            names = await bot_names(db)
            lines, prices = await load_positions(db, names)
            pending = (
                await db.scalars(
                    select(BotCommand.position_id).where(
                        BotCommand.command == "close_position", BotCommand.status == "pending"
                    )
                )
            ).all()
        closing = set(pending)
        now = newest(prices)
        rows = [{**position_cells(line, now), "closing": line.id in closing} for line in lines]
        state = tuple(tuple(row.values()) for row in rows)
        if state == self.shown:
            return  # nothing changed: leave the table (and any open dialog) alone
        self.shown = state
        self.box.rows = rows
        self.box.update()

    def ask(self, row: dict[str, Any]) -> None:
        # The row came from the browser: only its id is used, and the server checks it again.
        try:
            self.target = int(row["id"])
        except (KeyError, TypeError, ValueError):
            return
        self.question.set_text(
            f"Close position #{self.target} ({row.get('pair')} {row.get('side')}, {row.get('bot')}) at market?"
        )
        self.dialog.open()

    async def confirm(self) -> None:
        self.dialog.close()
        if self.target is not None:
            row = await request_close(self.ctx, self.target)
            await self.refresh()  # the page first, then the message: once it shows, the page is current
            if row is not None:
                ui.notify(f"close requested for position {self.target}")
            self.target = None


def register(ctx: WebContext) -> None:
    @ui.page("/positions")
    async def positions_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Open positions"):
            await _PositionsView(ctx, allowed(user, "positions:close")).build()
