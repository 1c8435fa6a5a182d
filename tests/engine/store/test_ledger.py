from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store import (
    BotMode,
    BotStatus,
    ClosedTrade,
    EventCategory,
    Position,
    PositionSide,
    PositionState,
    PositionStatus,
    close_position,
    get_bot,
    get_open_position,
    list_bots,
    list_equity,
    list_events,
    list_open_positions,
    list_trades,
    record_event,
    record_trade,
    set_bot_status,
    snapshot_equity,
    upsert_bot,
    upsert_position,
)

Factory = async_sessionmaker[AsyncSession]
T0 = datetime(2024, 2, 1, tzinfo=UTC)


def state(amount: str = "0.5", **kw: object) -> PositionState:
    fields: dict[str, object] = {
        "pair": "ETH/USDT",
        "side": PositionSide.LONG,
        "amount": amount,
        "entry_price": "2500.25",
        "opened_at": T0,
        "stop": "2400",
    }
    fields.update(kw)
    return PositionState(**fields)  # type: ignore[arg-type]


async def test_bots_keep_their_id_across_config_changes(factory: Factory) -> None:
    async with factory() as session, session.begin():
        first = await upsert_bot(
            session, name="eth", config_hash="v1", mode=BotMode.PAPER, config_path="bots/eth.yaml"
        )
    async with factory() as session, session.begin():
        second = await upsert_bot(
            session, name="eth", config_hash="v2", mode=BotMode.TESTNET, account="binance:test"
        )
        await upsert_bot(session, name="btc", config_hash="v1", mode=BotMode.PAPER)
    assert first.id == second.id
    async with factory() as session:
        bot = await get_bot(session, "eth")
        assert bot is not None
        assert (bot.config_hash, bot.mode, bot.account, bot.status) == (
            "v2",
            BotMode.TESTNET,
            "binance:test",
            BotStatus.STOPPED,
        )
        assert [b.name for b in await list_bots(session)] == ["btc", "eth"]
        assert await get_bot(session, "nope") is None


async def test_bot_status_and_last_error(factory: Factory, bot_id: int) -> None:
    async with factory() as session, session.begin():
        bot = await set_bot_status(session, bot_id, BotStatus.ERROR, error="DSL003 unknown function")
    assert (bot.status, bot.last_error) == (BotStatus.ERROR, "DSL003 unknown function")
    async with factory() as session, session.begin():
        bot = await set_bot_status(session, bot_id, BotStatus.RUNNING)
    assert (bot.status, bot.last_error) == (BotStatus.RUNNING, None)
    with pytest.raises(LookupError):
        async with factory() as session, session.begin():
            await set_bot_status(session, bot_id + 100, BotStatus.RUNNING)


async def test_upsert_position_updates_the_open_position(factory: Factory, bot_id: int) -> None:
    async with factory() as session, session.begin():
        first = await upsert_position(session, bot_id, state(trailing={"high": 2600.5, "armed": True}))
    async with factory() as session, session.begin():
        second = await upsert_position(session, bot_id, state("0.75", stop="2550", take_profit="2900"))
    assert first.id == second.id
    async with factory() as session:
        position = await get_open_position(session, bot_id, "ETH/USDT")
    assert position is not None
    assert (position.amount, position.stop, position.take_profit, position.trailing) == (
        Decimal("0.75"),
        Decimal(2550),
        Decimal(2900),
        None,
    )
    assert position.entry_price == Decimal("2500.25") and position.opened_at == T0


async def test_close_then_reopen_makes_a_new_position(factory: Factory, bot_id: int) -> None:
    async with factory() as session, session.begin():
        first = await upsert_position(session, bot_id, state())
        await upsert_position(session, bot_id, state(pair="BTC/USDT", side=PositionSide.SHORT))
    async with factory() as session, session.begin():
        closed = await close_position(session, bot_id, "ETH/USDT", T0 + timedelta(hours=5))
        assert await close_position(session, bot_id, "SOL/USDT", T0) is None
    assert closed is not None and closed.status == PositionStatus.CLOSED
    async with factory() as session, session.begin():
        again = await upsert_position(session, bot_id, state(opened_at=T0 + timedelta(days=1)))
    assert again.id != first.id
    async with factory() as session:
        assert sorted(p.pair for p in await list_open_positions(session, bot_id)) == ["BTC/USDT", "ETH/USDT"]
        assert len(await list_open_positions(session)) == 2


