"""The order pipeline (place_order), start-up reconciliation and make_exchange."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pandas as pd
import pytest

from dsl import DiagnosticError
from engine.config import Bot
from engine.exchanges import PaperExchange, make_exchange, paper_account
from engine.exchanges.base import ExchangeOrder, InsufficientFunds, OrderRequest, TemporaryExchangeError
from engine.exchanges.ccxt_exchange import CcxtExchange
from engine.exchanges.orders import place_order, reconcile
from engine.store import (
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    get_order,
    list_fills,
    mark_sent,
    save_order_intent,
)
from tests.engine.exchanges.fake import exchange_for, start_server
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading


class Flaky(PaperExchange):
    """A paper exchange whose first ``failures`` placements fail with a temporary error."""

    def __init__(self, failures: int, **kwargs: object) -> None:
        super().__init__("flaky", balances={"USDT": "1000"}, **kwargs)  # type: ignore[arg-type]
        self.failures = failures
        self.attempts = 0

    async def create_order(self, request: OrderRequest) -> ExchangeOrder:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise TemporaryExchangeError("503 Service Unavailable")
        return await super().create_order(request)


def intent(bot_id: int, cid: str | None = None, **kw: object) -> OrderIntent:
    options: dict[str, object] = {"type": OrderType.LIMIT, "amount": "0.5", "price": "1000"}
    options.update(kw)
    return OrderIntent(bot_id, "ETH/USDT", OrderSide.BUY, client_order_id=cid, **options)  # type: ignore[arg-type]


async def stored(factory, cid: str):  # type: ignore[no-untyped-def]
    async with factory() as session:
        order = await get_order(session, client_order_id=cid)
        assert order is not None
        return order, await list_fills(session, order.id)


async def test_paper_order_goes_intent_sent_open_then_filled_by_the_next_candle(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    ex = PaperExchange("acct", balances={"USDT": "1000"}, fees="0.001", session_factory=factory)
    await ex.start()
    await ex.set_price("ETH/USDT", 100)
    placed = await place_order(
        factory, ex, intent(bot_id, "yeP1", type=OrderType.MARKET, price=None, amount="2")
    )
    assert placed.status == OrderStatus.OPEN and placed.new_fills == ()
    candle = pd.Series(
        {"open": 101.0, "high": 102.0, "low": 100.0, "close": 101.0},
        name=pd.Timestamp("2024-01-01", tz="UTC"),
    )
    await ex.on_candle("ETH/USDT", candle)
    order, fills = await stored(factory, "yeP1")
    assert (
        order.status == OrderStatus.FILLED and order.average_price == 101 and order.fees == {"USDT": "0.202"}
    )
    assert len(fills) == 1 and order.exchange_order_id == "paper-yeP1"


async def test_a_failed_save_sends_nothing(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    ex = Flaky(0)
    await ex.set_price("ETH/USDT", 100)
    with pytest.raises(ValueError):
        await place_order(factory, ex, intent(bot_id, "bad id with spaces"))
    assert ex.attempts == 0


async def test_temporary_errors_are_retried_with_the_same_client_id(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    ex = Flaky(2)
    await ex.set_price("ETH/USDT", 100)
    placed = await place_order(factory, ex, intent(bot_id, "yeT1"), base_delay=0.01)
    assert ex.attempts == 3 and placed.status == OrderStatus.OPEN and len(await ex.open_orders()) == 1


async def test_retries_are_bounded_and_leave_the_order_sent(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    ex = Flaky(10)
    await ex.set_price("ETH/USDT", 100)
    with pytest.raises(TemporaryExchangeError):
        await place_order(factory, ex, intent(bot_id, "yeT2"), retries=2, base_delay=0.01)
    assert ex.attempts == 3
    order, _ = await stored(factory, "yeT2")
    assert order.status == OrderStatus.SENT  # unknown outcome: reconciliation decides


async def test_operational_errors_are_recorded_and_raised_without_retry(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    ex = Flaky(0)
    await ex.set_price("ETH/USDT", 100)
    with pytest.raises(InsufficientFunds):
        await place_order(factory, ex, intent(bot_id, "yeF1", amount="5"), base_delay=0.01)
    assert ex.attempts == 1
    order, _ = await stored(factory, "yeF1")
    assert order.status == OrderStatus.REJECTED and "InsufficientFunds" in (order.error or "")


@pytest.fixture
def fake() -> Iterator[tuple[FakeBinance, FakeTrading]]:
    server, trading = start_server()
    try:
        yield server, trading
    finally:
        server.stop()


async def test_place_order_through_ccxt_records_fills(factory, bot_id: int, fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    ex = exchange_for(server)
    try:
        await ex.start()
        placed = await place_order(factory, ex, intent(bot_id, "yeC1", type=OrderType.MARKET, price=None))
    finally:
        await ex.close()
    assert placed.status == OrderStatus.FILLED and len(placed.new_fills) == 1
    order, fills = await stored(factory, "yeC1")
    assert order.filled == D("0.5") and order.exchange_order_id == placed.order.exchange_order_id
    assert [f.exchange_trade_id for f in fills] == [placed.new_fills[0].trade_id]


async def test_reconcile_applies_fills_adopts_and_fails(factory, bot_id: int, fake) -> None:  # type: ignore[no-untyped-def]
    server, trading = fake
    ex: CcxtExchange = exchange_for(server)
    try:
        await ex.start()
        await place_order(factory, ex, intent(bot_id, "yeR1"))  # rests at 1000
        await place_order(factory, ex, intent(bot_id, "yeR2"))
        await place_order(factory, ex, intent(bot_id, "yeR3"))
        # While the engine is down: yeR1 fills in two parts, yeR2 is cancelled by hand, an order of ours
        # whose acknowledgement was lost appears, a foreign order too; one order was saved but never sent,
        # one marked sent never reached the exchange.
        trading.fill("yeR1", "0.2")
        trading.fill("yeR1", "0.3", price="999")
        trading.orders[trading.by_client_id("yeR2").order_id].status = "CANCELED"  # type: ignore[union-attr]
        trading.place("yeLOST", "ETHUSDT", "BUY", "0.1", "900")
        trading.place("manual1", "ETHUSDT", "BUY", "0.1", "900")
        async with factory() as session, session.begin():
            await save_order_intent(session, intent(bot_id, "yeNEVER"))
            await save_order_intent(session, intent(bot_id, "yeGONE"))
            await mark_sent(session, "yeGONE")

        summary = await reconcile(factory, ex, bot_id, "ye", checks=2, check_delay=0.01)
        again = await reconcile(factory, ex, bot_id, "ye", checks=2, check_delay=0.01)
    finally:
        await ex.close()

    assert summary.filled == ["yeR1"] and summary.cancelled == ["yeR2"] and summary.adopted == ["yeLOST"]
    assert sorted(summary.failed) == ["yeGONE", "yeNEVER"] and len(summary.new_fills) == 2
    order, fills = await stored(factory, "yeR1")
    assert order.status == OrderStatus.FILLED and order.filled == D("0.5") and len(fills) == 2
    assert (await stored(factory, "yeR2"))[0].status == OrderStatus.CANCELLED
    assert (await stored(factory, "yeR3"))[0].status == OrderStatus.OPEN
    lost, _ = await stored(factory, "yeLOST")
    assert lost.status == OrderStatus.OPEN and lost.amount == D("0.1") and lost.reason == "adopted"
    gone, _ = await stored(factory, "yeGONE")
    assert gone.status == OrderStatus.FAILED and "not found" in (gone.error or "")
    async with factory() as session:
        assert await get_order(session, client_order_id="manual1") is None
    assert again.checked == ["yeR3", "yeLOST"] and again.new_fills == [] and again.adopted == []


def bot(mode: str, **exchange: object) -> Bot:
    return Bot.model_validate(
        {
            "bot": "b1",
            "strategy": "s.yaml",
            "exchange": {"name": "binance", "mode": mode, **exchange},
            "pairs": ["ETH/USDT"],
            "capital": {"initial": "1000 USDT"},
            "fees": {"maker": 0.0005, "taker": 0.001},
            "slippage": 0.001,
        }
    )


async def test_make_exchange_paper_uses_the_bots_capital_fees_and_slippage(factory) -> None:  # type: ignore[no-untyped-def]
    ex = make_exchange(bot("paper"), session_factory=factory)
    assert isinstance(ex, PaperExchange) and ex.account == paper_account(bot("paper"))
    await ex.start()
    assert (await ex.balances())["USDT"].free == 1000
    assert (ex.fee_rate, ex.maker_fee_rate, ex.slippage) == (D("0.001"), D("0.0005"), D("0.001"))


def test_make_exchange_testnet_resolves_credentials_at_run_time() -> None:
    model = bot("testnet", credentials={"key": "env:TEST_KEY", "secret": "env:TEST_SECRET"})
    ex = make_exchange(
        model, session_factory=None, environ={"TEST_KEY": "abcKEY123", "TEST_SECRET": "xyzSECRET9"}
    )
    assert isinstance(ex, CcxtExchange) and ex.mode == "testnet"
    ex.check_environment()
    with pytest.raises(DiagnosticError, match="TEST_SECRET"):
        make_exchange(model, session_factory=None, environ={"TEST_KEY": "abcKEY123"})
