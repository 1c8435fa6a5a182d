"""Exits the exchange refuses or fills only in part (issue 4): the kernel gets the unsold amount back as
its position and sells it again at the next close, writes off dust, and the store, the kernel and the
exchange account agree, across a restart too. Against the signed fake Binance through the real ccxt
client (the ``world`` fixture), with the fake's ``refuse`` and ``partial_market`` faults."""

from __future__ import annotations

from decimal import Decimal as D
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from engine.runtime import BotRunner
from engine.store.models import Position, PositionStatus, Trade
from engine.trading import layout as L
from engine.trading.params import TradingParams
from engine.trading.trader import Candle, Signals, Trader
from tests.engine.runtime.helpers import INITIAL, database, db_events, db_orders, play, start_testnet_bot
from tests.fakes.binance_trading import FakeTrading

PAIR = "ETH/USDT"

# Enters after two rising candles; never leaves on a signal: every exit is the bot's 0.2% stop.
STOP_STRATEGY = """\
strategy: flip
description: enters after two rising candles; exits only by the stop
timeframe: 1m
entry:
  long: close > open and close[1] > open[1]
exit:
  long: close < 0
"""


def _with_stop(root: Path) -> None:
    (root / "strategies" / "flip.yaml").write_text(STOP_STRATEGY)
    bot = root / "bots" / "eth.yaml"
    bot.write_text(bot.read_text() + "risk:\n  stop_loss: 0.2%\n")


# --- the kernel: Trader.reopen / write_off ----------------------------------------------------------


def _stopped_trader() -> tuple[Trader, float]:
    """A trader whose long position (0.1 at 100) was stopped out inside a candle; returns it and the
    cash before the entry."""
    params = TradingParams(initial_capital=1000.0, max_per_trade=0.01, fee_taker=0.001, stop_loss=0.02)
    trader = Trader([PAIR, "BTC/USDT"], params, "1m")
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    trader.on_candle(PAIR, Candle(t0, 100, 100, 100, 100), Signals(entry_long=True))
    trader.on_candle(PAIR, Candle(t0 + pd.Timedelta(minutes=1), 100, 101, 99.5, 100.5), Signals())
    trader.on_candle(PAIR, Candle(t0 + pd.Timedelta(minutes=2), 100, 100, 90, 95), Signals())
    assert trader.state.n_trades == 1 and trader.position(PAIR) is None
    return trader, 1000.0


def test_reopen_undoes_a_whole_trade_and_restores_the_position() -> None:
    trader, initial = _stopped_trader()
    st = trader.state
    entry_fee = float(st.tr_f[0, L.T_FEE_IN])
    amount, entry = float(st.tr_f[0, L.T_AMOUNT]), float(st.tr_f[0, L.T_OPEN_PRICE])
    stop = float(st.pos_f[0, L.P_STOP])
    trader.reopen(0, amount)
    held = trader.position(PAIR)
    assert st.n_trades == 0 and held is not None
    assert held["amount"] == pytest.approx(amount) and held["entry_price"] == pytest.approx(entry)
    assert held["stop"] == pytest.approx(stop) and held["side"] == "long"
    # Only the entry was paid: cash as right after it; nothing realised.
    assert st.cash == pytest.approx(initial - amount * entry - entry_fee)
    assert st.acct_f[L.A_REALIZED] == pytest.approx(0.0, abs=1e-12)
    assert st.acct_f[L.A_FEES] == pytest.approx(entry_fee)
    assert st.acct_i[L.B_N_OPEN] == 1
    assert int(st.pos_i[0, L.Q_ENTRY_TIME]) == int(pd.Timestamp("2024-01-01 00:01", tz="UTC").value)


