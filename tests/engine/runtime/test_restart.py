"""A SIGKILLed engine restarts from its last committed candle: the final trades equal an uninterrupted
run of the same replay and no order was placed twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.runtime.helpers import database, make_runtime

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def _engine_run(root: Path, db: Path, speed: str = "0") -> subprocess.Popen:
    command = [
        sys.executable,
        "-c",
        "import engine.cli.cmd_run, engine.cli.cmd_status; from engine.cli import app; app()",
        "run",
        str(root / "bots"),
        "--replay",
        str(root / "data"),
        "--speed",
        speed,
        "--url",
        f"sqlite:///{db}",
        "--no-watch",
        "--no-dashboard",
        "--lease-ttl",
        "1",
    ]  # fmt: skip  (only our commands: the CLI must not depend on other modules here)
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _ledger(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as con:
        return {
            "trades": con.execute(
                "select b.name, t.pair, t.side, t.open_time, t.close_time, t.open_price, t.close_price, t.amount,"
                " t.profit_abs, t.fees, t.exit_reason from trades t join bots b on b.id = t.bot_id"
                " order by b.name, t.close_time, t.id"
            ).fetchall(),
            "orders": con.execute(
                "select b.name, o.client_order_id, o.pair, o.side, o.status, o.amount, o.filled"
                " from orders o join bots b on b.id = o.bot_id order by o.client_order_id"
            ).fetchall(),
            "positions": con.execute(
                "select b.name, p.pair, p.side, p.amount, p.entry_price from positions p"
                " join bots b on b.id = p.bot_id where p.status = 'open' order by b.name, p.pair"
            ).fetchall(),
            "fills": con.execute("select count(*), count(distinct order_id) from fills").fetchall(),
        }


async def test_sigkill_mid_run_then_restart_matches_an_uninterrupted_run(workspace):
    reference = workspace / "reference.db"
    killed = workspace / "killed.db"

    proc = _engine_run(workspace, killed)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        open_positions = _count(killed, "select count(*) from positions where status = 'open'")
        if _count(killed, "select count(*) from trades") >= 6 and open_positions >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the engine finished before it could be killed"
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait()
    trades_at_kill = _count(killed, "select count(*) from trades")
    time.sleep(1.2)  # the killed engine's lease expires

    restarted = _engine_run(workspace, killed)
    out, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, out.decode()[-3000:]

    ref = _engine_run(workspace, reference)
    out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, out.decode()[-3000:]

    got, expected = _ledger(killed), _ledger(reference)
    assert trades_at_kill < len(expected["trades"])
    assert got["trades"] == expected["trades"]
    assert got["orders"] == expected["orders"]  # same client ids: none placed twice, none lost
    assert got["positions"] == expected["positions"]
    assert got["fills"] == expected["fills"]
    with sqlite3.connect(killed) as con:
        recovered = con.execute("select count(*) from events where kind = 'recovered'").fetchone()[0]
    assert recovered == 2


async def test_restart_in_process_resumes_where_it_stopped(workspace):
    """The same guarantee without a process boundary: stop after some candles, start a new runtime."""
    async with database(workspace) as factory:
        first = make_runtime(workspace, factory, end="2024-01-01 08:00")
        await first.run()
        second = make_runtime(workspace, factory, end="2024-01-01 16:00")
        await second.run()
        views = {v.name: v for v in second.views()}
    # The second runtime only processed the candles after the first one's last.
    assert views["eth-btc-trend"].candles == 8 * 12


def test_sigterm_stops_gracefully(workspace):
    db = workspace / "term.db"
    proc = _engine_run(workspace, db, speed="6000")  # a 5m candle every 0.05 s
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _count(db, "select count(*) from trades") < 1:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert b"engine run: stopped" in out
    with sqlite3.connect(db) as con:
        assert con.execute("select distinct status from bots").fetchall() == [("stopped",)]
        assert con.execute("select count(*) from engine_leases").fetchone()[0] == 0
        candles = con.execute("select max(time) from equity_snapshots").fetchone()[0]
    assert candles < "2024-01-02 23:55"  # stopped before the end of the replay
