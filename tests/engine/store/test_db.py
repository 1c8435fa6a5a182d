from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, event, inspect, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.store import (
    Base,
    Bot,
    BotMode,
    DatabaseUnavailableError,
    create_engine_for,
    current_revision_async,
    default_url,
    display_url,
    head_revision,
    resolve_url,
    session_factory,
    upgrade_async,
    upsert_bot,
)
from engine.store.db import SQLITE_BUSY_TIMEOUT_MS, _split_pg_options

# Every table of the models; test_migrations_build_exactly_the_models checks columns, types and indexes.
TABLES = set(Base.metadata.tables)
# The newest migration file, by its number: a new migration must extend the chain, not branch it.
NEWEST = max(
    p.name.split("_")[0]
    for p in (Path(__file__).parents[3] / "engine/store/migrations/versions").glob("0*.py")
)


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_upgrade_creates_the_schema_on_an_empty_database(empty_db_url: str) -> None:
    engine = create_engine_for(empty_db_url)
    try:
        assert await current_revision_async(engine) is None
        await upgrade_async(engine)
        assert await current_revision_async(engine) == head_revision() == NEWEST
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES | {"alembic_version"}
    finally:
        await engine.dispose()


async def test_upgrade_again_is_a_no_op_that_keeps_the_data(empty_db_url: str) -> None:
    await upgrade_async(empty_db_url)
    engine = create_engine_for(empty_db_url)
    try:
        factory = session_factory(engine)
        async with factory() as session, session.begin():
            await upsert_bot(session, name="keep-me", config_hash="h", mode=BotMode.LIVE)
        await upgrade_async(engine)
        await upgrade_async(empty_db_url)
        async with factory() as session:
            assert (await session.execute(select(Bot.name))).scalars().all() == ["keep-me"]
        assert await current_revision_async(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_concurrent_upgrades_of_an_empty_database_wait_for_each_other(empty_db_url: str) -> None:
    engines = [create_engine_for(empty_db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade_async(e) for e in engines))
        assert {await current_revision_async(e) for e in engines} == {head_revision()}
    finally:
        for e in engines:
            await e.dispose()


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_migrations_build_exactly_the_models(engine: AsyncEngine) -> None:
    """A model change without its migration (or the reverse) fails here."""
    async with engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_downgrade_to_base_and_back(db_url: str) -> None:
    from alembic import command

    from engine.store.db import _alembic_config

    def downgrade(conn: Connection) -> None:
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")

    engine = create_engine_for(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        await upgrade_async(engine)
        assert await current_revision_async(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_sqlite_connections_are_set_up_for_safety(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'engine.db'}")
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        }
        assert (tmp_path / "nested" / "dir" / "engine.db").exists()
    finally:
        await engine.dispose()


async def test_sqlite_writers_take_the_lock_at_begin_and_readers_do_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    engine = create_engine_for(url)
    # A short busy timeout, so that waiting for the lock shows here as an error.
    event.listen(engine.sync_engine, "connect", lambda c, _r: c.cursor().execute("PRAGMA busy_timeout = 100"))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with engine.begin() as writer:
            await writer.execute(text("SELECT 1"))  # no write yet, but BEGIN IMMEDIATE holds the lock
            with pytest.raises(Exception, match="locked"):
                async with engine.begin() as other:
                    await other.execute(text("SELECT 1"))
            reader = session_factory(engine, for_reading=True)
            async with reader() as session, session.begin():
                assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    finally:
        await engine.dispose()


def test_resolve_url_picks_async_drivers() -> None:
    assert resolve_url("sqlite:///var/x.db").drivername == "sqlite+aiosqlite"
    assert resolve_url("postgres://u:p@h/db").drivername == "postgresql+asyncpg"
    assert resolve_url("postgresql+psycopg://u:p@h/db").drivername == "postgresql+asyncpg"
    with pytest.raises(DatabaseUnavailableError, match="unsupported database 'mysql'"):
        resolve_url("mysql://u:secret@h/db")
    with pytest.raises(DatabaseUnavailableError, match="not a database URL"):
        resolve_url("no scheme here")


def test_messages_never_show_the_password() -> None:
    assert display_url("postgresql://engine:s3cret@db/engine") == "postgresql://engine:***@db/engine"
    with pytest.raises(DatabaseUnavailableError) as info:
        resolve_url("mysql://u:s3cret@h/db")
    assert "s3cret" not in str(info.value)


def test_default_url_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ENGINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("ENGINE_HOME", raising=False)
    assert default_url() == "sqlite+aiosqlite:///var/engine.db"
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path))
    assert default_url() == f"sqlite+aiosqlite:///{tmp_path}/engine.db"
    monkeypatch.setenv("ENGINE_DATABASE_URL", "postgresql://u@h/db")
    assert default_url() == "postgresql://u@h/db"


def test_postgres_options_become_server_settings() -> None:
    url = make_url(
        "postgresql+asyncpg://u:p@localhost/db?options=-c%20search_path%3Dengine%20-cwork_mem%3D8MB"
    )
    rest, settings = _split_pg_options(url)
    assert settings == {"search_path": "engine", "work_mem": "8MB"}
    assert "options" not in rest.query
    assert _split_pg_options(make_url("postgresql+asyncpg://u@h/db")) == (
        make_url("postgresql+asyncpg://u@h/db"),
        {},
    )
    with pytest.raises(DatabaseUnavailableError, match="unsupported PostgreSQL option"):
        create_engine_for("postgresql://u:p@localhost/db?options=search_path")


async def test_the_given_url_keeps_the_options_another_process_needs() -> None:
    from engine.store.db import given_url

    engine = create_engine_for("postgresql+asyncpg://u:secret@localhost/db?options=-csearch_path%3Dengine")
    try:
        assert "options" not in engine.url.query  # moved into the connection arguments
        given = given_url(engine)
        assert given.query["options"] == "-csearch_path=engine" and given.password == "secret"
    finally:
        await engine.dispose()


async def test_a_schema_option_keeps_tables_in_their_schema(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = create_engine_for(db_url)
    try:
        async with engine.connect() as conn:
            schema = (await conn.execute(text("SELECT current_schema()"))).scalar()
            assert schema is not None and schema.startswith("t_")
            assert await conn.run_sync(lambda c: set(inspect(c).get_table_names(schema=schema))) >= TABLES
    finally:
        await engine.dispose()
