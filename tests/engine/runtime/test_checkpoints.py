"""The checkpoints table (one row per bot, migration 0003 and the fallback on old checkpoint events) and the
group committer (one transaction, one savepoint per job). On SQLite, and on PostgreSQL when
ENGINE_TEST_POSTGRES_URL is set (the store tests' fixtures)."""

from __future__ import annotations

import asyncio

import numpy as np
from sqlalchemy import func, select

from engine.runtime.checkpoint import _ARRAYS, dump_state, load_checkpoint, load_state, save_checkpoint
from engine.runtime.commit import Committer, RowInsert
from engine.store import (
    BotMode,
    EventCategory,
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    create_engine_for,
    insert_order_rows,
    order_intent_values,
    record_event,
    upgrade_async,
    upsert_bot,
)
from engine.store.models import Checkpoint, Event, Order
from engine.trading.params import TradingParams
from engine.trading.state import TradingState
from tests.engine.store import conftest as _store

# The store tests' fixtures: SQLite, and PostgreSQL when ENGINE_TEST_POSTGRES_URL is set.
backend = _store.backend
empty_db_url = _store.empty_db_url
sqlite_template = _store.sqlite_template
postgres_worker_url = _store.postgres_worker_url
migrated_source = _store.migrated_source
db_url = _store.db_url
engine = _store.engine
factory = _store.factory
bot_id = _store.bot_id

PAIRS = ("ETH/USDT", "BTC/USDT")


def _state(cash: float) -> TradingState:
    state = TradingState.new(PAIRS, TradingParams(initial_capital=1000.0))
    state.acct_f[0] = cash
    return state


async def test_one_row_per_bot_replaced_on_every_save(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    for time, cash in ((1, 900.0), (2, 800.0)):
        async with factory() as session, session.begin():
            await save_checkpoint(
                session, bot_id, time=time, pairs=PAIRS, timeframe="5m", state=_state(cash), config_hash="h"
            )
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(Checkpoint)) == 1
        saved = await load_checkpoint(session, bot_id)
    assert saved is not None and saved.time == 2 and saved.pairs == PAIRS and saved.timeframe == "5m"
    assert load_state(saved.state).cash == 800.0 and saved.config_hash == "h"


