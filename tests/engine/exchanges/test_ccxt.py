"""CcxtExchange with the real ccxt client against the fake Binance on 127.0.0.1."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal as D

import pytest

from engine.exchanges.base import (
    AuthenticationFailed,
    InsufficientFunds,
    InvalidOrder,
    OrderNotFound,
    OrderRequest,
    TemporaryExchangeError,
    WrongEnvironment,
)
from engine.exchanges.ccxt_exchange import CcxtExchange
from engine.observability import setup_logging
from tests.engine.exchanges.fake import API_KEY, SECRET, exchange_for, start_server
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading

ORDER = "/api/v3/order"


@pytest.fixture
def fake() -> Iterator[tuple[FakeBinance, FakeTrading]]:
    server, trading = start_server()
    try:
        yield server, trading
    finally:
        server.stop()


@pytest.fixture
async def exchange(fake: tuple[FakeBinance, FakeTrading]) -> AsyncIterator[CcxtExchange]:
    ex = exchange_for(fake[0])
    try:
        await ex.start()
        yield ex
    finally:
        await ex.close()


def limit(cid: str, side: str = "buy", amount: str = "0.5", price: str = "1000") -> OrderRequest:
    return OrderRequest(cid, "ETH/USDT", side, "limit", D(amount), price=D(price))  # type: ignore[arg-type]


def posts(server: FakeBinance) -> int:
    return len([r for r in server.calls(ORDER) if r.method == "POST"])


async def test_place_query_cancel_open_orders_and_balances(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    assert (await exchange.balances())["USDT"].free == 10000
    market = await exchange.create_order(OrderRequest("yeM", "ETH/USDT", "buy", "market", D("0.5")))
    assert market.state == "filled" and market.filled == D("0.5") and len(market.trades) == 1
    assert server.calls(ORDER)[0].params["newClientOrderId"] == "yeM"

    resting = await exchange.create_order(limit("yeL"))
    assert resting.state == "open" and resting.client_order_id == "yeL"
    assert [o.client_order_id for o in await exchange.open_orders(["ETH/USDT"])] == ["yeL"]
    assert (await exchange.balances())["USDT"].used == 500

    trading.fill("yeL", "0.2")
    part = await exchange.fetch_order("ETH/USDT", "yeL")
    assert part.state == "partially_filled" and part.filled == D("0.2")
    assert [(t.amount, t.price) for t in part.trades] == [(D("0.2"), D(1000))]

    cancelled = await exchange.cancel_order("ETH/USDT", "yeL")
    assert cancelled.state == "cancelled" and cancelled.filled == D("0.2")
    assert await exchange.open_orders() == []
    with pytest.raises(OrderNotFound):
        await exchange.fetch_order("ETH/USDT", "nope")

    stop = await exchange.create_order(
        OrderRequest("yeS", "ETH/USDT", "sell", "stop_market", D("1"), stop_price=D("1500"))
    )
    assert stop.state == "open" and stop.type == "stop_market" and stop.stop_price == 1500
    assert trading.by_client_id("yeS").type == "STOP_LOSS"  # type: ignore[union-attr]


async def test_timeout_after_accept_places_exactly_one_order(fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    ex = exchange_for(server, timeout=400)
    try:
        await ex.start()
        trading.slow_ack(1.0)  # accepted at once, answered after the client gave up
        order = await ex.create_order(limit("yeT"))
        assert order.client_order_id == "yeT" and order.state == "open"
        assert trading.placements == 1 and len(trading.orders) == 1
    finally:
        await ex.close()


async def test_dropped_connection_then_retry_with_the_same_client_id(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    server.faults.add(ORDER, drop=True, times=2)  # aiohttp resends once by itself on a dropped keep-alive
    order = await exchange.create_order(limit("yeD"))
    assert order.state == "open" and len(trading.orders) == 1
    assert {r.params["newClientOrderId"] for r in server.calls(ORDER) if r.method == "POST"} == {"yeD"}


async def test_rate_limit_honours_retry_after(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    server.faults.add("/api/v3/account", status=429, retry_after=0.6)
    started = time.monotonic()
    assert (await exchange.balances())["USDT"].free == 10000
    assert time.monotonic() - started >= 0.6
    assert [c.status for c in server.calls("/api/v3/account")][-2:] == [429, 200]


async def test_rate_limited_order_is_placed_once_after_waiting(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    server.faults.add(ORDER, status=418, retry_after=0.3)  # DDoSProtection, the sibling of RateLimitExceeded
    started = time.monotonic()
    await exchange.create_order(limit("yeR"))
    assert time.monotonic() - started >= 0.3 and len(trading.orders) == 1


async def test_5xx_is_retried(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    server.faults.add("/api/v3/openOrders", status=503, times=2)
    assert await exchange.open_orders(["ETH/USDT"]) == []
    assert [c.status for c in server.calls("/api/v3/openOrders")] == [503, 503, 200]


async def test_5xx_retries_are_bounded(fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    ex = exchange_for(server, retries=1)
    try:
        await ex.markets()
        server.faults.add("/api/v3/openOrders", status=502, times=5)
        with pytest.raises(TemporaryExchangeError):
            await ex.open_orders(["ETH/USDT"])
        assert len(server.calls("/api/v3/openOrders")) == 2
    finally:
        await ex.close()


async def test_auth_error_is_not_retried(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    trading.revoke()
    with pytest.raises(AuthenticationFailed):
        await exchange.balances()
    with pytest.raises(AuthenticationFailed):
        await exchange.create_order(limit("yeA"))
    assert len(server.calls("/api/v3/account")) == 2  # start() and the one call above
    assert posts(server) == 1


async def test_invalid_orders_and_insufficient_funds_are_not_retried(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    with pytest.raises(InvalidOrder):
        await exchange.create_order(limit("yeN", amount="0.001", price="1000"))  # 1 USDT < NOTIONAL 5
    with pytest.raises(InsufficientFunds):
        await exchange.create_order(limit("yeF", amount="100", price="1000"))
    assert posts(server) == 2


async def test_duplicate_client_id_adopts_the_existing_order(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    _, trading = fake
    first = await exchange.create_order(limit("yeX"))
    again = await exchange.create_order(limit("yeX"))
    assert again.exchange_order_id == first.exchange_order_id and len(trading.orders) == 1


async def test_wrong_environment_is_refused_before_any_request(fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    live = exchange_for(server, mode="live", api_urls={"private": "https://testnet.binance.vision/api/v3"})
    with pytest.raises(WrongEnvironment):
        await live.start()
    assert server.requests == []

    testnet = exchange_for(server)
    try:
        await testnet.start()
        testnet.client.set_sandbox_mode(False)  # the client now points at api.binance.com
        with pytest.raises(WrongEnvironment):
            await testnet.create_order(limit("yeW"))
        assert posts(server) == 0
    finally:
        await testnet.close()


def test_live_binance_url_is_refused_in_a_testnet_profile() -> None:
    ex = CcxtExchange(
        "binance",
        "testnet",
        api_key=API_KEY,
        secret=SECRET,
        api_urls={"private": "https://api.binance.com/api/v3"},
    )
    with pytest.raises(WrongEnvironment):
        ex.check_environment()
    sandbox = CcxtExchange("binance", "testnet", api_key=API_KEY, secret=SECRET)
    sandbox.check_environment()  # testnet.binance.vision
    assert "testnet.binance.vision" in sandbox.client.urls["api"]["private"]


async def test_closed_candles_only(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    server.now_ms = 1_704_153_630_000  # 2024-01-02 00:00:30, inside the 00:00 minute candle
    exchange.client.options["adjustForTimeDifference"] = False
    frame = await exchange.fetch_candles("ETH/USDT", "1m", None, 5)
    assert str(frame.index[-1]) == "2024-01-01 23:59:00+00:00" and len(frame) == 4
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"] and str(frame.index.tz) == "UTC"


async def test_secrets_never_reach_logs_or_errors(fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    stream = io.StringIO()
    logs = setup_logging(None, mode="testnet", console="plain", level="DEBUG", stream=stream)
    ex = exchange_for(server, timeout=400)
    try:
        await ex.start()  # ccxt logs every request with its headers at DEBUG, the API key among them
        server.faults.add("/api/v3/account", status=429, retry_after=0.1)
        await ex.balances()
        trading.revoke()
        with pytest.raises(AuthenticationFailed) as raised:
            await ex.balances()
    finally:
        await ex.close()
        logs.close()
    text = stream.getvalue() + str(raised.value)
    assert "rate limited" in text and "X-MBX-APIKEY" in text
    assert API_KEY not in text and SECRET not in text


async def test_5xx_on_placement_is_looked_up_then_placed_once(exchange: CcxtExchange, fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    server.faults.add(ORDER, status=503)  # refused before the order existed
    order = await exchange.create_order(limit("ye5"))
    assert order.state == "open" and len(trading.orders) == 1
    methods = [(r.method, r.status) for r in server.calls(ORDER)]
    assert methods[0] == ("POST", 503) and ("GET", 400) in methods and methods[-1] == ("POST", 200)


def test_futures_testnet_signs_private_requests_on_the_futures_testnet() -> None:
    # ccxt raises NotSupported for testnet.binancefuture.com unless told otherwise (it steers users to
    # Binance's demo trading); a testnet futures profile must still be able to sign its requests there.
    ex = CcxtExchange("binance", "testnet", "futures", api_key=API_KEY, secret=SECRET)
    ex.check_environment()
    request = ex.client.sign("account", ["fapiPrivateV3"], "GET", {})
    assert request["url"].startswith("https://testnet.binancefuture.com/fapi/v3/account?")
    assert "signature=" in request["url"]
    live = CcxtExchange("binance", "live", "futures", api_key=API_KEY, secret=SECRET)
    assert live.client.sign("account", ["fapiPrivateV3"], "GET", {})["url"].startswith(
        "https://fapi.binance.com/"
    )