def test_reopen_part_of_a_trade_then_reprice_credits_only_what_was_sold() -> None:
    trader, initial = _stopped_trader()
    st = trader.state
    amount, entry = float(st.tr_f[0, L.T_AMOUNT]), float(st.tr_f[0, L.T_OPEN_PRICE])
    entry_fee = float(st.tr_f[0, L.T_FEE_IN])
    sold = amount * 0.25
    trader.reopen(0, amount - sold)
    fill = trader.reprice_exit(0, price=97.0, fee=0.01)
    assert fill.amount == pytest.approx(sold) and st.n_trades == 1
    assert trader.position(PAIR)["amount"] == pytest.approx(amount - sold)  # type: ignore[index]
    assert st.cash == pytest.approx(initial - amount * entry - entry_fee + sold * 97.0 - 0.01)
    assert st.tr_f[0, L.T_FEE_IN] == pytest.approx(entry_fee * 0.25)
    assert st.tr_f[0, L.T_PROFIT_ABS] == pytest.approx(sold * (97.0 - entry) - entry_fee * 0.25 - 0.01)


def test_reopen_renumbers_later_trades_and_refuses_a_held_pair() -> None:
    trader, _ = _stopped_trader()
    t = pd.Timestamp("2024-01-01 00:03", tz="UTC")
    trader.on_candle("BTC/USDT", Candle(t, 50, 50, 50, 50), Signals(entry_long=True))
    trader.on_candle("BTC/USDT", Candle(t + pd.Timedelta(minutes=1), 50, 50, 40, 45), Signals())
    st = trader.state
    assert st.n_trades == 2
    second = st.tr_f[1].copy()
    trader.reopen(0, float(st.tr_f[0, L.T_AMOUNT]) / 2)  # part of ETH's: it stays trade 0
    assert st.n_trades == 2
    with pytest.raises(ValueError, match="position is open"):
        trader.reopen(0, 0.001)  # ETH/USDT is held again
    trader.write_off(PAIR, time=t + pd.Timedelta(minutes=2))
    trader.reopen(0, float(st.tr_f[0, L.T_AMOUNT]))  # the rest of ETH's first trade: removed
    assert st.n_trades == 2 and np.array_equal(st.tr_f[0], second)


def test_write_off_closes_a_long_with_no_proceeds() -> None:
    trader, _ = _stopped_trader()
    st = trader.state
    trader.reopen(0, float(st.tr_f[0, L.T_AMOUNT]))
    cash = st.cash
    fill = trader.write_off(PAIR, time=pd.Timestamp("2024-01-01 00:03", tz="UTC"), reason="stop_loss")
    assert fill is not None and fill.price == 0.0 and fill.reason == "stop_loss"
    assert trader.position(PAIR) is None and st.cash == pytest.approx(cash)
    assert trader.write_off(PAIR, time=pd.Timestamp("2024-01-01 00:04", tz="UTC")) is None


# --- the runtime against the fake Binance -----------------------------------------------------------


def _account(trading: FakeTrading) -> tuple[D, D]:
    """The fake account's USDT and ETH (free + locked)."""

    def total(asset: str) -> D:
        return trading.free.get(asset, D(0)) + trading.locked.get(asset, D(0))

    return total("USDT"), total("ETH")


def _assert_kernel_is_the_account(runner: BotRunner, trading: FakeTrading, dust: D = D(0)) -> None:
    usdt, eth = _account(trading)
    assert runner.trader.state.cash == pytest.approx(float(usdt - D(10000) + INITIAL), abs=1e-6)
    held = runner.trader.position(PAIR)
    assert (float(held["amount"]) if held else 0.0) == pytest.approx(float(eth - dust), abs=1e-9)
    ids = [o.client_order_id for o in trading.orders.values()]
    assert len(ids) == len(set(ids))


async def _assert_store_is_the_kernel(factory, runner: BotRunner) -> None:
    async with factory() as session:
        trades = list((await session.execute(select(Trade).order_by(Trade.close_time, Trade.id))).scalars())
        open_rows = list(
            (await session.execute(select(Position).where(Position.status == PositionStatus.OPEN))).scalars()
        )
    kernel = runner.trader.trades()
    assert len(trades) == len(kernel)
    for row, (_, k) in zip(trades, kernel.iterrows(), strict=True):
        assert float(row.amount) == pytest.approx(k["amount"], rel=1e-9)
        assert float(row.close_price) == pytest.approx(k["close_price"], rel=1e-9)
        assert row.exit_reason == k["exit_reason"]
    held = runner.trader.position(PAIR)
    assert len(open_rows) == (1 if held else 0)
    if held:
        assert float(open_rows[0].amount) == pytest.approx(held["amount"], rel=1e-9)


