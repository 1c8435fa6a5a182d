"""A testnet bot against the signed fake Binance, through make_exchange and the real ccxt client: orders
reach the exchange with our client ids, the kernel follows the real fills, refusals and faults leave the
state consistent, and a restart reconciles what happened while the engine was down."""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
import pytest
from sqlalchemy import select

from engine.config import load_bot
from engine.data import DataDirectory
from engine.runtime import BotRunner, PortfolioLimits, PortfolioRisk, ReplayFeed
from engine.store.models import Bot, Fill, Order
from engine.trading import layout as L
from engine.trading.params import TradingParams
from engine.trading.trader import Candle, Signals, Trader
from tests.engine.exchanges.fake import API_KEY
from tests.engine.runtime.helpers import INITIAL, database, db_events, db_orders, play, start_testnet_bot
from tests.fakes.binance_trading import FakeTrading

ORDER = "/api/v3/order"


def _fake_flows(trading: FakeTrading) -> tuple[D, D]:
    """Quote cash flow and base amount of every fill on the fake account."""
    cash, base = D(0), D(0)
    for order in trading.orders.values():
        for t in order.trades:
            value, qty, fee = D(t["quoteQty"]), D(t["qty"]), D(t["commission"])
            if order.side == "BUY":
                cash -= value + fee
                base += qty
            else:
                cash += value - fee
                base -= qty
    return cash, base


def _assert_follows_exchange(runner: BotRunner, trading: FakeTrading) -> None:
    cash, base = _fake_flows(trading)
    assert runner.trader.state.cash == pytest.approx(float(INITIAL + cash), abs=1e-6)
    held = runner.trader.position("ETH/USDT")
    assert (float(held["amount"]) if held else 0.0) == pytest.approx(float(base), abs=1e-9)
    ids = [o.client_order_id for o in trading.orders.values()]
    assert len(ids) == len(set(ids)) and all(i.startswith("ye") for i in ids)