async def test_an_old_checkpoint_event_is_read_once(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    data = {"time": 7, "pairs": list(PAIRS), "timeframe": "1h", "state": dump_state(_state(500.0))}
    async with factory() as session, session.begin():
        await record_event(session, EventCategory.SYSTEM, "checkpoint", "old", bot_id=bot_id, data=data)
    async with factory() as session, session.begin():
        saved = await load_checkpoint(session, bot_id)
    assert saved is not None and saved.time == 7 and load_state(saved.state).cash == 500.0
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 0
        assert await load_checkpoint(session, bot_id) is None


async def test_migration_moves_the_newest_checkpoint_event_of_each_bot(empty_db_url: str) -> None:
    from engine.store import session_factory

    await upgrade_async(empty_db_url, "0002")
    eng = create_engine_for(empty_db_url)
    try:
        made = session_factory(eng)
        async with made() as session, session.begin():
            bot = await upsert_bot(session, name="eth", config_hash="cafe", mode=BotMode.PAPER)
            for time, cash in ((1, 900.0), (2, 700.0)):
                data = {
                    "time": time,
                    "pairs": list(PAIRS),
                    "timeframe": "5m",
                    "state": dump_state(_state(cash)),
                }
                await record_event(session, EventCategory.SYSTEM, "checkpoint", "s", bot_id=bot.id, data=data)
            await record_event(session, EventCategory.SYSTEM, "engine_started", "kept")
        await upgrade_async(eng)
        async with made() as session:
            saved = await load_checkpoint(session, bot.id)
            kinds = list((await session.execute(select(Event.kind))).scalars())
    finally:
        await eng.dispose()
    assert saved is not None and saved.time == 2 and saved.config_hash == "cafe"
    assert load_state(saved.state).cash == 700.0
    assert kinds == ["engine_started"]


async def test_group_commit_keeps_the_other_jobs_when_one_fails(factory) -> None:  # type: ignore[no-untyped-def]
    committer = Committer(factory)

    def job(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
        async def write(session):  # type: ignore[no-untyped-def]
            await record_event(session, EventCategory.SYSTEM, "note", name)
            if fail:
                raise RuntimeError(f"{name} broke")
            return name

        return write

    results = await asyncio.gather(
        committer.run(job("a")),
        committer.run(job("b", fail=True)),
        committer.run(job("c")),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], RuntimeError) and "b broke" in str(results[1])
    assert committer.transactions == 1 and committer.jobs == 3
    async with factory() as session:
        messages = sorted((await session.execute(select(Event.message))).scalars())
    assert messages == ["a", "c"]


async def test_without_grouping_each_job_has_its_own_transaction(factory) -> None:  # type: ignore[no-untyped-def]
    committer = Committer(factory, group=False, lock=asyncio.Lock())

    async def write(session):  # type: ignore[no-untyped-def]
        await record_event(session, EventCategory.SYSTEM, "note", "x")
        return np.int64(1)

    assert await asyncio.gather(*(committer.run(write) for _ in range(3))) == [1, 1, 1]
    assert committer.transactions == 3


def test_a_checkpoint_in_the_older_npz_text_still_loads() -> None:
    import base64
    import io

    state = _state(640.0)
    buffer = io.BytesIO()
    arrays = {name: getattr(state, name) for name in _ARRAYS}
    np.savez_compressed(buffer, pairs=np.array(state.pairs, dtype=str), **arrays)
    old = base64.b64encode(buffer.getvalue()).decode("ascii")
    loaded = load_state(old)
    assert loaded.cash == 640.0 and loaded.pairs == PAIRS
    again = load_state(dump_state(loaded))
    for name in ("prm_i", "prm_f", "acct_f", "acct_i", "pos_f", "pos_i", "ring"):
        assert np.array_equal(getattr(again, name), getattr(state, name), equal_nan=True), name


async def test_urgent_jobs_are_written_before_waiting_bookkeeping(factory) -> None:  # type: ignore[no-untyped-def]
    committer = Committer(factory, chunk=2)
    order: list[str] = []

    def job(name: str):  # type: ignore[no-untyped-def]
        async def write(session):  # type: ignore[no-untyped-def]
            await record_event(session, EventCategory.SYSTEM, "note", name)
            order.append(name)

        return write

    # Five bookkeeping jobs and one intent handed in during the same turn of the loop.
    await asyncio.gather(
        *(committer.run(job(f"book{k}")) for k in range(5)), committer.run(job("intent"), urgent=True)
    )
    assert order[0] == "intent"
    assert order[1:] == [f"book{k}" for k in range(5)]
    # the intent alone, then bookkeeping in chunks of two
    assert committer.urgent_transactions == 1 and committer.transactions == 4


async def test_a_failing_urgent_job_fails_alone(factory) -> None:  # type: ignore[no-untyped-def]
    committer = Committer(factory)
    runs: list[str] = []

    def job(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
        async def write(session):  # type: ignore[no-untyped-def]
            runs.append(name)
            await record_event(session, EventCategory.SYSTEM, "note", name)
            if fail:
                raise RuntimeError(f"{name} broke")
            return name

        return write

    results = await asyncio.gather(
        committer.run(job("a"), urgent=True),
        committer.run(job("b", fail=True), urgent=True),
        committer.run(job("c"), urgent=True),
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "c" and isinstance(results[1], RuntimeError)
    # Without savepoints first (a, b: b raised, all rolled back), then each in its own savepoint.
    assert runs == ["a", "b", "a", "b", "c"]
    async with factory() as session:
        messages = sorted((await session.execute(select(Event.message))).scalars())
    assert messages == ["a", "c"]


def _intent_row(bot_id: int, cid: str, *, amount: float, signal_time=None) -> dict:  # type: ignore[no-untyped-def]
    """The row of a market buy decided on a close, saved as sent."""
    return order_intent_values(
        OrderIntent(
            bot_id=bot_id,
            pair="ETH/USDT",
            side=OrderSide.BUY,
            type=OrderType.MARKET,
            amount=amount,
            reason="open_long",
            signal_time=signal_time,
            client_order_id=cid,
        ),
        OrderStatus.SENT,
    )


async def test_order_intents_of_many_bots_are_one_insert_and_a_duplicate_fails_alone(
    factory,  # type: ignore[no-untyped-def]
    bot_id: int,
) -> None:
    committer = Committer(factory)
    calls: list[int] = []

    async def insert(session, rows):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        await insert_order_rows(session, rows)

    def intent(cid: str) -> dict:
        return _intent_row(bot_id, cid, amount=0.5)

    await asyncio.gather(
        *(committer.run(RowInsert(insert, [intent(f"ye-a{k}")]), urgent=True) for k in range(4))
    )
    assert calls == [4]  # four bots' intents, one executemany
    assert committer.urgent_transactions == 1

    # A client id stored already: the merged insert fails, then each job alone; only that one fails.
    calls.clear()
    results = await asyncio.gather(
        committer.run(RowInsert(insert, [intent("ye-b1")]), urgent=True),
        committer.run(RowInsert(insert, [intent("ye-a0")]), urgent=True),
        committer.run(RowInsert(insert, [intent("ye-b2"), intent("ye-b3")]), urgent=True),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None and isinstance(results[1], Exception)
    assert calls == [4, 1, 1, 2]
    async with factory() as session:
        rows = (await session.execute(select(Order.client_order_id, Order.status, Order.amount))).all()
    assert sorted(r[0] for r in rows) == ["ye-a0", "ye-a1", "ye-a2", "ye-a3", "ye-b1", "ye-b2", "ye-b3"]
    assert {r[1] for r in rows} == {OrderStatus.SENT}
    assert {str(r[2]) for r in rows} == {"0.5"}


async def test_order_rows_inserted_at_once_are_stored_as_the_orm_stores_them(factory, bot_id: int) -> None:  # type: ignore[no-untyped-def]
    """insert_order_rows writes SQLite rows through the driver: the stored text must be the ORM's."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from engine.store import save_order_intent

    def intent(cid: str) -> OrderIntent:
        return OrderIntent(
            bot_id=bot_id,
            pair="ETH/USDT",
            side=OrderSide.SELL,
            type=OrderType.MARKET,
            amount=0.123456789,
            reason="close",
            signal_time=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            client_order_id=cid,
        )

    async with factory() as session, session.begin():
        row = await save_order_intent(session, intent("ye-orm"))
        row.status = OrderStatus.SENT
        await session.flush()
        await insert_order_rows(session, [order_intent_values(intent("ye-rows"), OrderStatus.SENT)])
    async with factory() as session:
        stored = (
            (await session.execute(text("SELECT * FROM orders ORDER BY client_order_id"))).mappings().all()
        )
    skip = {"id", "client_order_id", "created_at", "updated_at"}
    by_orm, by_rows = ({k: v for k, v in r.items() if k not in skip} for r in (stored[0], stored[1]))
    assert by_rows == by_orm
    assert type(stored[0]["created_at"]) is type(stored[1]["created_at"])


async def test_a_rounds_order_rows_go_through_the_direct_writer_and_a_duplicate_still_fails_alone(
    factory,  # type: ignore[no-untyped-def]
    bot_id: int,
    backend: str,
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    committer = Committer(factory)
    assert (committer.direct is not None) == (backend == "sqlite")  # a file database: its own connection

    def intent(cid: str) -> dict:
        return _intent_row(bot_id, cid, amount=0.25, signal_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))

    await asyncio.gather(
        *(committer.run(RowInsert(insert_order_rows, [intent(f"ye-d{k}")]), urgent=True) for k in range(3))
    )
    results = await asyncio.gather(
        committer.run(RowInsert(insert_order_rows, [intent("ye-d9")]), urgent=True),
        committer.run(RowInsert(insert_order_rows, [intent("ye-d0")]), urgent=True),
        return_exceptions=True,
    )
    committer.close()
    assert results[0] is None and isinstance(results[1], Exception)
    # The same rows through the session, for the stored text.
    async with factory() as session, session.begin():
        await insert_order_rows(session, [intent("ye-s0")])
    async with factory() as session:
        stored = (
            (await session.execute(text("SELECT * FROM orders ORDER BY client_order_id"))).mappings().all()
        )
    assert [r["client_order_id"] for r in stored] == ["ye-d0", "ye-d1", "ye-d2", "ye-d9", "ye-s0"]
    skip = {"id", "client_order_id", "created_at", "updated_at"}
    shapes = [{k: v for k, v in r.items() if k not in skip} for r in stored]
    assert all(shape == shapes[-1] for shape in shapes)
    assert len({type(r["created_at"]) for r in stored}) == 1
