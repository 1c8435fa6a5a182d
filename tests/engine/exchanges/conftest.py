"""Store fixtures for the exchange tests: a migrated SQLite file per test (copied from one template)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store import BotMode, create_engine_for, session_factory, upgrade_async, upsert_bot


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exchanges-db") / "engine.db"
    asyncio.run(upgrade_async(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def factory(_template: Path, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    target = tmp_path / "engine.db"
    shutil.copyfile(_template, target)
    engine = create_engine_for(f"sqlite+aiosqlite:///{target}")
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def bot_id(factory: async_sessionmaker[AsyncSession]) -> int:
    async with factory() as session, session.begin():
        bot = await upsert_bot(session, name="paper-bot", config_hash="abc", mode=BotMode.PAPER)
    return bot.id