def _same(a: dict | None, b: dict | None) -> bool:
    """Two positions equal, NaN levels included."""
    if a is None or b is None:
        return a is b
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and np.isnan(a[k]) and np.isnan(b[k])) for k in a
    )


def _held(runner: BotRunner) -> bool:
    return runner.trader.position(PAIR) is not None


async def test_a_stop_exit_refused_once_is_sold_at_the_next_close(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    _with_stop(root)
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=90)
        try:
            assert await play(runner, stop=lambda: _held(runner))
            entry = runner.trader.position(PAIR)
            trades = runner.trader.state.n_trades
            trading.refuse("SELL")
            assert await play(runner, stop=lambda: bool(runner._exit_retries))
            # The stop's trade is undone: the position is back as it was, the sale was not credited.
            assert _same(runner.trader.position(PAIR), entry)
            assert runner.trader.state.n_trades == trades
            assert "refused" in runner.view.last_error
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
            placed = trading.placements
            assert await play(runner, stop=lambda: trading.placements > placed)
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
        retry = await db_events(factory, kind="exit_retry")
    rejected = [o for o in orders if o.status.value == "rejected"]
    assert [o.reason for o in rejected] == ["stop_loss"]
    after = orders[orders.index(rejected[0]) + 1]
    # Sold at the next close under a new client id: a close order, or the stop again when the price is
    # still past it (the restored position keeps its stop, so the kernel finds it touched again).
    assert after.reason in ("close", "stop_loss") and after.client_order_id != rejected[0].client_order_id
    assert after.status.value == "filled" and after.side.value == "sell"
    assert float(after.amount) == pytest.approx(float(rejected[0].amount))
    assert len(retry) == 1 and retry[0].data["pair"] == PAIR  # type: ignore[index]


async def test_a_stop_exit_partly_filled_keeps_the_rest_and_sells_it_at_the_next_close(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    _with_stop(root)
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=90)
        try:
            assert await play(runner, stop=lambda: _held(runner))
            amount = float(runner.trader.position(PAIR)["amount"])  # type: ignore[index]
            trades = runner.trader.state.n_trades
            trading.partial_market("SELL", "0.5")
            assert await play(runner, stop=lambda: bool(runner._exit_retries))
            # The trade keeps the half sold, at the exchange's price; the other half is held again.
            held = runner.trader.position(PAIR)
            assert held is not None and held["amount"] == pytest.approx(amount / 2)
            assert runner.trader.state.n_trades == trades + 1
            last = runner.trader.trades().iloc[-1]
            assert last["amount"] == pytest.approx(amount / 2) and last["exit_reason"] == "stop_loss"
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
            placed = trading.placements
            assert await play(runner, stop=lambda: trading.placements > placed)
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
        partial = await db_events(factory, kind="partial")
    short = [o for o in orders if o.status.value == "cancelled" and o.filled < o.amount]
    assert len(short) == 1 and short[0].reason == "stop_loss" and short[0].error == "expired"
    after = orders[orders.index(short[0]) + 1]
    assert after.side.value == "sell" and after.status.value == "filled"
    assert float(after.amount) == pytest.approx(amount / 2)
    assert len(partial) == 1 and partial[0].data["amount"] == pytest.approx(amount / 2)  # type: ignore[index]
    assert partial[0].data["sold"] == pytest.approx(amount / 2)  # type: ignore[index]
    assert "filled" in partial[0].message and "sold again at the next close" in partial[0].message


