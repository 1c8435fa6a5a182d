"""The dashboard at ``/``: the bots and their state."""

from __future__ import annotations

from nicegui import ui
from sqlalchemy import select

from engine.store.models import Bot
from engine.web.api.context import WebContext
from engine.web.ui.shell import frame, page_user

__all__ = ["register"]


def register(ctx: WebContext) -> None:
    @ui.page("/")
    async def dashboard_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Dashboard"):
            ui.label(f"Signed in as {user.username} ({user.role})")
            async with ctx.sessions() as db:
                bots = (await db.scalars(select(Bot).order_by(Bot.name))).all()
            ui.label("Bots").classes("text-h6")
            for bot in bots:
                ui.label(f"{bot.name}: {bot.status} ({bot.mode})")  # text, never HTML
            if not bots:
                ui.label("No bots yet.")
