"""Shared setup for the runtime tests: a database, a feed and a Runtime over a workspace."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from engine.data import DataDirectory
from engine.runtime import PortfolioLimits, ReplayFeed, Runtime, RuntimeConfig
from engine.store import create_engine_for, session_factory, upgrade_async


def db_url(root: Path) -> str:
    return f"sqlite:///{root / 'engine.db'}"


@asynccontextmanager
async def database(root: Path):
    engine = create_engine_for(db_url(root))
    await upgrade_async(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def make_runtime(
    root: Path, factory, *, limits: PortfolioLimits | None = None, end: str | None = None, **config
) -> Runtime:
    import pandas as pd

    feed = ReplayFeed(DataDirectory(root / "data"), end=None if end is None else pd.Timestamp(end, tz="UTC"))
    cfg = RuntimeConfig(
        bots_dir=root / "bots",
        strategies_dir=root / "strategies",
        limits=limits or PortfolioLimits(),
        backoff=0.01,
        **config,
    )
    return Runtime(cfg, factory, feed)


async def db_trades(factory) -> list[tuple]:
    from sqlalchemy import select

    from engine.store.models import Bot, Trade

    async with factory() as session:
        rows = await session.execute(
            select(
                Bot.name,
                Trade.pair,
                Trade.side,
                Trade.open_time,
                Trade.close_time,
                Trade.open_price,
                Trade.close_price,
                Trade.amount,
                Trade.exit_reason,
            )
            .join(Bot, Bot.id == Trade.bot_id)
            .order_by(Bot.name, Trade.close_time, Trade.id)
        )
        return [tuple(r) for r in rows]


async def db_events(factory, category: str | None = None, kind: str | None = None):
    from sqlalchemy import select

    from engine.store.models import Event

    async with factory() as session:
        query = select(Event).order_by(Event.id)
        if category:
            query = query.where(Event.category == category)
        if kind:
            query = query.where(Event.kind == kind)
        return list((await session.execute(query)).scalars())