@pytest.mark.parametrize("times", [1, 2])
async def test_a_close_exit_refused_is_sent_again_at_every_next_close(world, times: int) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world  # the flip strategy: leaves on a falling candle, no stop
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=90)
        try:
            assert await play(runner, stop=lambda: _held(runner))
            entry = runner.trader.position(PAIR)
            trading.refuse("SELL", times=times, code=-1013, msg="Market is closed.")
            assert await play(runner, stop=lambda: bool(runner._exit_retries))
            assert _same(runner.trader.position(PAIR), entry)
            assert "Market is closed" in runner.view.last_error
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
            accepted = len(trading.orders)
            assert await play(runner, stop=lambda: len(trading.orders) > accepted)
            assert not runner._exit_retries and runner.trader.position(PAIR) is None
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
            await play(runner)  # to the end of the replay: still in step
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
        retry = await db_events(factory, kind="exit_retry")
        failed = await db_events(factory, kind="failed")
    # ccxt maps Binance's "Market is closed." to MarketClosed: refused, not an invalid order.
    refused = [o for o in orders if o.status.value == "failed"]
    assert len(refused) == times and all(o.reason == "close" for o in refused)
    assert all("Market is closed" in (o.error or "") for o in refused)
    after = orders[orders.index(refused[-1]) + 1]
    assert after.reason == "close" and after.status.value == "filled"
    # One decision per close: each retry has its own client id and a later signal candle.
    tries = [*refused, after]
    assert len({o.client_order_id for o in tries}) == len(tries)
    assert all(a.signal_time < b.signal_time for a, b in pairwise(tries))  # type: ignore[operator]
    assert len(retry) == times and len(failed) == times and "Market is closed" in failed[0].message


async def test_an_entry_behind_a_refused_exit_of_its_pair_is_held_back() -> None:
    from engine.exchanges.base import ExchangeOrder, InsufficientFunds
    from engine.runtime.execution import PlannedOrder, SendResult
    from engine.runtime.exit_retry import EntryHeldBack, ExitRetry

    sent: list[str] = []

    class Execution:
        async def send(self, order: PlannedOrder) -> SendResult:
            sent.append(order.client_order_id)
            if order.pair == PAIR:
                return SendResult(order, error=InsufficientFunds("no ETH"))
            filled = ExchangeOrder("1", order.client_order_id, order.pair, order.side, "market",  # type: ignore[arg-type]
                                   order.amount, order.amount, D(1), "filled")  # fmt: skip
            return SendResult(order, order=filled)

    class Runner(ExitRetry):
        execution = Execution()  # type: ignore[assignment]

    plan = [
        PlannedOrder("a", PAIR, "sell", D("0.1"), "stop_loss", trade=0),
        PlannedOrder("b", "BTC/USDT", "sell", D("0.1"), "take_profit", trade=1),
        PlannedOrder("c", PAIR, "buy", D("0.1"), "open_long"),
        PlannedOrder("d", "BTC/USDT", "buy", D("0.1"), "open_long"),
    ]
    results = await Runner()._send_round(plan)
    assert sent == ["a", "b", "d"]
    assert isinstance(results[2].error, EntryHeldBack) and not results[2].rejected
    assert results[3].order is not None


async def test_dust_left_by_a_partial_exit_is_written_off_and_not_retried(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    _with_stop(root)
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=90)
        try:
            assert await play(runner, stop=lambda: _held(runner))
            trading.partial_market("SELL", "0.99")  # 1% of ~0.1 ETH left: ~2 USDT, below the 5 USDT minimum
            placed = trading.placements
            assert await play(runner, stop=lambda: trading.placements > placed)
            _, eth = _account(trading)
            assert D(0) < eth < D("0.002")
            assert runner.trader.position(PAIR) is None and not runner._exit_retries
            assert "min_notional" in runner.view.last_error and "can never be sold" in runner.view.last_error
            _assert_kernel_is_the_account(runner, trading, dust=eth)
            await _assert_store_is_the_kernel(factory, runner)
            written_off = runner.trader.trades().iloc[-1]
            assert written_off["close_price"] == 0.0 and written_off["amount"] == pytest.approx(float(eth))
            await play(runner)  # later trades leave the dust where it is
            _assert_kernel_is_the_account(runner, trading, dust=eth)
            await _assert_store_is_the_kernel(factory, runner)
        finally:
            await runner.close()
        dust = await db_events(factory, kind="dust")
    assert len(dust) == 1 and dust[0].category.value == "risk"
    assert dust[0].data["reason"] == "dust" and dust[0].data["rule"] == "min_notional"  # type: ignore[index]
    assert dust[0].data["amount"] == pytest.approx(float(eth))  # type: ignore[index]


