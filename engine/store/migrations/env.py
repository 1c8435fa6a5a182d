"""Alembic environment of the state database.

Programmatic runs (``engine.store.db.upgrade_async``) hand over an open connection inside a transaction
in ``config.attributes["connection"]``; the alembic CLI gets its URL from ``-x url=...``, then
``sqlalchemy.url`` in the ini file, then ``$ENGINE_DATABASE_URL`` / ``$ENGINE_HOME/engine.db``.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from engine.store.db import create_engine_for, default_url, resolve_url
from engine.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)


def _run_on(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _cli_url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or default_url()
    )


async def _run_online_cli() -> None:
    engine = create_engine_for(_cli_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    if config.config_file_name is not None and config.attributes.get("configure_logger", True):
        fileConfig(config.config_file_name)
    if context.is_offline_mode():
        context.configure(
            url=resolve_url(_cli_url()),
            target_metadata=target_metadata,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online_cli())


main()
