"""Bots as the runtime knows them: one row per configured bot name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.enums import BotMode, BotStatus
from engine.store.models import Bot

__all__ = ["get_bot", "list_bots", "set_bot_status", "upsert_bot"]


async def upsert_bot(
    session: AsyncSession,
    *,
    name: str,
    config_hash: str,
    mode: BotMode,
    config_path: str | None = None,
    account: str | None = None,
) -> Bot:
    """The bot called ``name``, created or updated with this configuration. Its id never changes, so its
    orders and trades stay attached across reloads."""
    bot = await get_bot(session, name, for_update=True)
    if bot is None:
        bot = Bot(name=name, status=BotStatus.STOPPED)
        session.add(bot)
    bot.config_hash = config_hash
    bot.mode = mode
    bot.config_path = config_path
    bot.account = account
    await session.flush()
    return bot


async def get_bot(session: AsyncSession, name: str, *, for_update: bool = False) -> Bot | None:
    query = select(Bot).where(Bot.name == name)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(query)).scalars().first()


async def list_bots(session: AsyncSession) -> list[Bot]:
    return list((await session.execute(select(Bot).order_by(Bot.name))).scalars())


async def set_bot_status(
    session: AsyncSession, bot_id: int, status: BotStatus, *, error: str | None = None
) -> Bot:
    """Set the bot's status; ``error`` is kept as ``last_error`` (cleared when the bot runs again)."""
    bot = await session.get(Bot, bot_id, with_for_update=True, populate_existing=True)
    if bot is None:
        raise LookupError(f"no bot with id {bot_id}")
    bot.status = status
    if error is not None:
        bot.last_error = error
    elif status == BotStatus.RUNNING:
        bot.last_error = None
    await session.flush()
    return bot
