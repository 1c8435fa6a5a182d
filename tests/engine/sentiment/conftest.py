from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import create_engine_for, session_factory, upgrade_async


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()
