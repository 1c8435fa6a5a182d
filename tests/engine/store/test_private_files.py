"""State files are private whatever the umask (issue 15, weakness 7): the SQLite database, its WAL and
shared memory, the log files and the key files are 0600 in a 0700 ENGINE_HOME; existing wider files are
reported (``engine serve`` and ``engine run`` warn at start)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.observability import setup_logging
from engine.private_files import loose_state_warnings, make_private_file, state_paths
from engine.store.db import create_engine_for, sqlite_path, upgrade_async
from engine.web.auth.crypto import load_secret_box
from engine.web.auth.tokens import TokenKeys


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_wal_and_home_are_private(tmp_path: Path, open_umask: None) -> None:
    home = tmp_path / "a" / "home"
    engine = create_engine_for(f"sqlite:///{home / 'engine.db'}")
    await upgrade_async(engine)
    async with engine.connect() as conn:  # the WAL and shared-memory files exist while connected
        await conn.exec_driver_sql("SELECT 1")
        files = sorted(p.name for p in home.iterdir())
        assert {"engine.db", "engine.db-wal", "engine.db-shm"} <= set(files)
        assert {p.name: oct(_mode(p)) for p in home.iterdir()} == {n: "0o600" for n in files}
    await engine.dispose()
    assert _mode(home) == 0o700 and _mode(home.parent) == 0o700


def test_logs_and_keys_are_private(tmp_path: Path, open_umask: None) -> None:
    home = tmp_path / "home"
    TokenKeys.load_or_create(home)
    load_secret_box(home)
    setup = setup_logging(home / "logs", mode="paper", console="none")
    try:
        logging.getLogger("engine").error("something to write")
    finally:
        setup.close()
    logs = list((home / "logs").iterdir())
    assert logs and all(_mode(p) == 0o600 for p in logs)
    assert _mode(home / "logs") == 0o700 and _mode(home) == 0o700
    assert _mode(home / "jwt_private.pem") == _mode(home / "secret.key") == 0o600
    assert loose_state_warnings(state_paths(home)) == []


def test_existing_wide_files_are_reported_not_changed(tmp_path: Path) -> None:
    db = make_private_file(tmp_path / "home" / "engine.db")
    db.chmod(0o644)
    (tmp_path / "home" / "candles").mkdir(mode=0o755)  # a data directory inside is not state
    warnings = loose_state_warnings(state_paths(tmp_path / "home", sqlite_path(f"sqlite:///{db}")))
    assert warnings == [f"file {db} is mode 644: other users can read the engine's state; chmod 600 {db}"]
    assert _mode(db) == 0o644