async def test_a_restart_between_the_refusal_and_the_retry_keeps_everything_in_step(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    _with_stop(root)
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=90)
        try:
            assert await play(runner, stop=lambda: _held(runner))
            entry = runner.trader.position(PAIR)
            trading.refuse("SELL")
            assert await play(runner, stop=lambda: bool(runner._exit_retries))
        finally:
            await runner.close()
        # The engine goes down here; the restart restores the checkpoint and reconciles.
        restarted = await start_testnet_bot(root, factory, server, replay_minutes=90)
        try:
            assert _same(restarted.trader.position(PAIR), entry)
            assert restarted._exit_retries == {PAIR: "close"}
            _assert_kernel_is_the_account(restarted, trading)
            await _assert_store_is_the_kernel(factory, restarted)
            placed = trading.placements
            assert await play(restarted, stop=lambda: trading.placements > placed)
            _assert_kernel_is_the_account(restarted, trading)
            await _assert_store_is_the_kernel(factory, restarted)
            await play(restarted)
            _assert_kernel_is_the_account(restarted, trading)
            await _assert_store_is_the_kernel(factory, restarted)
        finally:
            await restarted.close()
        orders = await db_orders(factory)
    ids = [o.client_order_id for o in orders]
    assert len(ids) == len(set(ids))
    assert {o.client_order_id for o in trading.orders.values()} <= set(ids)


async def test_a_stop_exit_that_never_reached_the_exchange_is_undone_when_the_look_up_finds_nothing(
    world,
) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    _with_stop(root)
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=90)
        runner.execution.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.lookup_checks = 1  # type: ignore[union-attr]
        try:
            assert await play(runner, stop=lambda: _held(runner))
            entry = runner.trader.position(PAIR)
            trades = runner.trader.state.n_trades
            # The stop's order never arrives (503): its candle stores the trade with the order `sent`.
            server.faults.add("/api/v3/order", status=503, times=1, method="POST")
            assert await play(runner, stop=lambda: bool(runner._unresolved))
            assert runner.trader.position(PAIR) is None and runner.trader.state.n_trades == trades + 1
            await _assert_store_is_the_kernel(factory, runner)
            # The next candle's look-up finds no such order: the stored trade is undone, the position
            # is held again (and sold at that close or the next).
            assert await play(runner, stop=lambda: not runner._unresolved)
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
            await play(runner)
            _assert_kernel_is_the_account(runner, trading)
            await _assert_store_is_the_kernel(factory, runner)
        finally:
            await runner.close()
        orders = await db_orders(factory)
    lost = [o for o in orders if o.status.value == "failed" and o.reason == "stop_loss"]
    assert len(lost) == 1 and entry is not None
    assert trading.by_client_id(lost[0].client_order_id) is None


async def test_a_stop_exit_lost_before_a_restart_is_undone_by_the_reconciliation(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    _with_stop(root)
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=90)
        runner.execution.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.retries = 0  # type: ignore[union-attr]
        try:
            assert await play(runner, stop=lambda: _held(runner))
            entry = runner.trader.position(PAIR)
            trades = runner.trader.state.n_trades
            server.faults.add("/api/v3/order", status=503, times=1, method="POST")
            assert await play(runner, stop=lambda: bool(runner._unresolved))
        finally:
            await runner.close()  # down before any look-up
        restarted = await start_testnet_bot(root, factory, server, replay_minutes=90)
        try:
            # The reconciliation finds no such order: the stop's stored trade is undone.
            assert _same(restarted.trader.position(PAIR), entry)
            assert restarted.trader.state.n_trades == trades and restarted._exit_retries == {PAIR: "close"}
            _assert_kernel_is_the_account(restarted, trading)
            await _assert_store_is_the_kernel(factory, restarted)
            await play(restarted)
            _assert_kernel_is_the_account(restarted, trading)
            await _assert_store_is_the_kernel(factory, restarted)
        finally:
            await restarted.close()
        retry = await db_events(factory, kind="exit_retry")
    assert len(retry) == 1 and "stop_loss refused" in retry[0].message
