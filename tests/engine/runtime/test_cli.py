"""engine run's refusals: an unreachable exchange for live data, a held lease, bad flags."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from typer.testing import CliRunner

import engine.cli.cmd_run
import engine.cli.cmd_status  # noqa: F401 - registers the commands
from engine.cli import app
from engine.runtime import LEASE_NAME
from tests.engine.runtime.helpers import database, db_url


def _run(*args: str):
    return CliRunner().invoke(app, ["run", *args])


def test_run_without_replay_says_when_the_exchange_is_unreachable(workspace, monkeypatch):
    import ccxt.async_support as ccxt_async

    from engine.runtime import live_feed

    def unreachable(source):
        # Nothing listens on port 9 of the loopback: the same failure as no network, on any machine.
        client = ccxt_async.binance({"timeout": 2000})
        client.urls["api"] = {name: "http://127.0.0.1:9/api/v3" for name in client.urls["api"]}
        return client

    monkeypatch.setattr(live_feed, "make_market_client", unreachable)
    result = _run(str(workspace / "bots"), "--url", db_url(workspace), "--no-watch")
    assert result.exit_code == 2
    assert "cannot reach binance" in result.output and "use --replay DIR" in result.output


def test_run_refuses_bad_input(workspace):
    assert "not a directory" in _run(str(workspace / "nope")).output
    result = _run(str(workspace / "bots"), "--replay", str(workspace / "nope"))
    assert result.exit_code == 2 and "data directory not found" in result.output
    result = _run(str(workspace / "bots"), "--replay", str(workspace / "data"), "--daily-loss-limit", "-1")
    assert result.exit_code == 2 and "daily_loss_limit must be a positive ratio" in result.output


def test_run_refuses_while_another_engine_holds_the_database(workspace):
    from engine.store import acquire_lease

    async def hold():
        async with database(workspace) as factory:
            await acquire_lease(factory, LEASE_NAME, "other-engine", ttl=timedelta(minutes=5))

    asyncio.run(hold())
    result = _run(
        str(workspace / "bots"), "--replay", str(workspace / "data"), "--url", db_url(workspace), "--no-watch"
    )
    assert result.exit_code == 1
    assert "another engine is running on this database" in result.output
    assert "other-engine" in result.output


def test_status_on_an_empty_database(workspace):
    async def create():
        async with database(workspace):
            pass

    asyncio.run(create())
    result = CliRunner().invoke(app, ["status", "--url", db_url(workspace)])
    assert result.exit_code == 0
    assert "no bots in the database yet" in result.output


def test_run_writes_the_category_log_files(workspace, monkeypatch):
    import json

    from engine.observability import setup_logging

    monkeypatch.setenv("ENGINE_HOME", str(workspace))
    try:
        result = _run(
            str(workspace / "bots"),
            "--replay",
            str(workspace / "data"),
            "--url",
            db_url(workspace),
            "--no-watch",
            "--no-dashboard",
        )
    finally:
        setup_logging(None, mode="paper", console="none").close()  # undo the command's handlers
    assert result.exit_code == 0, result.output
    logs = workspace / "logs"
    assert {"trades.jsonl", "all.jsonl"} <= {p.name for p in logs.iterdir()}
    trades = [json.loads(line) for line in (logs / "trades.jsonl").read_text().splitlines()]
    assert trades and all(t["category"] == "trades" and t["mode"] == "paper" for t in trades)
