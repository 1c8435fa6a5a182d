"""The paper exchange: fill rules, fees, slippage, balances, rules, idempotency and restarts."""

from __future__ import annotations

from decimal import Decimal as D

import pandas as pd
import pytest

from engine.exchanges.base import (
    InsufficientFunds,
    InvalidOrder,
    MarketInfo,
    OperationalExchangeError,
    OrderRequest,
)
from engine.exchanges.paper import PaperExchange
from engine.store import (
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    get_balances,
    get_order,
    list_fills,
    mark_acknowledged,
    save_order_intent,
)

T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def candle(o: float, h: float, low: float, c: float, minute: int = 0) -> pd.Series:
    return pd.Series(
        {"open": o, "high": h, "low": low, "close": c, "volume": 1.0}, name=T0 + pd.Timedelta(minutes=minute)
    )


def paper(**kwargs: object) -> PaperExchange:
    options: dict[str, object] = {"fees": "0.001", "balances": {"USDT": "1000"}}
    options.update(kwargs)
    return PaperExchange("binance:paper", **options)  # type: ignore[arg-type]


def req(cid: str, side: str = "buy", type_: str = "market", amount: str = "1", **kw: object) -> OrderRequest:
    return OrderRequest(cid, "ETH/USDT", side, type_, D(amount), **kw)  # type: ignore[arg-type]


async def test_market_buy_fills_at_next_open_with_slippage_and_quote_fee() -> None:
    ex = paper(slippage="0.01")
    await ex.on_candle("ETH/USDT", candle(100, 101, 99, 100))
    order = await ex.create_order(req("ye1", amount="2"))
    assert order.state == "open" and order.filled == 0
    fills = await ex.on_candle("ETH/USDT", candle(110, 111, 109, 110, 1))
    assert len(fills) == 1
    (fill,) = fills
    assert fill.price == D("111.1") and fill.amount == 2  # open 110 + 1 %
    assert fill.fee == D("0.2222") and fill.fee_asset == "USDT"
    assert fill.time == T0 + pd.Timedelta(minutes=1)
    balances = await ex.balances()
    assert balances["ETH"].free == 2
    assert balances["USDT"].free == D("1000") - D("222.2") - D("0.2222")
    assert balances["USDT"].used == 0
    done = await ex.fetch_order("ETH/USDT", "ye1")
    assert done.state == "filled" and done.average_price == D("111.1") and len(done.trades) == 1


async def test_market_sell_slips_down_and_fee_is_taken_from_proceeds() -> None:
    ex = paper(slippage="0.01", balances={"ETH": "1"})
    await ex.set_price("ETH/USDT", 100)
    await ex.create_order(req("ye1", side="sell"))
    (fill,) = await ex.set_price("ETH/USDT", 200)
    assert fill.price == D("198")
    balances = await ex.balances()
    assert balances["ETH"].free == 0 and balances["USDT"].free == D("198") - D("0.198")


async def test_limit_fills_only_when_range_reaches_it_and_at_the_open_on_a_gap() -> None:
    ex = paper()
    await ex.set_price("ETH/USDT", 100)
    await ex.create_order(req("ye1", type_="limit", price=D("95")))
    await ex.create_order(req("ye2", type_="limit", price=D("90")))
    assert (await ex.balances())["USDT"].used == D("95.095") + D("90.09")
    assert await ex.on_candle("ETH/USDT", candle(100, 101, 96, 97)) == []
    (first,) = await ex.on_candle("ETH/USDT", candle(97, 98, 94, 95, 1))
    assert first.client_order_id == "ye1" and first.price == 95
    (second,) = await ex.on_candle("ETH/USDT", candle(85, 86, 80, 82, 2))  # gapped below 90: filled at 85
    assert second.client_order_id == "ye2" and second.price == 85
    assert (await ex.balances())["USDT"].used == 0
    assert (await ex.balances())["USDT"].free == D("1000") - D("95.095") - D("85.085")


async def test_stop_wins_over_target_in_the_same_candle_and_the_target_expires() -> None:
    ex = paper(balances={"ETH": "1"})
    await ex.set_price("ETH/USDT", 100)
    await ex.create_order(req("stop", side="sell", type_="stop_market", stop_price=D("95")))
    await ex.create_order(req("target", side="sell", type_="limit", price=D("105")))
    assert await ex.on_candle("ETH/USDT", candle(100, 104, 96, 101)) == []
    fills = await ex.on_candle("ETH/USDT", candle(101, 106, 94, 100, 1))
    assert [f.client_order_id for f in fills] == ["stop"]
    assert fills[0].price == 95
    assert (await ex.fetch_order("ETH/USDT", "target")).state == "expired"
    assert await ex.open_orders() == []


