"""A SIGKILLed engine restarts from its last committed candle: the final trades equal an uninterrupted
run of the same replay and no order was placed twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.engine.runtime.helpers import database, make_runtime

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def _engine_run(root: Path, db: Path, speed: str = "0", prelude: str = "") -> subprocess.Popen:
    command = [
        sys.executable,
        "-c",
        prelude + "import engine.cli.cmd_run, engine.cli.cmd_status; from engine.cli import app; app()",
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


# Dies inside the bookkeeping transaction of the third candle that decided orders: that candle's order
# intents are committed (their own transaction, before), its fills, equity and checkpoint are not.
_DIE_AFTER_INTENTS = """
import os
from engine.runtime.bot import BotRunner
from engine.trading.trader import Order
_bookkeeping = BotRunner._commit
_seen = [0]
async def _die_after_intents(self, session, work, *args, **kwargs):
    if any(isinstance(e, Order) for e in work.events):
        _seen[0] += 1
        if _seen[0] == 3:
            print("dying after the intents of", self.name, work.time_ns, flush=True)
            os._exit(9)
    return await _bookkeeping(self, session, work, *args, **kwargs)
BotRunner._commit = _die_after_intents
"""


def test_death_between_the_intent_commit_and_the_bookkeeping_commit(workspace):
    """The restart restores the checkpoint before the candle, decides the same orders again with the
    same client ids, finds their intents stored and places nothing twice: the ledger equals a run
    that never died."""
    died = workspace / "died.db"
    reference = workspace / "reference.db"
    proc = _engine_run(workspace, died, prelude=_DIE_AFTER_INTENTS)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 9, out.decode()[-3000:]
    bot, time_ns = out.decode().split("dying after the intents of ")[1].split()[:2]
    with sqlite3.connect(died) as con:
        checkpoint = con.execute(
            "select c.time from checkpoints c join bots b on b.id = c.bot_id where b.name = ?", (bot,)
        ).fetchone()[0]
        ahead = con.execute(
            "select count(*) from orders o join bots b on b.id = o.bot_id where b.name = ?"
            " and substr(o.signal_time, 1, 19) = ? and o.status = 'sent'",
            (bot, str(pd.Timestamp(int(time_ns), tz="UTC").tz_localize(None))),
        ).fetchone()[0]
    # The crash point: the candle's intents are in, its checkpoint is still the candle before.
    assert checkpoint < int(time_ns) and ahead >= 1
    time.sleep(1.2)  # the dead engine's lease expires

    restarted = _engine_run(workspace, died)
    out, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, out.decode()[-3000:]
    ref = _engine_run(workspace, reference)
    out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, out.decode()[-3000:]

    got, expected = _ledger(died), _ledger(reference)
    assert got["orders"] == expected["orders"]  # same client ids, none twice
    assert got["trades"] == expected["trades"]
    assert got["positions"] == expected["positions"]
    assert got["fills"] == expected["fills"]


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
