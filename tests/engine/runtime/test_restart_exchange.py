"""SIGKILL recovery of a testnet bot: a real ``engine run`` subprocess trades on the signed fake Binance
(served from this test process) and is killed while it holds a position and has orders whose outcome it
does not know; the restart reconciles them and runs to the end. Checked from the outside: no client id
reached the exchange twice, every fill of the exchange is in the engine's database, and the kernel's
cash and position follow the exchange account's flows."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pandas as pd
import pytest

from engine.runtime.checkpoint import load_state
from engine.trading import layout as L
from tests.engine.runtime.helpers import ENV, INITIAL
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
ORDER = "/api/v3/order"
PAIR = "ETH/USDT"

# Test-only wiring, run before the CLI in the subprocess: the bot's ccxt client talks to the fake (its
# URLs and options), and the retry budgets are cut so a failing exchange costs milliseconds, not minutes.
_PRELUDE = """
import engine.exchanges as _exchanges
import engine.runtime.execution as _execution
_make_exchange = _exchanges.make_exchange
def _to_the_fake(model, **kwargs):
    kwargs.update(api_urls={urls!r}, options={options!r})
    exchange = _make_exchange(model, **kwargs)
    exchange.retries, exchange.lookup_checks, exchange.lookup_delay = 0, 1, 0.05
    return exchange
_exchanges.make_exchange = _to_the_fake
_execution_init = _execution.ExchangeExecution.__init__
def _quick(self, *args, **kwargs):
    _execution_init(self, *args, **kwargs)
    self.retries, self.base_delay = 0, 0.01
