"""A process that writes to the store until it is killed (used by test_crash.py).

Each round is one transaction, the shape of what the engine writes for one filled order: the order
intent, three fills, the position and an event. It prints ``MID n`` while round ``n`` is written but not
committed, and ``COMMITTED n`` after the commit. On start it holds the lease ``crash-test`` and resumes
after the last committed round.

    python crash_writer.py URL OWNER [PAUSE_SECONDS]
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from engine.store import (
    BotMode,
    FillReport,
    Order,
    OrderIntent,
    OrderSide,
    OrderType,
    PositionSide,
    PositionState,
    acquire_lease,
    apply_fill,
    create_engine_for,
    record_event,
    save_order_intent,
    session_factory,
    upsert_bot,
    upsert_position,
)
from engine.store.enums import EventCategory

LEASE = "crash-test"
LEASE_TTL = timedelta(seconds=2)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


async def main(url: str, owner: str, pause: float) -> None:
    engine = create_engine_for(url)
    factory = session_factory(engine)
    await acquire_lease(factory, LEASE, owner, ttl=LEASE_TTL)
    async with factory() as session, session.begin():
        bot = await upsert_bot(session, name="crash", config_hash="h", mode=BotMode.PAPER)
        n = await session.scalar(select(func.count()).select_from(Order)) or 0
    print("READY", flush=True)
    while True:
        async with factory() as session, session.begin():
            cid = f"crash{n:05d}"
            await save_order_intent(
                session,
                OrderIntent(
                    bot.id, "BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal("0.3"), client_order_id=cid
                ),
            )
            for i in range(3):
                await apply_fill(
                    session,
                    FillReport(f"{n}-{i}", "0.1", "100.1", T0 + timedelta(minutes=n), client_order_id=cid),
                )
            await upsert_position(
                session,
                bot.id,
                PositionState("BTC/USDT", PositionSide.LONG, Decimal("0.3") * (n + 1), "100.1", T0),
            )
            await record_event(session, EventCategory.ORDER, "filled", cid, bot_id=bot.id, data={"n": n})
            print(f"MID {n}", flush=True)
            if pause:
                await asyncio.sleep(pause)
        print(f"COMMITTED {n}", flush=True)
        n += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))