async def test_entries_and_exits_reach_the_exchange_and_the_kernel_follows_the_fills(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)
        try:
            await play(runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
        async with factory() as session:
            bot = (await session.execute(select(Bot))).scalar_one()
            fills = list((await session.execute(select(Fill))).scalars())
    assert bot.mode.value == "testnet" and bot.account.startswith("binance:testnet:")  # type: ignore[union-attr]
    assert API_KEY not in (bot.account or "")
    assert runner.view.mode == "testnet" and runner.view.account == bot.account
    reasons = {o.reason for o in orders}
    assert {"open_long", "close"} <= reasons, reasons
    # Every order the store holds is on the exchange, filled, under the same client id, once.
    on_exchange = {o.client_order_id: o for o in trading.orders.values()}
    assert {o.client_order_id for o in orders} == set(on_exchange)
    assert all(o.status.value == "filled" for o in orders)
    assert all(on_exchange[o.client_order_id].status == "FILLED" for o in orders)
    assert len(fills) == sum(len(o.trades) for o in trading.orders.values())
    _assert_follows_exchange(runner, trading)
    assert runner.sent and max(runner.sent) < 5.0


async def test_an_entry_refused_for_insufficient_funds_leaves_the_state_consistent(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    trading.free["USDT"] = D("6")  # above the minimum notional, far below the 200 USDT entries
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=20)
        try:
            await play(runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
        rejected = await db_events(factory, kind="rejected")
        errors = await db_events(factory, kind="order_rejected")
    assert orders and all(o.status.value == "rejected" for o in orders)
    assert all("InsufficientFunds" in (o.error or "") for o in orders)
    assert rejected and errors and all(e.data["mode"] == "testnet" for e in rejected)  # type: ignore[index]
    assert trading.orders == {}
    assert runner.trader.position("ETH/USDT") is None
    assert runner.trader.state.cash == pytest.approx(float(INITIAL))
    assert "InsufficientFunds" in runner.view.last_error


async def test_an_entry_below_the_minimum_notional_is_not_sent(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    bot = root / "bots" / "eth.yaml"
    bot.write_text(bot.read_text().replace("initial: 1000 USDT", "initial: 20 USDT"))  # 20% = 4 < 5 USDT
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=20)
        try:
            await play(runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
        blocked = await db_events(factory, kind="blocked")
    assert orders == [] and trading.placements == 0
    assert blocked and all(e.data["reason"] == "min_notional" for e in blocked)  # type: ignore[index]
    assert all("not sent" in e.message and "[testnet]" in e.message for e in blocked)
    assert runner.trader.state.cash == pytest.approx(20.0) and runner.trader.position("ETH/USDT") is None


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "timeout"])
async def test_exchange_faults_never_duplicate_an_order(world, fault: str) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    if fault == "rate_limit":
        server.faults.add(ORDER, status=429, retry_after=0.2, times=2)
    elif fault == "server_error":
        server.faults.add(ORDER, status=503, times=2)
    else:
        trading.slow_ack(2.0)  # accepted, answered after the client gave up (timeout 1.5 s)
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=30)
        try:
            await play(runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
    assert orders and server.faults.pending() == 0
    assert {o.client_order_id for o in orders} == {o.client_order_id for o in trading.orders.values()}
    assert trading.placements >= len(trading.orders)
    _assert_follows_exchange(runner, trading)


async def test_restart_reconciles_an_order_filled_while_the_engine_was_down(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)
        runner.execution.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.lookup_checks = 1  # type: ignore[union-attr]
        try:
            await play(runner, stop=lambda: runner.trader.position("ETH/USDT") is not None)
            # The next order reaches the exchange and fills, but every answer and look-up fails: the
            # engine goes down not knowing it.
            trading.slow_ack(2.0)  # accepted and filled; the answer comes after the client's timeout
            server.faults.add(ORDER, status=503, times=1000, after=1)  # then look-ups and resends fail
            await play(runner, stop=lambda: bool(runner._unresolved))
        finally:
            await runner.close()
        (cid,) = runner._unresolved
        assert trading.by_client_id(cid).status == "FILLED"  # type: ignore[union-attr]
        assert runner.trader.position("ETH/USDT") is not None  # the kernel does not know yet
        server.faults.clear()
        placed = trading.placements

        again = await start_testnet_bot(root, factory, server)
        try:
            assert trading.placements == placed  # recovery places nothing
            assert again.trader.position("ETH/USDT") is None  # the exit filled while down, applied
            _assert_follows_exchange(again, trading)
            await play(again)
        finally:
            await again.close()
        orders = await db_orders(factory)
        reconciled = await db_events(factory, kind="reconciled")
    assert cid in reconciled[-1].data["filled"]  # type: ignore[index]
    assert {o.client_order_id for o in orders} == {o.client_order_id for o in trading.orders.values()}
    assert [o.status.value for o in orders if o.client_order_id == cid] == ["filled"]
    _assert_follows_exchange(again, trading)


async def test_crash_between_commit_and_send_is_marked_failed_at_restart(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)

        async def crash(planned):  # type: ignore[no-untyped-def]
            raise SystemExit("killed before sending")

        runner.execution.send = crash  # type: ignore[method-assign,union-attr]
        try:
            with pytest.raises(SystemExit):
                await play(runner)
        finally:
            await runner.close()
        (pending,) = [o for o in await db_orders(factory) if o.status.value == "sent"]
        assert trading.by_client_id(pending.client_order_id) is None

        again = await start_testnet_bot(root, factory, server, replay_minutes=5)
        await again.close()
        (after,) = [o for o in await db_orders(factory) if o.client_order_id == pending.client_order_id]
    assert after.status.value == "failed" and "not found" in (after.error or "")
    assert trading.orders == {}
    assert again.trader.position("ETH/USDT") is None


async def test_request_close_exits_at_the_next_close(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)
        try:
            assert runner.request_close("ETH/USDT") is False  # nothing held
            await play(runner, stop=lambda: runner.trader.position("ETH/USDT") is not None)
            assert runner.request_close("ETH/USDT") is True
            await play(runner, stop=lambda: True)  # one more candle
            assert runner.trader.position("ETH/USDT") is None
        finally:
            await runner.close()
        requested = await db_events(factory, kind="close_requested")
    assert len(requested) == 1 and requested[0].data["mode"] == "testnet"  # type: ignore[index]
    _assert_follows_exchange(runner, trading)


async def test_paper_request_close_fills_at_the_following_open_like_an_exit_signal(world) -> None:  # type: ignore[no-untyped-def]
    root, _server, trading = world
    bot = root / "bots" / "eth.yaml"
    bot.write_text(bot.read_text().replace("mode: testnet", "mode: paper"))
    loaded = load_bot(bot)
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=60)
    feed = ReplayFeed(DataDirectory(root / "data"), start=start)
    async with database(root) as factory:
        runner = BotRunner(loaded, factory, feed, PortfolioRisk(PortfolioLimits()))
        await runner.start()
        assert runner.mode == "paper" and runner.execution is None

        def held_without_exit() -> bool:  # an exit signal on that close would fill before the request
            state = runner.trader.state
            return runner.trader.position("ETH/USDT") is not None and not state.pos_i[0, L.Q_PEND_EXIT]

        await play(runner, stop=held_without_exit)
        assert runner.request_close("ETH/USDT") is True
        await play(runner, stop=lambda: True)  # the close where the exit is decided
        decided = runner.view.last_candle
        await play(runner, stop=lambda: True)  # the open where it fills
        async with factory() as session:
            rows = list((await session.execute(select(Order).where(Order.reason == "close"))).scalars())
        requested = await db_events(factory, kind="close_requested")
    assert trading.placements == 0  # paper: nothing reaches an exchange
    assert len(requested) == 1 and requested[0].data["mode"] == "paper"  # type: ignore[index]
    last = runner.trader.trades().iloc[-1]
    assert last["exit_reason"] == "exit_signal"
    assert last["close_time"] == decided + pd.Timedelta(minutes=1)
    assert rows and rows[-1].status.value == "filled"