_execution.ExchangeExecution.__init__ = _quick
"""


def _engine_run(root: Path, server: FakeBinance, *, timeout_ms: int, speed: str = "0") -> subprocess.Popen:
    options = {"options": server.ccxt_config()["options"], "rateLimit": 1, "timeout": timeout_ms}
    prelude = _PRELUDE.format(urls=server.ccxt_urls(), options=options)
    start = (pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=90)).strftime("%Y-%m-%d %H:%M")
    command = [
        sys.executable,
        "-c",
        prelude + "import engine.cli.cmd_run, engine.cli.cmd_status; from engine.cli import app; app()",
        "run", str(root / "bots"),
        "--replay", str(root / "data"),
        "--from", start,
        "--speed", speed,
        "--url", f"sqlite:///{root / 'engine.db'}",
        "--no-watch", "--no-dashboard",
        "--lease-ttl", "1",
    ]  # fmt: skip
    env = {**os.environ, **ENV}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


def _wait(proc: subprocess.Popen, until: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""  # type: ignore[union-attr]
            pytest.fail(f"the engine ended before {what}:\n{out[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode()
            pytest.fail(f"timed out waiting for {what}:\n{out[-3000:]}")
        time.sleep(0.01)


def _kill(proc: subprocess.Popen) -> None:
    proc.kill()  # SIGKILL: no cleanup, no goodbye to the exchange
    proc.wait()
    assert proc.returncode == -9
    time.sleep(1.2)  # the dead engine's lease expires


def _finish(root: Path, server: FakeBinance) -> None:
    restarted = _engine_run(root, server, timeout_ms=5000)
    out, _ = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, out.decode()[-3000:]


def _open_position(db: Path) -> bool:
    return bool(_query(db, "select 1 from positions where status = 'open'"))


def _status(db: Path, cid: str) -> str | None:
    rows = _query(db, "select status from orders where client_order_id = ?", cid)
    return rows[0][0] if rows else None


def _assert_ledger_follows_the_exchange(db: Path, trading: FakeTrading) -> None:
    """The engine's database and kernel against the fake account after the restart ran to the end."""
    fake = {o.client_order_id: o for o in trading.orders.values()}
    # No client id reached the exchange twice: every placement created an order (a repeated id would
    # have been refused as a duplicate and still counted as a placement) and the ids are distinct.
    assert trading.placements == len(fake) == len(trading.orders)
    assert all(cid.startswith("ye") for cid in fake)
    with sqlite3.connect(db) as con:
        orders = {
            cid: (status, D(str(filled)))
            for cid, status, filled in con.execute("select client_order_id, status, filled from orders")
        }
        fills = {
            trade_id: (cid, D(str(amount)), D(str(price)), D(str(fee)))
            for trade_id, cid, amount, price, fee in con.execute(
                "select f.exchange_trade_id, o.client_order_id, f.amount, f.price, f.fee"
                " from fills f join orders o on o.id = f.order_id"
            )
        }
        positions = con.execute("select pair, side, amount from positions where status = 'open'").fetchall()
        (state_text,) = con.execute("select state from checkpoints").fetchone()
        trades = con.execute(
            "select open_price, close_price, amount from trades order by close_time"
        ).fetchall()
    # Every order on the exchange is in the store, filled as the exchange says; the store's other
    # orders never reached it and ended as failed (none is left pending).
    for cid, order in fake.items():
        assert cid in orders, cid
        assert orders[cid] == ("filled", order.executed), cid
    assert all(status == "failed" for cid, (status, _) in orders.items() if cid not in fake)
    # Every fill of the exchange once, with its amount, price and fee; no fill the exchange lacks.
    expected = {
        str(t["id"]): (o.client_order_id, D(t["qty"]), D(t["price"]), D(t["commission"]))
        for o in fake.values()
        for t in o.trades
    }
    assert fills == expected
    # The kernel's cash and position equal the flows of the exchange account (quote and base).
    cash, base = D(0), D(0)
    for order in fake.values():
        for t in order.trades:
            value, qty, fee = D(t["quoteQty"]), D(t["qty"]), D(t["commission"])
            cash += -(value + fee) if order.side == "BUY" else value - fee
            base += qty if order.side == "BUY" else -qty
    state = load_state(state_text)
    assert state.cash == pytest.approx(float(INITIAL + cash), abs=1e-6)
    held = float(state.pos_f[0, L.P_AMOUNT]) if state.pos_i[0, L.Q_SIDE] else 0.0
    assert held == pytest.approx(float(base), abs=1e-9)
    # (The fake's balances keep more digits than the 8 of its trade reports.)
    assert trading.free.get("ETH", D(0)) == base
    assert float(trading.free["USDT"]) == pytest.approx(float(D(10000) + cash), abs=1e-6)
    # The position table agrees; every closed trade is a buy and a sell of the exchange, at its prices.
    assert [(p, s, float(a)) for p, s, a in positions] == ([(PAIR, "long", held)] if base else [])
    buys = [o for o in fake.values() if o.side == "BUY"]
    sells = [o for o in fake.values() if o.side == "SELL"]
    assert len(trades) == len(sells) and len(buys) - len(sells) == (1 if base else 0)
    for (open_price, close_price, amount), buy, sell in zip(trades, buys, sells, strict=False):
        assert float(open_price) == pytest.approx(float(buy.quote / buy.executed))
        assert float(close_price) == pytest.approx(float(sell.quote / sell.executed))
        assert float(amount) == pytest.approx(float(sell.executed))


def _events(db: Path, kind: str) -> list[dict]:
    return [json.loads(data) for (data,) in _query(db, "select data from events where kind = ?", kind)]


