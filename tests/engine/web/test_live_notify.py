"""PostgreSQL: another process's write commit wakes the server's tails at once through LISTEN/NOTIFY,
instead of at their next tick (issue 15: a separate ``engine run``)."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap

import pytest

from engine.store.db import create_engine_for, session_factory, upgrade_async
from engine.web import live_tail
from engine.web.live_tail import EVENTS, StoreTail
from tests.engine.store.conftest import POSTGRES_ENV, create_postgres_schema, drop_postgres_schema

pytestmark = pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"PostgreSQL: set {POSTGRES_ENV}")

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from engine.store import EventCategory, record_event
    from engine.store.db import create_engine_for, session_factory

    async def main():
        engine = create_engine_for(sys.argv[1])
        async with session_factory(engine)() as db, db.begin():
            await record_event(db, EventCategory.SYSTEM, "from_elsewhere", "written by another process")
        await engine.dispose()

    asyncio.run(main())
    """
)


async def test_another_process_s_commit_wakes_the_tail_without_waiting_for_a_tick() -> None:
    url = await create_postgres_schema()
    engine = create_engine_for(url)
    try:
        await upgrade_async(engine)
        tail = StoreTail(session_factory(engine), EVENTS, interval=3600)  # no tick within the test
        seen: list[str] = []
        await tail.watch(lambda rows: seen.extend(r.kind for r in rows))
        await asyncio.sleep(0.05)  # the tail's task starts, and with it the process's listener
        listener = next(iter(live_tail._LISTENERS.values()))
        await asyncio.wait_for(listener.listening.wait(), 30)
        await asyncio.sleep(0.2)  # the wake at connecting has been read
        writer = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, url)
        assert await writer.wait() == 0
        for _ in range(1000):
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen == ["from_elsewhere"]
        assert listener.notifications >= 1
        await tail.close()
        await listener.close()
    finally:
        await engine.dispose()
        await drop_postgres_schema(url)


def test_a_read_only_transaction_notifies_nobody() -> None:
    """The NOTIFY goes with write commits only (a reader's commit must not wake every server)."""
    statements: list[str] = []

    async def main() -> None:
        from sqlalchemy import event, select

        from engine.store.models import Event

        url = await create_postgres_schema()
        engine = create_engine_for(url)
        try:
            await upgrade_async(engine)
            event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            async with session_factory(engine)() as db, db.begin():
                await db.scalar(select(Event.id).limit(1))
            assert not [s for s in statements if s.startswith("NOTIFY")]
            from engine.store import EventCategory, record_event

            async with session_factory(engine)() as db, db.begin():
                await record_event(db, EventCategory.SYSTEM, "k", "m")
            assert [s for s in statements if s.startswith("NOTIFY")] == ["NOTIFY engine_live"]
        finally:
            await engine.dispose()
            await drop_postgres_schema(url)

    asyncio.run(main())
