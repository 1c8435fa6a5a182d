"""Every store test runs against SQLite (a temporary file) and, when ``ENGINE_TEST_POSTGRES_URL`` names a
reachable server (``.ci/run`` starts one), against PostgreSQL in a database of its own."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.store import Base, BotMode, create_engine_for, session_factory, upgrade_async, upsert_bot

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


def _schema_of(url: str) -> str:
    return str(make_url(url).query["options"]).rpartition("=")[2]


async def drop_postgres_schema(url: str) -> None:
    await _admin(f'DROP SCHEMA IF EXISTS "{_schema_of(url)}" CASCADE')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} (.ci/run starts a server)")
    return str(request.param)


@pytest.fixture
async def empty_db_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database (never migrated) on each back end."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}"
        return
    url = await create_postgres_schema()
    try:
        yield url
    finally:
        await drop_postgres_schema(url)


# Migrating costs 50-200 ms, so the migrated databases are made once per test process and reset before
# each test: SQLite by copying a migrated file, PostgreSQL by truncating the tables of a migrated schema.
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "engine.db"
    asyncio.run(upgrade_async(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_worker_url() -> Iterator[str]:
    url = asyncio.run(create_postgres_schema())
    asyncio.run(upgrade_async(url))
    yield url
    asyncio.run(drop_postgres_schema(url))


@pytest.fixture
def migrated_source(backend: str, request: pytest.FixtureRequest) -> str:
    # A sync fixture, so that the session fixtures above run outside the test's event loop.
    if backend == "sqlite":
        return str(request.getfixturevalue("sqlite_template"))
    return str(request.getfixturevalue("postgres_worker_url"))


@pytest.fixture
async def db_url(backend: str, migrated_source: str, tmp_path: Path) -> str:
    """The URL of an empty database migrated to the newest schema."""
    if backend == "sqlite":
        target = tmp_path / "engine.db"
        shutil.copyfile(migrated_source, target)
        return f"sqlite+aiosqlite:///{target}"
    schema = _schema_of(migrated_source)
    tables = ", ".join(f'"{schema}"."{t.name}"' for t in Base.metadata.sorted_tables)
    await _admin(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return migrated_source


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
