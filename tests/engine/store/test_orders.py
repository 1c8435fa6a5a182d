from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store import (
    CLIENT_ID_PREFIX,
    BotMode,
    FillReport,
    Order,
    OrderIntent,
    OrderNotFoundError,
    OrderSide,
    OrderStatus,
    OrderType,
    StoreError,
    apply_fill,
    get_order,
    list_fills,
    list_open_orders,
    mark_acknowledged,
    mark_closed,
    mark_sent,
    new_client_order_id,
    save_order_intent,
    submit_order,
    upsert_bot,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
Factory = async_sessionmaker[AsyncSession]


def intent(bot_id: int, amount: str = "1", **kw: object) -> OrderIntent:
    fields: dict[str, object] = {
        "bot_id": bot_id,
        "pair": "BTC/USDT",
        "side": OrderSide.BUY,
        "type": OrderType.LIMIT,
        "amount": Decimal(amount),
        "price": Decimal("60000.5"),
        "reason": "entry",
        "signal_time": T0,
    }
    fields.update(kw)
    return OrderIntent(**fields)  # type: ignore[arg-type]


def fill(trade_id: str, amount: str, price: str = "60000.5", **kw: object) -> FillReport:
    fields: dict[str, object] = {
        "trade_id": trade_id,
        "amount": amount,
        "price": price,
        "time": T0 + timedelta(seconds=len(trade_id)),
    }
    fields.update(kw)
    return FillReport(**fields)  # type: ignore[arg-type]


async def saved(factory: Factory, bot_id: int, **kw: object) -> Order:
    async with factory() as session, session.begin():
        return await save_order_intent(session, intent(bot_id, **kw))  # type: ignore[arg-type]


async def reload(factory: Factory, client_order_id: str) -> Order:
    async with factory() as session:
        order = await get_order(session, client_order_id=client_order_id)
    assert order is not None
    return order


def test_client_order_ids_are_unique_prefixed_and_fit_exchanges() -> None:
    ids = {new_client_order_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith(CLIENT_ID_PREFIX) and len(i) <= 36 for i in ids)
    assert new_client_order_id("bt1").startswith("bt1")
    with pytest.raises(ValueError, match="prefix"):
        new_client_order_id("too-long")


async def test_intent_is_saved_with_a_client_id_before_anything_else(factory: Factory, bot_id: int) -> None:
    order = await saved(factory, bot_id)
    stored = await reload(factory, order.client_order_id)
    assert stored.status == OrderStatus.INTENT
    assert stored.client_order_id.startswith(CLIENT_ID_PREFIX)
    assert stored.amount == Decimal(1) and stored.price == Decimal("60000.5")
    assert stored.filled == 0 and stored.average_price is None and stored.fees == {}
    assert stored.signal_time == T0 and stored.created_at.tzinfo is not None


async def test_submit_order_commits_intent_then_sent_before_calling_send(
    factory: Factory, bot_id: int
) -> None:
    seen: list[OrderStatus] = []

    async def send(order: Order) -> str:
        # What another process (or a restart) would find while the request is in flight.
        seen.append((await reload(factory, order.client_order_id)).status)
        return "X-1"

    order = await submit_order(factory, intent(bot_id), send)
    assert seen == [OrderStatus.SENT]
    stored = await reload(factory, order.client_order_id)
    assert (stored.status, stored.exchange_order_id) == (OrderStatus.OPEN, "X-1")


async def test_nothing_is_sent_when_the_intent_cannot_be_saved(factory: Factory, bot_id: int) -> None:
    first = await saved(factory, bot_id)
    calls: list[Order] = []

    async def send(order: Order) -> str:
        calls.append(order)
        return "X"

    # Same client order id: the unique constraint refuses the save.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await submit_order(factory, intent(bot_id, client_order_id=first.client_order_id), send)
    with pytest.raises(ValueError, match="amount must be positive"):
        await submit_order(factory, intent(bot_id, amount="0"), send)
    # A bot that does not exist: the foreign key refuses it.
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        await submit_order(factory, intent(bot_id + 999), send)
    assert calls == []
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1


async def test_a_failed_send_leaves_the_order_sent_for_reconciliation(factory: Factory, bot_id: int) -> None:
    async def send(order: Order) -> str:
        raise TimeoutError("exchange did not answer")

    with pytest.raises(TimeoutError):
        await submit_order(factory, intent(bot_id, client_order_id="yetimeout1"), send)
    assert (await reload(factory, "yetimeout1")).status == OrderStatus.SENT


async def test_intent_validation(factory: Factory, bot_id: int) -> None:
    with pytest.raises(ValueError, match="needs a price"):
        await saved(factory, bot_id, price=None)
    with pytest.raises(ValueError, match="needs a stop price"):
        await saved(factory, bot_id, type=OrderType.STOP_MARKET, price=None)
    with pytest.raises(ValueError, match="invalid client order id"):
        await saved(factory, bot_id, client_order_id="has space")
    market = await saved(factory, bot_id, type=OrderType.MARKET, price=None)
    assert market.price is None


async def test_partial_fills_sum_exactly(factory: Factory, bot_id: int) -> None:
    order = await saved(factory, bot_id, amount="0.3")
    cid = order.client_order_id
    # 0.1 + 0.1 + 0.1 is not 0.3 in binary floating point; the store must say filled.
    for i, price in enumerate(("60000.1", "60000.2", "60000.3")):
        async with factory() as session, session.begin():
            assert await apply_fill(
                session, fill(f"t{i}", "0.1", price, client_order_id=cid, fee="0.0001", fee_currency="BNB")
            )
        status = (await reload(factory, cid)).status
        assert status == (OrderStatus.FILLED if i == 2 else OrderStatus.PARTIALLY_FILLED)
    stored = await reload(factory, cid)
    assert stored.filled == Decimal("0.3") == stored.amount
    assert stored.cost == Decimal("18000.06")
    assert stored.average_price == Decimal("60000.2")
    assert stored.fees == {"BNB": "0.0003"}


async def test_floats_from_the_exchange_are_taken_at_their_shortest_repr(
    factory: Factory, bot_id: int
) -> None:
    order = await saved(factory, bot_id, amount=0.3)
    for i in range(3):
        async with factory() as session, session.begin():
            await apply_fill(session, fill(f"f{i}", 0.1, 0.1, client_order_id=order.client_order_id))  # type: ignore[arg-type]
    stored = await reload(factory, order.client_order_id)
    assert stored.filled == Decimal("0.3") and stored.status == OrderStatus.FILLED
    assert stored.cost == Decimal("0.03")


async def test_sums_beyond_28_significant_digits_stay_exact(factory: Factory, bot_id: int) -> None:
    # Python's default decimal context would round these (32 significant digits) silently.
    big = "12345678901234.123456789012345678"
    order = await saved(factory, bot_id, amount="24691357802468.246913578024691356", price="1")
    async with factory() as session, session.begin():
        await apply_fill(
            session, fill("b1", big, "1.000000000000000001", client_order_id=order.client_order_id)
        )
        await apply_fill(session, fill("b2", big, "1", client_order_id=order.client_order_id))
    stored = await reload(factory, order.client_order_id)
    assert stored.filled == Decimal("24691357802468.246913578024691356") == stored.amount
    assert stored.status == OrderStatus.FILLED
    # 2 * big + big * 1e-18, to 18 decimal places.
    assert stored.cost == Decimal("24691357802468.246925923703592590")


async def test_duplicate_fill_is_ignored(factory: Factory, bot_id: int) -> None:
    order = await saved(factory, bot_id, amount="2")
    report = fill("dup-1", "0.5", client_order_id=order.client_order_id, fee="0.25", fee_currency="USDT")
    results = []
    for _ in range(3):
        async with factory() as session, session.begin():
            results.append(await apply_fill(session, report))
    assert results == [True, False, False]
    stored = await reload(factory, order.client_order_id)
    assert stored.filled == Decimal("0.5") and stored.fees == {"USDT": "0.25"}
    async with factory() as session:
        assert len(await list_fills(session, stored.id)) == 1


async def test_same_trade_id_on_another_order_is_a_different_fill(factory: Factory, bot_id: int) -> None:
    a = await saved(factory, bot_id)
    b = await saved(factory, bot_id)
    async with factory() as session, session.begin():
        assert await apply_fill(session, fill("7", "0.5", client_order_id=a.client_order_id))
        assert await apply_fill(session, fill("7", "0.5", client_order_id=b.client_order_id))


async def test_fill_before_acknowledgement(factory: Factory, bot_id: int) -> None:
    order = await saved(factory, bot_id, amount="1")
    async with factory() as session, session.begin():
        await mark_sent(session, order.client_order_id)
    # The execution report overtakes the order's acknowledgement and names both ids.
    async with factory() as session, session.begin():
        await apply_fill(
            session, fill("e1", "0.4", client_order_id=order.client_order_id, exchange_order_id="EX-9")
        )
    mid = await reload(factory, order.client_order_id)
    assert (mid.status, mid.exchange_order_id, mid.filled) == (
        OrderStatus.PARTIALLY_FILLED,
        "EX-9",
        Decimal("0.4"),
    )
    # A later fill can find the order by the exchange id alone.
    async with factory() as session, session.begin():
        await apply_fill(session, fill("e2", "0.6", exchange_order_id="EX-9"))
    # The late acknowledgement must not move the order back to "open".
    async with factory() as session, session.begin():
        await mark_acknowledged(session, order.client_order_id, "EX-9")
    final = await reload(factory, order.client_order_id)
    assert (final.status, final.filled) == (OrderStatus.FILLED, Decimal(1))


async def test_statuses_only_move_forward(factory: Factory, bot_id: int) -> None:
    order = await saved(factory, bot_id)
    cid = order.client_order_id
    async with factory() as session, session.begin():
        await mark_acknowledged(session, cid, "EX-1")
        await mark_sent(session, cid)  # late: ignored
    assert (await reload(factory, cid)).status == OrderStatus.OPEN
    async with factory() as session, session.begin():
        await apply_fill(session, fill("p1", "0.25", client_order_id=cid))
        await mark_closed(session, cid, OrderStatus.CANCELLED)
        await mark_closed(session, cid, OrderStatus.FAILED, error="late")  # already ended: ignored
    cancelled = await reload(factory, cid)
    assert (cancelled.status, cancelled.filled, cancelled.error) == (
        OrderStatus.CANCELLED,
        Decimal("0.25"),
        None,
    )
    # A fill the exchange reports after the cancellation still counts.
    async with factory() as session, session.begin():
        assert await apply_fill(session, fill("p2", "0.25", client_order_id=cid))
    assert (await reload(factory, cid)).filled == Decimal("0.5")
    with pytest.raises(ValueError, match="cancelled, rejected or failed"):
        async with factory() as session, session.begin():
            await mark_closed(session, cid, OrderStatus.OPEN)


async def test_rejection_keeps_the_reason(factory: Factory, bot_id: int) -> None:
    order = await saved(factory, bot_id)
    async with factory() as session, session.begin():
        await mark_closed(session, order.client_order_id, OrderStatus.REJECTED, error="MIN_NOTIONAL")
    stored = await reload(factory, order.client_order_id)
    assert (stored.status, stored.error) == (OrderStatus.REJECTED, "MIN_NOTIONAL")


async def test_unknown_orders_and_conflicting_ids(factory: Factory, bot_id: int) -> None:
    with pytest.raises(OrderNotFoundError, match="exchange order id 'nope'"):
        async with factory() as session, session.begin():
            await apply_fill(session, fill("x", "1", exchange_order_id="nope"))
    with pytest.raises(OrderNotFoundError):
        async with factory() as session, session.begin():
            await mark_sent(session, "ye-unknown")
    order = await saved(factory, bot_id)
    async with factory() as session, session.begin():
        await mark_acknowledged(session, order.client_order_id, "EX-A")
    # Even a caller that catches the refusal and commits stores nothing of the fill.
    async with factory() as session, session.begin():
        with pytest.raises(StoreError, match="already has exchange id 'EX-A'"):
            await apply_fill(
                session, fill("x", "1", client_order_id=order.client_order_id, exchange_order_id="EX-B")
            )
    with pytest.raises(ValueError, match="must name its order"):
        fill("x", "1")
    with pytest.raises(ValueError, match="needs its currency"):
        async with factory() as session, session.begin():
            await apply_fill(session, fill("y", "1", client_order_id=order.client_order_id, fee="0.1"))
    # The refused fills changed nothing.
    assert (await reload(factory, order.client_order_id)).filled == 0
    async with factory() as session:
        assert await list_fills(session, order.id) == []


async def test_exchange_ids_from_different_exchanges_do_not_mix(factory: Factory, bot_id: int) -> None:
    async with factory() as session, session.begin():
        other = await upsert_bot(session, name="on-bybit", config_hash="h", mode=BotMode.PAPER)
    a = await saved(factory, bot_id)
    b = await saved(factory, other.id)
    async with factory() as session, session.begin():
        await mark_acknowledged(session, a.client_order_id, "1001")
        await mark_acknowledged(session, b.client_order_id, "1001")
    with pytest.raises(StoreError, match="share an exchange order id"):
        async with factory() as session, session.begin():
            await apply_fill(session, fill("t", "0.5", exchange_order_id="1001"))
    async with factory() as session, session.begin():
        assert await apply_fill(session, fill("t", "0.5", exchange_order_id="1001", bot_id=other.id))
    assert (await reload(factory, a.client_order_id)).filled == 0
    assert (await reload(factory, b.client_order_id)).filled == Decimal("0.5")


async def test_list_open_orders(factory: Factory, bot_id: int) -> None:
    a = await saved(factory, bot_id)
    b = await saved(factory, bot_id)
    c = await saved(factory, bot_id, amount="0.5")
    async with factory() as session, session.begin():
        await mark_closed(session, b.client_order_id, OrderStatus.CANCELLED)
        await apply_fill(session, fill("c1", "0.5", client_order_id=c.client_order_id))
    async with factory() as session:
        open_ids = [o.client_order_id for o in await list_open_orders(session, bot_id)]
        assert open_ids == [a.client_order_id]
        assert await list_open_orders(session, bot_id + 1) == []


async def test_concurrent_fills_on_one_order_stay_exact(factory: Factory, bot_id: int) -> None:
    """Twenty writers, each with its own connection, report forty fills of 0.01 (every one twice)."""
    order = await saved(factory, bot_id, amount="0.2")
    cid = order.client_order_id

    async def writer(n: int) -> bool:
        async with factory() as session, session.begin():
            return await apply_fill(
                session, fill(f"c{n % 20}", "0.01", f"100.{n % 20:02d}", client_order_id=cid)
            )

    results = await asyncio.gather(*(writer(n) for n in range(40)))
    assert sum(results) == 20
    stored = await reload(factory, cid)
    assert stored.filled == Decimal("0.2") and stored.status == OrderStatus.FILLED
    assert stored.cost == sum(Decimal("0.01") * Decimal(f"100.{i:02d}") for i in range(20))
    async with factory() as session:
        assert len(await list_fills(session, stored.id)) == 20


async def test_concurrent_orders_from_many_writers(factory: Factory, bot_id: int) -> None:
    async def place(n: int) -> str:
        async def send(order: Order) -> str:
            await asyncio.sleep(0)
            return f"EX-{n}"

        order = await submit_order(factory, intent(bot_id, amount=f"0.{n + 1}"), send)
        async with factory() as session, session.begin():
            await apply_fill(session, fill(f"t{n}", f"0.{n + 1}", exchange_order_id=f"EX-{n}"))
        return order.client_order_id

    ids = await asyncio.gather(*(place(n) for n in range(9)))
    assert len(set(ids)) == 9
    async with factory() as session:
        orders = (await session.execute(select(Order))).scalars().all()
    assert {o.status for o in orders} == {OrderStatus.FILLED}
    assert sum(o.filled for o in orders) == Decimal("4.5")


async def test_an_order_given_up_on_then_filled_loses_its_failure_reason(
    factory: Factory, bot_id: int
) -> None:
    order = await saved(factory, bot_id, amount="1")
    async with factory() as session, session.begin():
        await mark_sent(session, order.client_order_id)
        await mark_closed(
            session,
            order.client_order_id,
            OrderStatus.FAILED,
            error="not found on the exchange after 3 checks",
        )
    async with factory() as session, session.begin():
        await apply_fill(session, fill("e1", "1", client_order_id=order.client_order_id))
    final = await reload(factory, order.client_order_id)
    assert (final.status, final.filled, final.error) == (OrderStatus.FILLED, Decimal(1), None)
