"""Every store test runs against SQLite (a temporary file) and, when ``ENGINE_TEST_POSTGRES_URL`` names a
reachable server (``.ci/run`` starts one), against PostgreSQL in a database of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.store import BotMode, create_engine_for, session_factory, upgrade_async, upsert_bot

POSTGRES_ENV = "ENGINE_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def postgres_admin_dsn() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        return None
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_admin_dsn())
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_postgres_schema() -> str:
    """A fresh, empty schema on the test server; returns a URL whose connections use it alone (a schema
    costs milliseconds where a database costs a fifth of a second)."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE SCHEMA "{schema}"')
    url = make_url(os.environ[POSTGRES_ENV]).update_query_dict({"options": f"-c search_path={schema}"})
    return url.render_as_string(hide_password=False)


async def drop_postgres_schema(url: str) -> None:
    options = make_url(url).query["options"]
    schema = str(options).rpartition("=")[2]
    await _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database (never migrated) on each back end."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}"
        return
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} (.ci/run starts a server)")
    url = await create_postgres_schema()
    try:
        yield url
    finally:
        await drop_postgres_schema(url)


@pytest.fixture
async def db_url(empty_db_url: str) -> str:
    """The URL of a database migrated to the newest schema."""
    await upgrade_async(empty_db_url)
    return empty_db_url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine_for(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
async def bot_id(factory: async_sessionmaker[AsyncSession]) -> int:
    async with factory() as session, session.begin():
        bot = await upsert_bot(session, name="btc-trend", config_hash="c0ffee", mode=BotMode.PAPER)
    return bot.id