# --- the Trader's execution API ---------------------------------------------------------------------


def _trader() -> tuple[Trader, pd.Timestamp]:
    params = TradingParams(initial_capital=1000.0, max_per_trade=0.5, fee_taker=0.001, stop_loss=0.02)
    trader = Trader(["ETH/USDT"], params, "1m")
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    trader.on_candle("ETH/USDT", Candle(t0, 100, 101, 99, 100), Signals(entry_long=True))
    return trader, t0


def test_apply_external_fill_opens_and_closes_at_the_real_prices() -> None:
    trader, t0 = _trader()
    amount, why = trader.entry_preview("ETH/USDT", 100.0, t0 + pd.Timedelta(minutes=1))
    assert why is None and amount == pytest.approx(5.0, rel=0.01)
    fill = trader.apply_external_fill(
        "ETH/USDT", price=100.5, amount=4.9, fee=0.49, time=t0 + pd.Timedelta(minutes=1)
    )
    assert fill.action == "open" and trader.state.cash == pytest.approx(1000 - 4.9 * 100.5 - 0.49)
    held = trader.position("ETH/USDT")
    assert held["amount"] == 4.9 and held["stop"] == pytest.approx(100.5 * 0.98)  # type: ignore[index]
    # The kernel does not fill it again at the next open: it reports the external fill as that open's.
    cash = trader.state.cash
    events = trader.on_candle("ETH/USDT", Candle(t0 + pd.Timedelta(minutes=1), 101, 102, 100, 101), Signals())
    opens = [e for e in events if getattr(e, "action", None) == "open"]
    assert [(e.price, e.amount) for e in opens] == [(100.5, 4.9)] and trader.state.cash == cash
    assert trader.request_exit("ETH/USDT")
    closed = trader.apply_external_fill(
        "ETH/USDT", price=103.0, amount=4.9, fee=0.5, time=t0 + pd.Timedelta(minutes=2)
    )
    assert closed.action == "close" and trader.position("ETH/USDT") is None
    assert trader.state.cash == pytest.approx(1000 - 4.9 * 100.5 - 0.49 + 4.9 * 103.0 - 0.5)
    trade = trader.trades().iloc[-1]
    assert trade["close_price"] == 103.0 and trade["profit_abs"] == pytest.approx(4.9 * 2.5 - 0.99)


def test_partial_exit_keeps_the_rest_and_reprice_moves_a_stop_exit() -> None:
    trader, t0 = _trader()
    trader.apply_external_fill(
        "ETH/USDT", price=100.0, amount=4.0, fee=0.0, time=t0 + pd.Timedelta(minutes=1)
    )
    trader.apply_external_fill(
        "ETH/USDT", price=110.0, amount=1.0, fee=0.0, time=t0 + pd.Timedelta(minutes=2)
    )
    assert trader.position("ETH/USDT")["amount"] == pytest.approx(3.0)  # type: ignore[index]
    assert trader.state.cash == pytest.approx(1000 - 400 + 110)
    # A stop inside the next candle: the kernel fills at its stop (98); the exchange got 97.
    events = trader.on_candle("ETH/USDT", Candle(t0 + pd.Timedelta(minutes=3), 100, 100, 95, 96), Signals())
    (stop,) = [e for e in events if getattr(e, "reason", "") == "stop_loss"]
    assert stop.price == pytest.approx(98.0)
    trader.reprice_exit(trader.state.n_trades - 1, price=97.0, fee=0.3)
    assert trader.state.cash == pytest.approx(1000 - 400 + 110 + 3 * 97.0 - 0.3)
    assert trader.trades().iloc[-1]["close_price"] == 97.0
    assert trader.cancel_pending("ETH/USDT") is False


async def test_late_candles_back_filled_after_an_outage_send_no_entries(world) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    root, server, trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=20)
        try:
            async for batch in runner.feed.batches():
                await runner.on_batch(replace(batch, late=True))
        finally:
            await runner.close()
        orders = await db_orders(factory)
        blocked = await db_events(factory, kind="blocked")
    assert orders == [] and trading.placements == 0
    assert blocked and all(e.data["reason"] == "late_candle" for e in blocked)  # type: ignore[index]
    assert runner.trader.position("ETH/USDT") is None and runner.trader.state.cash == pytest.approx(1000.0)


async def test_late_candles_still_send_exits(world) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    root, server, _trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)
        try:
            held = False
            async for batch in runner.feed.batches():
                await runner.on_batch(replace(batch, late=held))
                held = held or runner.trader.position("ETH/USDT") is not None
                if held and runner.trader.position("ETH/USDT") is None:
                    break  # the position was closed on a late candle
        finally:
            await runner.close()
        orders = await db_orders(factory)
    assert held and runner.trader.position("ETH/USDT") is None
    assert [o.side.value for o in orders] == ["buy", "sell"]  # the entry on time, the exit though late