def test_sigkill_with_a_position_and_orders_of_unknown_outcome(world) -> None:  # type: ignore[no-untyped-def]
    """The entry fills; the exit reaches the exchange and fills there, but its answer comes after the
    client's timeout and every look-up fails, so the engine holds the position and the exit stays
    ``sent``; later exits do not even reach the exchange. Killed in that state. The restart finds the
    filled exit by its client id (the position is closed by its real fill), fails the ones the exchange
    never had, places nothing twice and trades on to the end of the replay."""
    root, server, trading = world
    db = root / "engine.db"
    trading.slow_ack(2.5, after=1)  # the first order answers at once, the second after the timeout
    # Paced (a 1m candle every 0.2 s) so that the replay is far from its end when the kill comes.
    proc = _engine_run(root, server, timeout_ms=1500, speed="300")
    _wait(proc, lambda: trading.held > 0, "the exit on the exchange")
    server.faults.add(ORDER, status=503, times=10_000)  # its look-ups (and later orders) fail
    (lost,) = [o.client_order_id for o in trading.orders.values() if o.side == "SELL"]
    assert trading.by_client_id(lost).status == "FILLED"  # type: ignore[union-attr]
    _wait(proc, lambda: bool(_events(db, "unknown")), "the engine giving up on the answer")
    _kill(proc)

    # At the kill: a position open, the exit filled on the exchange but sent as far as the engine knows.
    assert _open_position(db) and _status(db, lost) == "sent"
    pending = [cid for (cid,) in _query(db, "select client_order_id from orders where status = 'sent'")]
    placed = trading.placements
    assert placed == 2 and lost in pending
    server.faults.clear()

    _finish(root, server)
    reconciled = _events(db, "reconciled")[-1]
    assert reconciled["filled"] == [lost]
    assert sorted(reconciled["failed"]) == sorted(c for c in pending if c != lost)  # never reached it
    assert len(_events(db, "recovered")) == 1
    assert trading.placements > placed  # it traded on after the restart
    _assert_ledger_follows_the_exchange(db, trading)


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_sigkill_while_the_exchange_answers_an_order(world, side: str) -> None:  # type: ignore[no-untyped-def]
    """The narrowest window: the order is on the exchange (and filled) but its answer has not reached
    the engine, which is killed while waiting for it (the entry, or the exit of an open position). The
    store holds it as ``sent``; the restart finds it by its client id instead of placing it again."""
    root, server, trading = world
    db = root / "engine.db"
    # The answer of the first entry (BUY) or of the first exit (SELL) is held far beyond the kill.
    trading.slow_ack(60, after=0 if side == "BUY" else 1)
    proc = _engine_run(root, server, timeout_ms=90_000)
    _wait(proc, lambda: trading.held > 0, "the order on the exchange")
    (held,) = [o for o in trading.orders.values() if o.side == side]
    _kill(proc)

    assert held.status == "FILLED" and _status(db, held.client_order_id) == "sent"
    assert _open_position(db) == (side == "SELL")
    placed = trading.placements

    _finish(root, server)
    reconciled = _events(db, "reconciled")[-1]
    assert reconciled["filled"] == [held.client_order_id] and reconciled["failed"] == []
    assert trading.placements > placed
    _assert_ledger_follows_the_exchange(db, trading)


def _checkpoint(db: Path) -> int:
    rows = _query(db, "select time from checkpoints")
    return int(rows[0][0]) if rows else -1


def _next_entry_signal(server: FakeBinance, after_ns: int) -> int:
    """Open time (ns) of the first candle after ``after_ns`` on which the flip strategy asks to enter."""
    candles = server.market_data.markets[("ETHUSDT", False)].candles
    rising = candles.close > candles.open
    signals = rising & rising.shift(1, fill_value=False)
    again = signals[pd.Timestamp(after_ns, tz="UTC") + pd.Timedelta(minutes=1) :].idxmax()
    assert signals[again]  # the walk does ask to enter again before the end of the replay
    return int(again.value)


