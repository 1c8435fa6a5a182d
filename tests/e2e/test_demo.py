"""``engine demo`` as the README runs it: from a clean directory, no network, no data: sample candles,
the example bots trading on a replay, the web app on one port, the first admin from the environment."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, ROOT, _free_port

pytestmark = pytest.mark.slow


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_demo_serves_the_web_app_while_the_example_bots_trade(tmp_path: Path) -> None:
    # The example project as a user clones it: bots, strategies and the files their rules read (models,
    # calendars, feeds.yaml).
    for folder in ("bots", "strategies", "models", "calendars"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "feeds.yaml", tmp_path / "feeds.yaml")
    home = tmp_path / "var"
    env = {**os.environ, "ENGINE_HOME": str(home), "ENGINE_DEMO_ADMIN_PASSWORD": PASSWORD}
    for name in [n for n in env if n.startswith(("PYTEST", "ENGINE_DATABASE_URL", "ENGINE_SECRET_KEY"))]:
        env.pop(name)
    port = _free_port()
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        demo = subprocess.Popen(
            [str(Path(sys.executable).with_name("engine")), "demo", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    db = home / "engine.db"
    try:
        deadline = time.monotonic() + 120
        trades = 0
        while time.monotonic() < deadline:
            assert demo.poll() is None, log_path.read_text()
            trades = _count(db, "SELECT count(*) FROM trades")
            if trades:
                break
            time.sleep(1)
        output = log_path.read_text()
        assert trades > 0, f"no trade within two minutes:\n{output}"
        bots = len(list((ROOT / "bots").glob("*.yaml")))
        assert f"{bots + len(list((ROOT / 'strategies').glob('*.yaml')))} files OK" in output
        assert f"http://127.0.0.1:{port}/" in output
        assert "created admin admin" in output
        assert (home / "demo-data" / "SYNTHETIC.txt").exists()
        assert _count(db, "SELECT count(*) FROM bots WHERE mode = 'paper'") == bots

        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/login", timeout=10).status_code == 200
        r = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "2fa_setup_required"
        assert httpx.get(f"{base}/bots/", timeout=10).status_code == 401
    finally:
        demo.terminate()
        demo.wait(timeout=60)
    # uvicorn re-raises the signal after its graceful shutdown: killed by SIGTERM, but only after the
    # runtime stopped every bot and released its lease (the shutdown hook).
    assert demo.returncode in (0, -signal.SIGTERM), log_path.read_text()
    assert "Traceback" not in log_path.read_text()
    assert _count(db, "SELECT count(*) FROM bots WHERE status != 'stopped'") == 0
    assert _count(db, "SELECT count(*) FROM engine_leases") == 0
