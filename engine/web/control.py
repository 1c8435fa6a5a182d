"""How the web app asks the runtime to act: the ``RuntimeControl`` protocol and its database-backed
implementation, a queue in the ``bot_commands`` table that the runtime polls (contract in docs/web.md).

The web app never touches the runtime's objects: it records a command (start, stop, close_position)
with who asked, and the runtime marks it ``done`` or ``failed`` (with ``error``) when it has acted."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import BotCommand

__all__ = ["COMMANDS", "DbRuntimeControl", "RuntimeControl"]

COMMANDS = ("start", "stop", "close_position")


class RuntimeControl(Protocol):
    async def request(
        self,
        db: AsyncSession,
        bot_id: int,
        command: str,
        *,
        user_id: str | None,
        position_id: int | None = None,
    ) -> BotCommand: ...

    async def pending(self, db: AsyncSession, bot_id: int) -> list[BotCommand]: ...


class DbRuntimeControl:
    """Commands as rows of ``bot_commands`` with status ``pending``; the runtime consumes them in id order."""

    async def request(
        self,
        db: AsyncSession,
        bot_id: int,
        command: str,
        *,
        user_id: str | None,
        position_id: int | None = None,
    ) -> BotCommand:
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}: expected one of {', '.join(COMMANDS)}")
        row = BotCommand(
            bot_id=bot_id, command=command, position_id=position_id, requested_by=user_id, status="pending"
        )
        db.add(row)
        await db.flush()
        return row

    async def pending(self, db: AsyncSession, bot_id: int) -> list[BotCommand]:
        rows = await db.scalars(
            select(BotCommand)
            .where(BotCommand.bot_id == bot_id, BotCommand.status == "pending")
            .order_by(BotCommand.id)
        )
        return list(rows.all())