def test_sigkill_after_candles_with_an_entry_of_unknown_outcome(world) -> None:  # type: ignore[no-untyped-def]
    """The first entry fills on the exchange but its answer is lost and its look-ups keep failing while
    the strategy asks to enter again (two rising candles). The engine must not buy a second time: the
    kernel holds nothing, but the exchange may (and does). Killed just after that second entry signal;
    the restart finds the first entry filled and the kernel follows the exchange's one position."""
    root, server, trading = world
    db = root / "engine.db"
    trading.slow_ack(2.5)  # the first entry's answer comes after the client's timeout
    proc = _engine_run(root, server, timeout_ms=1500, speed="300")  # a 1m candle every 0.2 s
    _wait(proc, lambda: trading.held > 0, "the entry on the exchange")
    server.faults.add(ORDER, status=503, times=10_000, method="GET")  # look-ups fail, orders pass
    (entry,) = list(trading.orders.values())
    _wait(proc, lambda: bool(_events(db, "unknown")), "the engine giving up on the answer")
    again = _next_entry_signal(server, _checkpoint(db))
    _wait(proc, lambda: _checkpoint(db) >= again, "the candle of the second entry signal")
    _kill(proc)

    assert _status(db, entry.client_order_id) == "sent" and entry.status == "FILLED"
    assert [o.client_order_id for o in trading.orders.values()] == [entry.client_order_id]
    blocked = _query(db, "select message from events where kind = 'blocked'")
    assert any("order_pending" in m for (m,) in blocked), blocked
    server.faults.clear()
    _finish(root, server)
    reconciled = _events(db, "reconciled")[-1]
    assert entry.client_order_id in reconciled["filled"]
    _assert_ledger_follows_the_exchange(db, trading)


def test_sigkill_before_the_order_reaches_the_exchange(world) -> None:  # type: ignore[no-untyped-def]
    """Killed between the commit of the entry's intent and its arrival on the exchange (the request is
    held in the network and then lost). The restart finds no such order and marks the intent failed;
    the candle that decided it is played again and decides the same entry under the same client id,
    which now reaches the exchange once."""
    root, server, trading = world
    db = root / "engine.db"
    server.faults.add(ORDER, method="POST", delay=30, drop=True)  # the first order never arrives
    proc = _engine_run(root, server, timeout_ms=60_000)
    sent = lambda: _query(db, "select client_order_id from orders where status = 'sent'")  # noqa: E731
    _wait(proc, lambda: bool(sent()) and server.faults.pending() == 0, "the entry on its way")
    ((cid,),) = sent()
    _kill(proc)

    assert trading.orders == {} and trading.placements == 0 and not _open_position(db)
    _finish(root, server)
    reconciled = _events(db, "reconciled")[-1]
    assert reconciled["failed"] == [cid] and reconciled["filled"] == []
    first = next(iter(trading.orders.values()))
    assert first.client_order_id == cid and first.side == "BUY"  # decided again, placed once
    _assert_ledger_follows_the_exchange(db, trading)


def test_sigkill_with_an_entry_resting_on_the_exchange(world) -> None:  # type: ignore[no-untyped-def]
    """The exchange accepts the first entry but matches it later (answered ``NEW``, nothing filled).
    While it rests the engine keeps looking it up and sends no second entry; killed with it resting;
    the exchange fills it while the engine is down; the restart applies that fill to the kernel."""
    root, server, trading = world
    db = root / "engine.db"
    trading.rest_market()
    proc = _engine_run(root, server, timeout_ms=5000, speed="300")
    _wait(proc, lambda: bool(trading.orders), "the entry on the exchange")
    (entry,) = list(trading.orders.values())
    cid = entry.client_order_id
    _wait(proc, lambda: _status(db, cid) == "open", "the engine storing the answer")
    again = _next_entry_signal(server, _checkpoint(db))
    _wait(proc, lambda: _checkpoint(db) >= again, "the candle of the second entry signal")
    _kill(proc)

    assert entry.status == "NEW" and list(trading.orders.values()) == [entry]
    assert not _open_position(db)
    looked_up = [r for r in server.calls(ORDER) if r.method == "GET"]
    assert len(looked_up) >= 2  # followed at every candle, not forgotten after the first answer
    assert len(_events(db, "open")) == 1  # and recorded once, not at every look-up
    trading.fill(cid)  # matched while the engine is down
    _finish(root, server)
    assert cid in _events(db, "reconciled")[-1]["filled"]
    _assert_ledger_follows_the_exchange(db, trading)
