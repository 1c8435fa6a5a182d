"""The bot cards of the dashboard and the start/stop controls shared with the bot page.

A card shows what says whether a bot is healthy: its state in words, realised P&L and win rate, P&L
today, open positions, the last candle it processed and its last error. Only the action that applies
is enabled (Start for a stopped bot, Stop for a running one, neither while a command is pending), the
server refuses a stop of a bot that is not running with a message, and once the runtime has handled a
command its outcome is shown (:class:`CommandWatch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nicegui import ui
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.enums import BotStatus, EventCategory
from engine.store.models import Bot, BotCommand, Event
from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.auth.accounts import audit
from engine.web.queries import TradeTotals
from engine.web.ui.shell import action_user, client_address

__all__ = [
    "STATUS_TEXT",
    "CardFacts",
    "CommandWatch",
    "allowed_actions",
    "bot_card",
    "bot_path",
    "request_bot_command",
    "status_text",
]

STATUS_TEXT = {
    BotStatus.RUNNING: "running",
    BotStatus.STARTING: "starting",
    BotStatus.STOPPED: "stopped",
    BotStatus.PAUSED: "stopped by a user (Start resumes it)",
    BotStatus.ERROR: "stopped by an error",
}
_RUNNING = (BotStatus.RUNNING, BotStatus.STARTING)


def bot_path(bot_id: int) -> str:
    """The bot page. Not ``/bots/{id}``: that path is the REST API's (registered first, it would answer)."""
    return f"/bot/{bot_id}"


def status_text(bot: Bot) -> str:
    return f"{STATUS_TEXT.get(BotStatus(bot.status), str(bot.status))} · {bot.mode}"


def allowed_actions(status: str, pending: bool) -> set[str]:
    """The commands that make sense now: none while one is pending, else start or stop."""
    if pending:
        return set()
    return {"stop"} if BotStatus(status) in _RUNNING else {"start"}


async def request_bot_command(ctx: WebContext, bot_id: int, command: str) -> BotCommand | None:
    """The start/stop handler: checks the session and ``bots:control`` first (it runs over the socket,
    later than the page was built), refuses what does not apply now with a message, then queues the
    command for the runtime and audits it."""
    user = await action_user(ctx, "bots:control")
    if user is None:
        return None
    async with ctx.sessions() as db, db.begin():
        bot = await db.get(Bot, bot_id)
        if bot is None:
            ui.notify("this bot no longer exists", type="negative")
            return None
        running = BotStatus(bot.status) in _RUNNING
        if (command == "stop" and not running) or (command == "start" and running):
            ui.notify(
                f"{bot.name} is already {status_text(bot).split(' · ')[0]}: nothing to {command}",
                type="warning",
            )
            return None
        row = await ctx.control.request(db, bot_id, command, user_id=user.id)
        await audit(db, f"bot.{command}", user_id=user.id, target=f"bot:{bot_id}", address=client_address())
        name = bot.name
    ui.notify(f"{command} requested for {name}; the engine acts on it at its next check")
    return row


@dataclass
class CommandWatch:
    """Commands this page sent, until the runtime has handled them; then their outcome is told."""

    waiting: dict[int, str] = field(default_factory=dict)  # command id -> bot name

    def add(self, row: BotCommand | None, name: str) -> None:
        if row is not None:
            self.waiting[row.id] = name

    async def check(self, db: AsyncSession) -> list[tuple[str, bool]]:
        """(message, failed) for each command handled since the last check."""
        if not self.waiting:
            return []
        rows = (await db.scalars(select(BotCommand).where(BotCommand.id.in_(list(self.waiting))))).all()
        done = {row.id: row for row in rows if row.status != "pending"}
        if not done:
            return []
        events = (
            await db.scalars(
                select(Event)
                .where(
                    Event.category == EventCategory.SYSTEM, Event.kind.in_(["command_done", "command_failed"])
                )
                .order_by(Event.id.desc())
                .limit(200)
            )
        ).all()
        said = {(e.data or {}).get("command_id"): e.message for e in events}
        out = []
        for command_id, row in done.items():
            name = self.waiting.pop(command_id)
            message = said.get(command_id) or row.error or f"{row.command}: {row.status}"
            out.append((f"{name}: {message}", row.status == "failed"))
        return out


@dataclass(frozen=True)
class CardFacts:
    bot: Bot
    currency: str | None
    pending: tuple[BotCommand, ...]
    last_candle: datetime | None
    open_positions: int
    today: float | None
    totals: TradeTotals | None
    all_time: float | None = None  # equity now minus its first equity: realised and open together

    def key(self) -> tuple[Any, ...]:
        b, t = self.bot, self.totals
        return (
            b.id, b.name, b.status, b.mode, b.last_error, self.currency, tuple(c.id for c in self.pending),
            self.last_candle, self.open_positions, self.today, (t.trades, t.wins, t.profit) if t else None,
            self.all_time,
        )  # fmt: skip


def bot_card(facts: CardFacts, can_control: bool, on_command: Any) -> None:
    """One bot's card (user text as labels)."""
    bot, totals = facts.bot, facts.totals
    with ui.card().classes("w-full").mark(f"bot-{bot.id}"):
        ui.link(bot.name, bot_path(bot.id)).classes("text-subtitle1 font-bold")
        tone = "text-negative" if BotStatus(bot.status) == BotStatus.ERROR else ""
        ui.label(status_text(bot)).classes(tone).mark("bot-status")
        with ui.grid(columns=2).classes("w-full gap-x-4 gap-y-0 text-sm"):
            realised = totals.profit if totals else 0
            for label, value, colour in (
                (
                    "P&L all time",
                    fmt.money(facts.all_time, facts.currency, signed=True),
                    fmt.tone(facts.all_time),
                ),
                ("Realised P&L", fmt.money(realised, facts.currency, signed=True), fmt.tone(realised)),
                ("P&L today", fmt.money(facts.today, facts.currency, signed=True), fmt.tone(facts.today)),
                (
                    "Win rate",
                    f"{fmt.percent(totals.win_rate, signed=False, decimals=0)} of {totals.trades}"
                    if totals and totals.trades
                    else "no trades yet",
                    "flat",
                ),
                ("Open positions", str(facts.open_positions), "flat"),
                (
                    "Last candle",
                    f"{fmt.when(facts.last_candle)} UTC" if facts.last_candle else "none yet",
                    "flat",
                ),
            ):
                ui.label(label).classes("text-grey-7")
                ui.label(value).classes({"gain": "text-positive", "loss": "text-negative"}.get(colour, ""))
        if bot.last_error:
            ui.label(f"Last error: {bot.last_error}").classes("text-negative text-sm")
        for command in facts.pending:
            ui.label(f"Pending: {command.command} (requested {fmt.when(command.requested_at)} UTC)").classes(
                "text-warning text-sm"
            )
        if can_control:
            actions = allowed_actions(bot.status, bool(facts.pending))
            with ui.row():
                start = ui.button("Start", on_click=lambda b=bot.id: on_command(b, "start")).props("dense")
                stop = ui.button("Stop", on_click=lambda b=bot.id: on_command(b, "stop")).props(
                    "dense color=negative"
                )
                start.set_enabled("start" in actions)
                stop.set_enabled("stop" in actions)
