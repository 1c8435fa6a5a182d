"""FeeRates: routes to a fee asset's price in a quote currency, caching, and a missing price; and
CcxtExchange.last_price against the fake Binance's 24-hour ticker."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.exchanges.base import ExchangeTrade, MarketInfo
from engine.exchanges.fee_rates import FeeRates
from engine.runtime.execution import summarize_trades, third_assets
from tests.engine.exchanges.fake import exchange_for, start_server
from tests.fakes.binance_market import FakeMarket, walk_candles

PRICES = {"BNB/USDT": D(600), "USDT/TRY": D(40), "BTC/USDT": D(50000), "ETH/BTC": D("0.05")}


class Prices:
    def __init__(self, prices: dict[str, D | None]) -> None:
        self.prices = prices
        self.asked: list[str] = []

    async def __call__(self, symbol: str) -> D | None:
        self.asked.append(symbol)
        value = self.prices[symbol]
        if value is None:
            raise RuntimeError("no ticker")
        return value


async def test_direct_inverse_and_bridged_routes() -> None:
    prices = Prices({**PRICES, "BNB/BTC": None})
    rates = FeeRates(prices, [*PRICES, "BNB/BTC"])
    assert await rates.rate("BNB", "USDT") == 600
    assert await rates.rate("USDT", "TRY") == 40
    assert await rates.rate("TRY", "USDT") == pytest.approx(1 / 40)
    # BNB/BTC exists but has no price: through USDT, BNB/USDT x 1/(BTC/USDT).
    assert await rates.rate("BNB", "BTC") == pytest.approx(600 / 50000)
    assert await rates.rate("BNB", "TRY") == pytest.approx(600 * 40)
    assert await rates.rate("USDT", "USDT") == 1.0
    assert await rates.rate("DOGE", "USDT") is None


async def test_prices_and_misses_are_cached_for_the_ttl() -> None:
    now = [0.0]
    prices = Prices(dict(PRICES))
    rates = FeeRates(prices, PRICES, ttl=60.0, clock=lambda: now[0])
    for _ in range(25):
        assert await rates.rate("BNB", "USDT") == 600
        assert await rates.rate("DOGE", "USDT") is None
    assert prices.asked == ["BNB/USDT"]
    now[0] = 61.0
    prices.prices["BNB/USDT"] = D(610)
    assert await rates.rate("BNB", "USDT") == 610
    assert prices.asked == ["BNB/USDT", "BNB/USDT"]


async def test_a_perpetual_stands_in_for_a_missing_spot_market() -> None:
    prices = Prices({"BNB/USDT:USDT": D(599)})
    assert await FeeRates(prices, ["BNB/USDT:USDT"]).rate("BNB", "USDT") == 599


def _trade(fee: str, asset: str, amount: str = "0.1", price: str = "2000") -> ExchangeTrade:
    import pandas as pd

    return ExchangeTrade(
        "1", "ye1", "9", "ETH/USDT", "buy", D(amount), D(price), D(fee), asset, pd.Timestamp(0, tz="UTC")
    )


def test_summarize_trades_values_third_assets_and_names_the_unvalued() -> None:
    market = MarketInfo("ETH/USDT", "ETH", "USDT")
    trades = [_trade("0.0003", "BNB"), _trade("0.2", "USDT"), _trade("0.0001", "ETH"), _trade("1", "XYZ")]
    assert third_assets(trades, market) == {"BNB", "XYZ"}
    filled = summarize_trades(trades, "buy", market, {"BNB": 600.0, "XYZ": None})
    assert filled is not None
    assert filled.fee == pytest.approx(0.0003 * 600 + 0.2 + 0.0001 * 2000)
    assert filled.amount == pytest.approx(0.4 - 0.0001)
    assert filled.unvalued == ("XYZ",)
    assert summarize_trades(trades[:1], "buy", market).unvalued == ("BNB",)  # type: ignore[union-attr]


async def test_last_price_and_bnb_commissions_on_the_fake() -> None:
    server, trading = start_server({"USDT": "10000", "BNB": "1"})
    candles = walk_candles("2024-01-01", "2024-01-03", start_price=600.0)
    server.market_data.add(FakeMarket.spot("BNB/USDT", candles, tick_size="0.01"))
    exchange = exchange_for(server)
    try:
        await exchange.start()
        price = await exchange.last_price("BNB/USDT")
        assert price == D(repr(float(candles["close"].iloc[-1])))
        trading.fee_rate = D("0.001")
        trading.pay_fees_in("BNB", price="500")
        from engine.exchanges.base import OrderRequest

        order = await exchange.create_order(OrderRequest("yeB", "ETH/USDT", "buy", "market", D("0.5")))
        (fill,) = order.trades
        assert fill.fee_asset == "BNB"
        assert fill.fee == (fill.price * fill.amount * D("0.001") / 500).quantize(D("1e-8"))
        assert trading.free["BNB"] == 1 - fill.fee
        assert trading.free["USDT"] == 10000 - fill.price * fill.amount  # no USDT commission
        trading.free["BNB"] = D(0)  # cannot cover the next one: paid in USDT, as on Binance
        order = await exchange.create_order(OrderRequest("yeC", "ETH/USDT", "sell", "market", D("0.5")))
        assert order.trades[0].fee_asset == "USDT"
    finally:
        await exchange.close()
        server.stop()


async def test_instances_of_one_scope_share_their_prices() -> None:
    prices = Prices(dict(PRICES))
    bots = [FeeRates(prices, PRICES, scope="test-shared-scope") for _ in range(25)]
    other = FeeRates(prices, PRICES, scope="another-environment")
    for rates in bots:
        assert await rates.rate("BNB", "USDT") == 600
    assert await other.rate("BNB", "USDT") == 600
    assert prices.asked == ["BNB/USDT", "BNB/USDT"]  # once per scope, not once per bot


async def test_bots_asking_at_the_same_moment_share_one_request() -> None:
    import asyncio

    release = asyncio.Event()

    class Slow(Prices):
        async def __call__(self, symbol: str) -> D | None:
            self.asked.append(symbol)
            await release.wait()
            return self.prices[symbol]

    prices = Slow(dict(PRICES))
    bots = [FeeRates(prices, PRICES, scope="test-same-moment") for _ in range(25)]
    pending = [asyncio.ensure_future(rates.rate("BNB", "USDT")) for rates in bots]
    await asyncio.sleep(0.01)
    assert prices.asked == ["BNB/USDT"]  # the other 24 wait for that answer
    release.set()
    assert await asyncio.gather(*pending) == [600] * 25
    assert prices.asked == ["BNB/USDT"]
