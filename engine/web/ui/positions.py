"""The positions page at ``/positions``: the open positions, re-read by a timer, and for a TRADER or
ADMIN a "Close" button per position that asks for confirmation, then queues a ``close_position``
command for the runtime (the same function as ``POST /positions/{id}/close``). The runtime closes it
at market; the page shows the pending request until the position is gone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nicegui import ui
from sqlalchemy import select

from engine.store.models import BotCommand, Position
from engine.web import admin_actions
from engine.web.api.context import WebContext
from engine.web.queries import positions_query
from engine.web.ui.shell import action_user, allowed, client_address, current_user, frame, page_user
from engine.web.ui.trades import REFRESH_SECONDS, bot_names, money, when

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
        self.box = ui.column().classes("w-full gap-1")
        await self.refresh()
        ui.timer(REFRESH_SECONDS, self.tick)

    async def tick(self) -> None:
        if await current_user(self.ctx) is None:
            ui.navigate.to("/login")
            return
        await self.refresh()

    async def refresh(self) -> None:
        async with self.ctx.sessions() as db:
            positions = (await db.scalars(positions_query())).all()
            names = await bot_names(db)
            pending = (
                await db.scalars(
                    select(BotCommand.position_id).where(
                        BotCommand.command == "close_position", BotCommand.status == "pending"
                    )
                )
            ).all()
        closing = set(pending)
        state = tuple(
            (p.id, p.amount, p.stop, p.take_profit, names.get(p.bot_id), p.id in closing) for p in positions
        )
        if state == self.shown:
            return  # nothing changed: leave the page (and any open dialog) alone
        self.shown = state
        self.box.clear()
        with self.box:
            if not positions:
                ui.label("No open positions.")
            for p in positions:
                bot = names.get(p.bot_id, str(p.bot_id))
                with ui.row().classes("items-center gap-4").mark(f"position-{p.id}"):
                    ui.label(f"#{p.id}").classes("font-mono")
                    ui.label(bot).classes("font-bold")
                    ui.label(f"{p.pair} {p.side}")
                    ui.label(f"amount {money(p.amount)} @ {money(p.entry_price)}")
                    ui.label(f"stop {money(p.stop)}  take profit {money(p.take_profit)}")
                    ui.label(f"opened {when(p.opened_at)}")
                    if p.id in closing:
                        ui.label("close requested").classes("text-warning")
                    elif self.can_close:
                        ui.button("Close", on_click=lambda p=p, bot=bot: self.ask(p, bot)).props(
                            "color=negative outline"
                        )

    def ask(self, position: Position, bot: str) -> None:
        self.target = position.id
        self.question.set_text(
            f"Close position #{position.id} ({position.pair} {position.side}, {bot}) at market?"
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
