"""Connections to the state database: URL resolution, engines, session factories, migrations.

SQLite is the default (``$ENGINE_HOME/engine.db``), PostgreSQL is chosen by URL. ``ENGINE_DATABASE_URL``
overrides the default. Every connection to SQLite is set up the same way:

- ``journal_mode=WAL``: readers never block the writer and a killed process leaves the last committed
  state (the WAL is replayed or ignored as a whole per transaction).
- ``synchronous=FULL``: each commit is fsynced. NORMAL is safe against a killed process but may lose the
  last commits on power loss; an order marked ``sent`` that vanishes that way could be sent again after a
  restart. The engine commits a handful of times per candle, so the fsync cost does not matter.
- ``foreign_keys=ON`` (off by default in SQLite) and ``busy_timeout`` so concurrent writers wait.
- Transactions start with ``BEGIN IMMEDIATE``: a writer takes the write lock when it begins, so a
  read-then-write transaction can never fail half-way on a lock upgrade. Sessions made with
  ``session_factory(..., for_reading=True)`` use a plain ``BEGIN`` and do not block writers.

No session is global: the runtime builds one factory at start and passes it to whoever writes.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from engine.private_files import make_private_file
from engine.store.errors import DatabaseUnavailableError

__all__ = [
    "DATABASE_URL_ENV",
    "create_engine_for",
    "current_revision",
    "current_revision_async",
    "default_url",
    "display_url",
    "given_url",
    "head_revision",
    "read_blocking",
    "resolve_url",
    "run_with_session",
    "session_factory",
    "sqlite_path",
    "upgrade",
    "upgrade_async",
]

DATABASE_URL_ENV = "ENGINE_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
# Arbitrary, fixed key of the PostgreSQL advisory lock that serialises concurrent migrations.
_MIGRATION_LOCK_KEY = 7_420_511_305
_BEGIN_OPTION = "engine_sqlite_begin"


def default_url() -> str:
    """``$ENGINE_DATABASE_URL``, else the SQLite file ``$ENGINE_HOME/engine.db`` (``ENGINE_HOME``: ``./var``)."""
    explicit = os.environ.get(DATABASE_URL_ENV)
    if explicit:
        return explicit
    home = Path(os.environ.get("ENGINE_HOME") or "var")
    return URL.create("sqlite+aiosqlite", database=str(home / "engine.db")).render_as_string()


def resolve_url(url: str | URL | None = None) -> URL:
    """The async-driver URL for ``url`` (default: :func:`default_url`). ``sqlite://`` and ``postgresql://``
    (or ``postgres://``) are given their async drivers; other databases are refused."""
    raw = default_url() if url is None else url
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise DatabaseUnavailableError(f"not a database URL: {_mask(str(raw))!r}") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend == "sqlite" and driver in ("", "aiosqlite", "pysqlite"):
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql" and driver in ("", "asyncpg", "psycopg2", "psycopg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise DatabaseUnavailableError(
        f"unsupported database {parsed.drivername!r} in {display_url(parsed)}: use sqlite:///path/to/engine.db "
        "or postgresql://user:password@host/dbname"
    )


def display_url(url: str | URL) -> str:
    """The URL with its password hidden, fit for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _mask(str(url))


def _mask(text: str) -> str:
    # Only for strings SQLAlchemy cannot parse: hide whatever sits between "://user:" and "@".
    head, sep, rest = text.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{head}://{user}:***@{host}"
    return text


def create_engine_for(url: str | URL | None = None, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` with the connection set-up described in the module docstring.
    Extra keyword arguments go to :func:`sqlalchemy.ext.asyncio.create_async_engine`."""
    resolved = resolve_url(url)
    if resolved.get_backend_name() == "sqlite":
        _ensure_parent_dir(resolved)
        engine = create_async_engine(resolved, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    given = resolved
    resolved, settings = _split_pg_options(resolved)
    if settings:
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args["server_settings"] = {**settings, **connect_args.get("server_settings", {})}
        kwargs["connect_args"] = connect_args
    engine = create_async_engine(resolved, **kwargs)
    _GIVEN_URLS[engine.sync_engine] = given
    return engine


_GIVEN_URLS: weakref.WeakKeyDictionary[Any, URL] = weakref.WeakKeyDictionary()


def given_url(engine: AsyncEngine) -> URL:
    """The URL ``engine`` was made from by :func:`create_engine_for`, PostgreSQL ``options`` included:
    what another process needs to open the same database and schema (the engine's own URL lacks the
    options, moved into its connection arguments)."""
    return _GIVEN_URLS.get(engine.sync_engine, engine.url)


def _split_pg_options(url: URL) -> tuple[URL, dict[str, str]]:
    """libpq's ``?options=-c name=value ...`` (e.g. ``-c search_path=engine`` to keep the tables in a
    schema of their own), which asyncpg does not read from a URL, as asyncpg server settings."""
    raw = url.query.get("options")
    if raw is None:
        return url, {}
    tokens = " ".join(raw if isinstance(raw, tuple) else (raw,)).split()
    settings: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "-c" and i + 1 < len(tokens):
            token, i = tokens[i + 1], i + 1
        elif token.startswith(("-c", "--")):
            token = token[2:]
        else:
            raise DatabaseUnavailableError(f"unsupported PostgreSQL option {token!r}: use -c name=value")
        name, sep, value = token.partition("=")
        if not sep or not name:
            raise DatabaseUnavailableError(f"PostgreSQL option {token!r} is not name=value")
        settings[name.replace("-", "_")] = value
        i += 1
    return url.difference_update_query(["options"]), settings


def sqlite_path(url: str | URL | None = None) -> Path | None:
    """The file of a SQLite database URL (default: :func:`default_url`); None for anything else (a
    malformed URL included: opening the database reports that)."""
    try:
        resolved = resolve_url(url)
    except DatabaseUnavailableError:
        return None
    database = resolved.database or ""
    if (
        resolved.get_backend_name() != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        return None
    return Path(database).expanduser()


def _ensure_parent_dir(url: URL) -> None:
    """The database file's directory (0700 if created here) and the file itself, created 0600 before
    SQLite opens it: its -wal and -shm files then get the same mode (engine/private_files.py)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    make_private_file(Path(database).expanduser())


def _switch_to_wal(cursor: Any) -> None:
    """Put the file in WAL mode. Switching a fresh file needs an exclusive lock, and SQLite can answer
    "database is locked" at once, without its busy handler, when another process opens it at the same
    moment (two engines, or engine run and engine serve, starting together): retry until the timeout."""
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # the driver's OperationalError, as adapted by SQLAlchemy
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the driver: _sqlite_on_begin emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def session_factory(
    target: str | URL | AsyncEngine | None = None, *, for_reading: bool = False
) -> async_sessionmaker[AsyncSession]:
    """A factory of async sessions bound to ``target`` (a URL or an engine made by
    :func:`create_engine_for`). Objects stay usable after commit (``expire_on_commit=False``).

    Use one transaction per unit of work::

        async with factory() as session, session.begin():
            order = await save_order_intent(session, intent)
    """
    engine = target if isinstance(target, AsyncEngine) else create_engine_for(target)
    if for_reading:
        engine = engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
    return async_sessionmaker(engine, expire_on_commit=False)


async def run_with_session[T](
    work: Callable[[AsyncSession], Awaitable[T]], url: str | URL | None = None, *, upgrade_first: bool = True
) -> T:
    """Run ``work`` in one committed transaction on a fresh engine, then dispose of it.
    For one-shot commands (CLI, scripts), not for the long-running engine."""
    engine = create_engine_for(url)
    try:
        if upgrade_first:
            await upgrade_async(engine)
        async with async_sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def read_blocking[T](work: Callable[[AsyncSession], Awaitable[T]], url: str | URL | None = None) -> T:
    """Run the read ``work`` in one session on a fresh engine, on a private event loop in a worker thread,
    and wait for it. For synchronous callers that may sit inside a running loop (a strategy's rules
    evaluated by the runtime, a backtest started from the web app), where ``asyncio.run`` is refused.
    Exceptions are raised in the caller's thread."""
    import asyncio
    import threading

    result: list[T] = []
    failure: list[BaseException] = []

    async def read() -> None:
        engine = create_engine_for(url)
        try:
            async with session_factory(engine, for_reading=True)() as session:
                result.append(await work(session))
        finally:
            await engine.dispose()

    def run() -> None:
        try:
            asyncio.run(read())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="store-read")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


# -- migrations ---------------------------------------------------------------------------------------


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config(str(_ALEMBIC_INI))
    # Programmatic runs must not reconfigure the application's logging.
    config.attributes["configure_logger"] = False
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of the engine."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "engine/store/migrations has no revision"
    return head


async def upgrade_async(target: str | URL | AsyncEngine | None = None, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest) in one transaction. Safe to call on
    every start and from several processes at once: already-applied migrations are skipped, and
    concurrent upgrades wait for each other (write lock on SQLite, advisory lock on PostgreSQL)."""
    engine, owned = _engine_for(target)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_on, revision)
    finally:
        if owned:
            await engine.dispose()


def _upgrade_on(conn: Connection, revision: str) -> None:
    from alembic import command

    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
    config = _alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


async def current_revision_async(target: str | URL | AsyncEngine | None = None) -> str | None:
    """The migration the database is at, or None for a database never migrated."""
    engine, owned = _engine_for(target)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_on)
    finally:
        if owned:
            await engine.dispose()


def _current_on(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _engine_for(target: str | URL | AsyncEngine | None) -> tuple[AsyncEngine, bool]:
    if isinstance(target, AsyncEngine):
        return target, False
    return create_engine_for(target), True


def upgrade(url: str | URL | None = None, revision: str = "head") -> str | None:
    """Blocking :func:`upgrade_async` for the CLI; returns the revision the database is at afterwards."""

    async def _run() -> str | None:
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine, revision)
            return await current_revision_async(engine)
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def current_revision(url: str | URL | None = None) -> str | None:
    """Blocking :func:`current_revision_async` for the CLI."""
    return asyncio.run(current_revision_async(url))
