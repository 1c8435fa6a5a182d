from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Context, Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store import (
    Balance,
    BotMode,
    Event,
    EventCategory,
    get_balances,
    record_event,
    set_balance,
    upsert_bot,
)
from engine.store.types import json_safe, to_decimal

Factory = async_sessionmaker[AsyncSession]

AWKWARD = [
    "0.1",
    "0.000000000000000001",
    "99999999999999999999.999999999999999999",
    "123.450",
    "1E+2",
    "-0.5",
    "0",
]


@pytest.mark.parametrize("text", AWKWARD)
async def test_money_round_trips_exactly(factory: Factory, text: str) -> None:
    async with factory() as session, session.begin():
        await set_balance(session, "paper", "X", free=Decimal(text).copy_abs(), used=text.lstrip("-"))
    async with factory() as session:
        free, used = (await get_balances(session, "paper"))["X"]
    expected = Decimal(text).copy_abs()
    assert free == used == expected
    # The same Decimal (digits and exponent) from both back ends, without trailing zeros.
    assert free.as_tuple() == to_decimal(expected).as_tuple()
    assert format(free, "f") == format(expected.normalize(Context(prec=60)), "f")


def test_to_decimal() -> None:
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(1e-7) == Decimal("0.0000001")
    assert str(to_decimal("100.000")) == "100"
    assert to_decimal("0.0000000000000000004") == 0  # below the 18-decimal scale
    for bad in ("nan", "inf", "abc", 1e30):
        with pytest.raises(ValueError):
            to_decimal(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_decimal(True)


@given(st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False, allow_infinity=False))
def test_to_decimal_keeps_every_exchange_precision_value(value: Decimal) -> None:
    assert to_decimal(value) == value
    assert to_decimal(str(value)) == value


async def test_times_come_back_as_utc(factory: Factory) -> None:
    cet = timezone(timedelta(hours=1))
    async with factory() as session, session.begin():
        await record_event(
            session,
            EventCategory.SYSTEM,
            "start",
            "hello",
            time=datetime(2024, 1, 1, 13, 30, 0, 123456, tzinfo=cet),
        )
    async with factory() as session:
        event = (await session.execute(select(Event))).scalar_one()
    assert event.time == datetime(2024, 1, 1, 12, 30, 0, 123456, tzinfo=UTC)
    assert event.time.tzinfo == UTC


async def test_naive_times_are_refused(factory: Factory) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        async with factory() as session, session.begin():
            await record_event(session, EventCategory.SYSTEM, "x", "y", time=datetime(2024, 1, 1))


async def test_json_columns_accept_numpy_and_nan(factory: Factory) -> None:
    async with factory() as session, session.begin():
        bot = await upsert_bot(session, name="b", config_hash="h", mode=BotMode.PAPER)
        await record_event(
            session,
            EventCategory.RISK,
            "blocked",
            "max drawdown",
            bot_id=bot.id,
            data={"dd": np.float64(0.25), "n": np.int64(3), "nan": float("nan"), "ok": np.bool_(True)},
        )
    async with factory() as session:
        event = (await session.execute(select(Event))).scalar_one()
    assert event.data == {"dd": 0.25, "n": 3, "nan": None, "ok": True}


async def test_json_none_is_sql_null(factory: Factory) -> None:
    async with factory() as session, session.begin():
        await record_event(session, EventCategory.SYSTEM, "a", "no data")
        await record_event(session, EventCategory.SYSTEM, "b", "data", data={})
    async with factory() as session:
        kinds = (await session.execute(select(Event.kind).where(Event.data.is_(None)))).scalars().all()
    assert kinds == ["a"]


def test_json_safe() -> None:
    assert json_safe({"a": (1, Decimal("0.10")), "d": date(2024, 1, 2), "e": BotMode.LIVE}) == {
        "a": [1, "0.10"],
        "d": "2024-01-02",
        "e": "live",
    }
    with pytest.raises(TypeError, match=r"\$\.x\[1\]: object"):
        json_safe({"x": [1, object()]})


async def test_balances_are_one_row_per_account_and_asset(factory: Factory) -> None:
    async with factory() as session, session.begin():
        await set_balance(session, "paper", "USDT", free="1000", used="0")
        await set_balance(session, "paper", "USDT", free="900.5", used="99.5")
        await set_balance(session, "other", "USDT", free="1", used="0")
    async with factory() as session:
        assert await get_balances(session, "paper") == {"USDT": (Decimal("900.5"), Decimal("99.5"))}
        assert len((await session.execute(select(Balance))).scalars().all()) == 2
    with pytest.raises(ValueError, match="cannot be negative"):
        async with factory() as session, session.begin():
            await set_balance(session, "paper", "USDT", free="-1", used="0")
