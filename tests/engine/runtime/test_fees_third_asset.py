"""Fees paid in a third asset (Binance's "pay fees with BNB"): a testnet bot against the signed fake
Binance through the real ccxt client values them at the BNB/quote price the exchange serves (asked once
a minute), charges the kernel's cash that much, stores it on the trades, and counts a fee without any
price as 0 with a visible event, never losing the fill."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from engine.store.models import Fill, Trade
from tests.engine.runtime.helpers import (
    INITIAL,
    build_testnet_world,
    database,
    db_events,
    play,
    start_testnet_bot,
)
from tests.fakes.binance_market import FakeMarket
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading

ORDER = "/api/v3/order"
TICKER = "/api/v3/ticker/24hr"
BNB_PRICE = D(600)


def _flat(index: pd.DatetimeIndex, price: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"open": price, "high": price, "low": price, "close": price, "volume": 10.0}, index=index
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, FakeBinance, FakeTrading]]:
    """Bot files, replay candles ending now, and a fake Binance with ETH/USDT and a flat BNB/USDT market
    whose account pays its 0.1% commissions in BNB."""
    server, trading = build_testnet_world(
        tmp_path,
        more_markets=lambda candles: [
            FakeMarket.spot("BNB/USDT", _flat(candles.index, float(BNB_PRICE)), tick_size="0.01")
        ],
        balances={"USDT": "10000", "BNB": "5"},
    )
    trading.pay_fees_in("BNB")
    try:
        yield tmp_path, server, trading
    finally:
        server.stop()


def _flows(trading: FakeTrading, asset: str) -> tuple[D, D, D]:
    """Quote cash flow (quote commissions included), base amount, and commissions paid in ``asset``."""
    cash, base, other = D(0), D(0), D(0)
    for order in trading.orders.values():
        for t in order.trades:
            value, qty, fee = D(t["quoteQty"]), D(t["qty"]), D(t["commission"])
            quote_fee = fee if t["commissionAsset"] == "USDT" else D(0)
            other += fee if t["commissionAsset"] == asset else D(0)
            if order.side == "BUY":
                cash -= value + quote_fee
                base += qty
            else:
                cash += value - quote_fee
                base -= qty
    return cash, base, other


async def test_fees_paid_in_bnb_are_charged_at_the_bnb_price(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)
        try:
            await play(runner)
        finally:
            await runner.close()
        async with factory() as session:
            trades = list((await session.execute(select(Trade))).scalars())
            fills = list((await session.execute(select(Fill))).scalars())
        unvalued = await db_events(factory, kind="fee_unvalued")
    cash, base, bnb = _flows(trading, "BNB")
    commissions = [t for o in trading.orders.values() for t in o.trades]
    assert trades and bnb > 0
    assert all(t["commissionAsset"] == "BNB" for t in commissions)  # none paid in USDT
    # The kernel's cash: the exchange's quote flows less the BNB fees valued at BNB/USDT.
    assert runner.trader.state.cash == pytest.approx(float(INITIAL + cash - bnb * BNB_PRICE), abs=1e-6)
    held = runner.trader.position("ETH/USDT")
    assert (float(held["amount"]) if held else 0.0) == pytest.approx(float(base), abs=1e-9)
    # Each stored trade carries its entry and exit fees in USDT; an entry still held is not in them.
    orders = sorted(trading.orders.values(), key=lambda o: o.order_id)
    closed = orders[:-1] if held else orders
    expected = sum((D(t["commission"]) for o in closed for t in o.trades), D(0)) * BNB_PRICE
    assert float(sum(t.fees for t in trades)) == pytest.approx(float(expected), rel=1e-9, abs=1e-9)
    assert all(t.fees > 0 for t in trades)
    # Fills keep what the exchange charged, in its asset.
    assert {f.fee_currency for f in fills} == {"BNB"}
    assert unvalued == []
    # The price was asked once for the whole replay (well under a minute), not once per order.
    assert len(server.calls(TICKER)) == 1 and len(orders) > 2


async def test_a_fee_asset_without_a_price_counts_as_zero_and_says_so(world, caplog) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    trading.free["XYZ"] = D(1000)
    trading.pay_fees_in("XYZ", price="2")  # the fake knows its value; the exchange lists no XYZ market
    caplog.set_level(logging.WARNING, logger="engine")
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server, replay_minutes=30)
        try:
            await play(runner)
        finally:
            await runner.close()
        unvalued = await db_events(factory, kind="fee_unvalued")
    cash, base, xyz = _flows(trading, "XYZ")
    assert xyz > 0 and trading.orders
    # Every fill was applied; its fee counted as 0.
    assert runner.trader.state.cash == pytest.approx(float(INITIAL + cash), abs=1e-6)
    held = runner.trader.position("ETH/USDT")
    assert (float(held["amount"]) if held else 0.0) == pytest.approx(float(base), abs=1e-9)
    assert len(unvalued) == len(trading.orders)
    assert all(e.data["fee_asset"] == "XYZ" and "counted as 0" in e.message for e in unvalued)  # type: ignore[index]
    assert any("XYZ" in r.getMessage() and "counted as 0" in r.getMessage() for r in caplog.records)
    assert server.calls(TICKER) == []  # no market to ask


async def test_a_bnb_fee_filled_while_down_is_valued_the_same_at_restart(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    async with database(root) as factory:
        runner = await start_testnet_bot(root, factory, server)
        runner.execution.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.lookup_checks = 1  # type: ignore[union-attr]
        try:
            await play(runner, stop=lambda: runner.trader.position("ETH/USDT") is not None)
            # The exit reaches the exchange and fills, but its answer and every look-up fail.
            trading.slow_ack(2.0)
            server.faults.add(ORDER, status=503, times=1000, after=1)
            await play(runner, stop=lambda: bool(runner._unresolved))
        finally:
            await runner.close()
        (cid,) = runner._unresolved
        assert trading.by_client_id(cid).status == "FILLED"  # type: ignore[union-attr]
        server.faults.clear()
        again = await start_testnet_bot(root, factory, server, replay_minutes=1)
        await again.close()
        reconciled = await db_events(factory, kind="reconciled")
    assert cid in reconciled[-1].data["filled"]  # type: ignore[index]
    assert again.trader.position("ETH/USDT") is None
    cash, _, bnb = _flows(trading, "BNB")
    assert bnb > 0
    assert again.trader.state.cash == pytest.approx(float(INITIAL + cash - bnb * BNB_PRICE), abs=1e-6)
