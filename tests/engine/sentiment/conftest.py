"""The store the sentiment tests write to: SQLite, and PostgreSQL too when ``ENGINE_TEST_POSTGRES_URL``
names a reachable server (as the store tests do; .ci/run starts one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.store import create_engine_for, session_factory, upgrade_async
from tests.engine.store.conftest import POSTGRES_ENV, create_postgres_schema, drop_postgres_schema


@pytest.fixture(params=("sqlite", "postgresql"))
async def sessions(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "postgresql":
        if not os.environ.get(POSTGRES_ENV):
            pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} (.ci/run starts a server)")
        url = await create_postgres_schema()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}"
    engine = create_engine_for(url)
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()
    if request.param == "postgresql":
        await drop_postgres_schema(url)
