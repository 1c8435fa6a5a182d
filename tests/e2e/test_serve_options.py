"""``engine serve --run/--replay/--insecure-http`` and ``engine demo`` options: refusals with a clear
message, where the demo's replay resumes, and what --insecure-http changes on the wire."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.demo import DEMO_REPLAY_FROM, replay_start
from engine.store.db import run_with_session
from engine.store.models import Bot, EquitySnapshot
from tests.e2e.conftest import PASSWORD, ROOT, _free_port

_register()
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path))
    monkeypatch.delenv("ENGINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("ENGINE_DEMO_ADMIN_PASSWORD", raising=False)
    return tmp_path


def test_serve_refuses_replay_without_bots_and_missing_directories(home: Path) -> None:
    result = runner.invoke(app, ["serve", "--replay", str(home)])
    assert result.exit_code == 2 and "--replay needs --run BOTS_DIR" in result.stderr
    result = runner.invoke(app, ["serve", "--run", str(home / "nope")])
    assert result.exit_code == 2 and "not a directory of bot files" in result.stderr
    result = runner.invoke(app, ["serve", "--run", str(ROOT / "bots"), "--replay", str(home / "nope")])
    assert result.exit_code == 2 and "data directory not found" in result.stderr
    result = runner.invoke(app, ["serve", "--insecure-http", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "--insecure-http only with a loopback --host" in result.stderr


def test_demo_refuses_a_bad_admin_password_before_doing_anything(home: Path) -> None:
    result = runner.invoke(app, ["demo", "--admin-password-file", str(home / "missing.txt")])
    assert result.exit_code == 2 and "--admin-password-file" in result.stderr
    weak = home / "pw.txt"
    weak.write_text("short\n")
    result = runner.invoke(app, ["demo", "--admin-password-file", str(weak)])
    assert result.exit_code == 2 and "the first admin's password" in result.stderr
    result = runner.invoke(app, ["demo"], env={"ENGINE_DEMO_ADMIN_PASSWORD": "short"})
    assert result.exit_code == 2 and "the first admin's password" in result.stderr
    assert not (home / "demo-data").exists()


def test_demo_replay_resumes_where_the_slowest_bot_stopped(home: Path) -> None:
    assert replay_start() == DEMO_REPLAY_FROM  # a fresh database

    async def add(db) -> None:
        fast, slow = (
            Bot(name="fast", mode="paper", config_hash="x"),
            Bot(name="slow", mode="paper", config_hash="y"),
        )
        db.add_all([fast, slow])
        await db.flush()
        for bot, times in ((fast, ("2024-01-09 10:00", "2024-01-09 12:00")), (slow, ("2024-01-09 08:05",))):
            for at in times:
                db.add(
                    EquitySnapshot(
                        bot_id=bot.id,
                        time=datetime.fromisoformat(at).replace(tzinfo=UTC),
                        equity=1.0,
                        cash=1.0,
                    )
                )
        # The portfolio's own snapshots (no bot) do not count.
        db.add(EquitySnapshot(bot_id=None, time=datetime(2024, 1, 1, tzinfo=UTC), equity=2.0, cash=2.0))

    asyncio.run(run_with_session(add))
    assert replay_start() == "2024-01-09 08:05"


@pytest.mark.slow
def test_insecure_http_drops_only_the_secure_flag(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ENGINE_HOME": str(tmp_path),
        "ENGINE_DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}",
    }
    for name in [n for n in env if n.startswith("PYTEST")]:
        env.pop(name)
    engine = str(Path(sys.executable).with_name("engine"))
    subprocess.run(
        [engine, "users", "create", "-u", "root", "-e", "r@example.org", "-r", "admin"],
        env=env,
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    server = subprocess.Popen(
        [engine, "serve", "--port", str(port), "--insecure-http"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None and time.monotonic() < deadline
            try:
                page = httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        cookie = page.headers.get("set-cookie", "").lower()
        assert "samesite=strict" in cookie and "max-age=28800" in cookie and "httponly" in cookie
        assert "secure" not in cookie
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "warning: --insecure-http" in output
