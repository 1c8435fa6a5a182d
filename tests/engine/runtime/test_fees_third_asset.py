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

from engine.config import load_bot
from engine.data import DataDirectory
from engine.data.naming import candle_filename
from engine.exchanges import make_exchange
from engine.runtime import BotRunner, PortfolioLimits, PortfolioRisk, ReplayFeed
from engine.store.models import Event, Fill, Trade
from tests.engine.exchanges.fake import API_KEY, SECRET
from tests.engine.runtime.helpers import database
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading

ENV = {"FAKE_BINANCE_KEY": API_KEY, "FAKE_BINANCE_SECRET": SECRET}
ORDER = "/api/v3/order"
TICKER = "/api/v3/ticker/24hr"
INITIAL = D(1000)
BNB_PRICE = D(600)

STRATEGY = """\
strategy: flip
description: enters after two rising candles, leaves on a falling one (trades often)
timeframe: 1m
entry:
  long: close > open and close[1] > open[1]
exit:
  long: close < open
"""

BOT = """\
bot: eth-bnb-fees
strategy: ../strategies/flip.yaml
exchange:
  name: binance
  mode: testnet
  market: spot
  credentials: {key: env:FAKE_BINANCE_KEY, secret: env:FAKE_BINANCE_SECRET}
pairs: [ETH/USDT]
capital:
  initial: 1000 USDT
  max_per_trade: 20%
fees: {maker: 0.1%, taker: 0.1%}
slippage: 0
"""


def _flat(index: pd.DatetimeIndex, price: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"open": price, "high": price, "low": price, "close": price, "volume": 10.0}, index=index
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, FakeBinance, FakeTrading]]:
    """Bot files, replay candles ending now, and a fake Binance with ETH/USDT and a flat BNB/USDT market
    whose account pays its 0.1% commissions in BNB."""
    for name in ("strategies", "bots", "data"):
        (tmp_path / name).mkdir()
    (tmp_path / "strategies" / "flip.yaml").write_text(STRATEGY)
    (tmp_path / "bots" / "eth.yaml").write_text(BOT)
    now = pd.Timestamp.now(tz="UTC").floor("min")
    candles = walk_candles(
        (now - pd.Timedelta(minutes=300)).isoformat(), (now + pd.Timedelta(minutes=60)).isoformat(),
        start_price=2000.0, seed=7,
    )  # fmt: skip
    candles[candles.index < now - pd.Timedelta(minutes=1)].to_parquet(
        tmp_path / "data" / candle_filename("ETH/USDT", "1m")
    )
    eth = FakeMarket.spot("ETH/USDT", candles, tick_size="0.01", step_size="0.0001", min_notional="5")
    bnb = FakeMarket.spot("BNB/USDT", _flat(candles.index, float(BNB_PRICE)), tick_size="0.01")
    server = FakeBinance([eth, bnb]).start()
    trading = FakeTrading.install(server, API_KEY, SECRET, {"USDT": "10000", "BNB": "5"})
    trading.fee_rate = D("0.001")
    trading.pay_fees_in("BNB")
    try:
        yield tmp_path, server, trading
    finally:
        server.stop()


async def _runner(root: Path, factory, server: FakeBinance, *, replay_minutes: int = 60) -> BotRunner:  # type: ignore[no-untyped-def]
    loaded = load_bot(root / "bots" / "eth.yaml")
    config = server.ccxt_config()
    exchange = make_exchange(
        loaded.model,
        session_factory=factory,
        api_urls=server.ccxt_urls(),
        environ=ENV,
        options={"options": config["options"], "rateLimit": 1, "timeout": 1500},
    )
    exchange.lookup_delay = 0.05  # type: ignore[attr-defined]
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=replay_minutes)
    feed = ReplayFeed(DataDirectory(root / "data"), start=start)
    runner = BotRunner(loaded, factory, feed, PortfolioRisk(PortfolioLimits()), exchange=exchange)
    for key in runner.series:
        feed.add(key)
    await runner.start()
    assert runner.execution is not None
    runner.execution.base_delay = 0.01
    return runner


async def _play(runner: BotRunner, stop=None) -> None:  # type: ignore[no-untyped-def]
    async for batch in runner.feed.batches():
        await runner.on_batch(batch)
        if stop is not None and stop():
            return


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


async def _events(factory, kind: str) -> list[Event]:  # type: ignore[no-untyped-def]
    async with factory() as session:
        return list((await session.execute(select(Event).where(Event.kind == kind))).scalars())


async def test_fees_paid_in_bnb_are_charged_at_the_bnb_price(world) -> None:  # type: ignore[no-untyped-def]
    root, server, trading = world
    async with database(root) as factory:
        runner = await _runner(root, factory, server)
        try:
            await _play(runner)
        finally:
            await runner.close()
        async with factory() as session:
            trades = list((await session.execute(select(Trade))).scalars())
            fills = list((await session.execute(select(Fill))).scalars())
        unvalued = await _events(factory, "fee_unvalued")
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
        runner = await _runner(root, factory, server, replay_minutes=30)
        try:
            await _play(runner)
        finally:
            await runner.close()
        unvalued = await _events(factory, "fee_unvalued")
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
        runner = await _runner(root, factory, server)
        runner.execution.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.retries = 0  # type: ignore[union-attr]
        runner.execution.exchange.lookup_checks = 1  # type: ignore[union-attr]
        try:
            await _play(runner, stop=lambda: runner.trader.position("ETH/USDT") is not None)
            # The exit reaches the exchange and fills, but its answer and every look-up fail.
            trading.slow_ack(2.0)
            server.faults.add(ORDER, status=503, times=1000, after=1)
            await _play(runner, stop=lambda: bool(runner._unresolved))
        finally:
            await runner.close()
        (cid,) = runner._unresolved
        assert trading.by_client_id(cid).status == "FILLED"  # type: ignore[union-attr]
        server.faults.clear()
        again = await _runner(root, factory, server, replay_minutes=1)
        await again.close()
        reconciled = await _events(factory, "reconciled")
    assert cid in reconciled[-1].data["filled"]  # type: ignore[index]
    assert again.trader.position("ETH/USDT") is None
    cash, _, bnb = _flows(trading, "BNB")
    assert bnb > 0
    assert again.trader.state.cash == pytest.approx(float(INITIAL + cash - bnb * BNB_PRICE), abs=1e-6)