async def test_stop_gap_fills_at_the_open() -> None:
    ex = paper(balances={"ETH": "1"}, fees=0)
    await ex.set_price("ETH/USDT", 100)
    await ex.create_order(req("stop", side="sell", type_="stop_market", stop_price=D("95")))
    (fill,) = await ex.on_candle("ETH/USDT", candle(90, 92, 88, 91))
    assert fill.price == 90 and (await ex.balances())["USDT"].free == 90


async def test_insufficient_funds_and_market_rules_are_refused() -> None:
    rules = MarketInfo(
        "ETH/USDT", "ETH", "USDT", min_notional=D("10"), amount_step=D("0.01"), price_tick=D("0.1")
    )
    ex = paper(markets=[rules])
    await ex.set_price("ETH/USDT", 100)
    with pytest.raises(InsufficientFunds):
        await ex.create_order(req("ye1", amount="10"))  # 1000 USDT + fee
    with pytest.raises(InsufficientFunds):
        await ex.create_order(req("ye2", side="sell"))
    with pytest.raises(InvalidOrder, match="step"):
        await ex.create_order(req("ye3", amount="0.015"))
    with pytest.raises(InvalidOrder, match="minimum"):
        await ex.create_order(req("ye4", amount="0.05"))
    with pytest.raises(InvalidOrder, match="tick"):
        await ex.create_order(req("ye5", type_="limit", price=D("99.05")))
    assert await ex.open_orders() == [] and (await ex.balances())["USDT"].free == 1000


async def test_same_client_id_twice_returns_the_first_order() -> None:
    ex = paper()
    await ex.set_price("ETH/USDT", 100)
    first = await ex.create_order(req("ye1", type_="limit", price=D("90")))
    again = await ex.create_order(req("ye1", type_="limit", price=D("90")))
    assert again == first and len(await ex.open_orders()) == 1
    assert (await ex.balances())["USDT"].used == D("90.09")


async def test_cancel_releases_the_reservation() -> None:
    ex = paper()
    await ex.set_price("ETH/USDT", 100)
    await ex.create_order(req("ye1", type_="limit", price=D("90")))
    cancelled = await ex.cancel_order("ETH/USDT", "ye1")
    assert cancelled.state == "cancelled"
    assert (await ex.balances())["USDT"].free == 1000
    assert await ex.on_candle("ETH/USDT", candle(80, 81, 79, 80)) == []


async def test_trade_ids_are_deterministic() -> None:
    async def run() -> list[str]:
        ex = paper()
        await ex.set_price("ETH/USDT", 100)
        await ex.create_order(req("yeA"))
        return [f.trade_id for f in await ex.set_price("ETH/USDT", 101)]

    assert await run() == await run() == ["paper-yeA-1"]


async def _intent(factory, bot_id: int, cid: str, **kw: object) -> None:  # type: ignore[no-untyped-def]
    async with factory() as session, session.begin():
        await save_order_intent(
            session,
            OrderIntent(bot_id, "ETH/USDT", OrderSide.BUY, OrderType.LIMIT, "1", client_order_id=cid, **kw),
        )


async def test_balances_and_open_orders_survive_a_restart(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    ex = paper(session_factory=factory)
    await ex.start()
    await ex.set_price("ETH/USDT", 100)
    await _intent(factory, bot_id, "ye1", price="90")
    placed = await ex.create_order(req("ye1", type_="limit", price=D("90")))
    async with factory() as session, session.begin():
        await mark_acknowledged(session, "ye1", placed.exchange_order_id)
        assert (await get_balances(session, "binance:paper"))["USDT"] == (D("909.91"), D("90.09"))
    await ex.close()

    restarted = paper(session_factory=factory, balances={"USDT": "5"})  # starting balances ignored now
    await restarted.start()
    assert (await restarted.balances())["USDT"].free == D("909.91")
    assert [o.client_order_id for o in await restarted.open_orders()] == ["ye1"]
    (fill,) = await restarted.on_candle("ETH/USDT", candle(92, 93, 89, 90))
    assert fill.price == 90
    async with factory() as session, session.begin():
        order = await get_order(session, client_order_id="ye1")
        assert order is not None and order.status == OrderStatus.FILLED and order.filled == 1
        assert len(await list_fills(session, order.id)) == 1
        assert (await get_balances(session, "binance:paper"))["ETH"] == (D(1), D(0))
    assert (await restarted.balances())["USDT"].free == D("1000") - D("90.09")


async def test_candles_come_from_the_market_data_source() -> None:
    source = paper()
    with pytest.raises(OperationalExchangeError, match="market data"):
        await source.fetch_candles("ETH/USDT", "1m", None)

    class Feed(PaperExchange):
        async def fetch_candles(self, symbol, timeframe, since, limit=1000):  # type: ignore[no-untyped-def]
            return pd.DataFrame({"close": [1.0]}, index=pd.DatetimeIndex([T0], name="date"))

    ex = paper(market_data=Feed("feed"))
    frame = await ex.fetch_candles("ETH/USDT", "1m", None)
    assert list(frame["close"]) == [1.0]