async def test_the_database_refuses_two_open_positions_on_one_pair(factory: Factory, bot_id: int) -> None:
    async with factory() as session, session.begin():
        await upsert_position(session, bot_id, state())
    with pytest.raises(IntegrityError):
        async with factory() as session, session.begin():
            session.add(
                Position(
                    bot_id=bot_id,
                    pair="ETH/USDT",
                    side=PositionSide.LONG,
                    amount=Decimal(1),
                    entry_price=Decimal(1),
                    opened_at=T0,
                )
            )


async def test_trades_are_recorded_exactly_and_listed_in_closing_order(factory: Factory, bot_id: int) -> None:
    trades = [
        ClosedTrade(
            pair="ETH/USDT",
            side=PositionSide.LONG,
            open_time=T0 + timedelta(hours=i),
            close_time=T0 + timedelta(hours=i, minutes=30),
            open_price="2500.1",
            close_price=2510.2,
            amount="0.3",
            profit_ratio=0.004,
            profit_abs="3.03",
            fees="0.1",
            exit_reason="roi",
        )
        for i in (2, 0, 1)
    ]
    async with factory() as session, session.begin():
        for trade in trades:
            await record_trade(session, bot_id, trade)
    async with factory() as session:
        stored = await list_trades(session, bot_id)
        last_two = await list_trades(session, bot_id, limit=2)
        since = await list_trades(session, bot_id, since=T0 + timedelta(hours=1))
    assert [t.open_time.hour for t in stored] == [0, 1, 2]
    assert [t.open_time.hour for t in last_two] == [1, 2]
    assert len(since) == 2
    assert (stored[0].close_price, stored[0].profit_abs, stored[0].amount) == (
        Decimal("2510.2"),
        Decimal("3.03"),
        Decimal("0.3"),
    )


async def test_equity_snapshots_per_bot_and_portfolio(factory: Factory, bot_id: int) -> None:
    async with factory() as session, session.begin():
        for i in range(3):
            await snapshot_equity(
                session, bot_id=bot_id, time=T0 + timedelta(minutes=i), equity=1000 + i, cash=500
            )
        await snapshot_equity(session, bot_id=None, time=T0, equity=5000.5, cash=4000)
    async with factory() as session:
        mine = await list_equity(session, bot_id=bot_id)
        portfolio = await list_equity(session, bot_id=None)
        recent = await list_equity(session, bot_id=bot_id, since=T0 + timedelta(minutes=1))
    assert [s.equity for s in mine] == [1000, 1001, 1002]
    assert [(s.equity, s.cash) for s in portfolio] == [(5000.5, 4000)]
    assert len(recent) == 2


async def test_events_are_listed_newest_first_with_filters(factory: Factory, bot_id: int) -> None:
    async with factory() as session, session.begin():
        await record_event(session, EventCategory.SYSTEM, "start", "engine started", time=T0)
        await record_event(
            session,
            EventCategory.TRADE,
            "exit",
            "ETH/USDT closed",
            bot_id=bot_id,
            data={"profit": 1.5},
            time=T0 + timedelta(seconds=2),
        )
        await record_event(
            session,
            EventCategory.RISK,
            "blocked",
            "max open trades",
            bot_id=bot_id,
            time=T0 + timedelta(seconds=1),
        )
    async with factory() as session:
        everything = await list_events(session)
        trades = await list_events(session, category=EventCategory.TRADE)
        for_bot = await list_events(session, bot_id=bot_id, limit=1)
        later = await list_events(session, since=T0 + timedelta(seconds=1))
    assert [e.kind for e in everything] == ["exit", "blocked", "start"]
    assert [(e.kind, e.data) for e in trades] == [("exit", {"profit": 1.5})]
    assert [e.kind for e in for_bot] == ["exit"]
    assert len(later) == 2


async def test_trade_and_risk_events_reach_their_log_category_whatever_their_data(
    factory: Factory, bot_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.store import EventCategory, record_event

    awkward = {"pair": "ETH/USDT", "mode": "paper", "kind": "x", "message": "m", "level": 5, "logger": "l"}
    with caplog.at_level("INFO", logger="engine"):
        async with factory() as session, session.begin():
            await record_event(session, EventCategory.TRADE, "opened", "a trade", bot_id=bot_id, data=awkward)
            await record_event(session, EventCategory.RISK, "blocked", "a refusal", bot_id=bot_id)
            await record_event(session, EventCategory.SYSTEM, "note", "not logged here", bot_id=bot_id)
    lines = [(r.name, r.getMessage()) for r in caplog.records if r.name in ("engine.trades", "engine.risk")]
    assert lines == [("engine.trades", "a trade"), ("engine.risk", "a refusal")]
