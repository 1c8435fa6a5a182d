"""The command pump: start/stop/close_position requested through the web's DbRuntimeControl are applied
by the runtime and marked done/failed in the same transaction as their event; a bot stopped by a
command stays stopped across an engine restart."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from sqlalchemy import select

from engine.store.models import Bot, BotCommand, Event, Position
from engine.web.control import DbRuntimeControl
from tests.engine.runtime.helpers import database, db_events, make_runtime

BOT = "eth-btc-trend"
OTHER = "xrp-futures-breakout"


async def _request(factory, bot: str, command: str, position_id: int | None = None) -> int:
    async with factory() as session, session.begin():
        bot_id = (await session.execute(select(Bot.id).where(Bot.name == bot))).scalar_one()
        row = await DbRuntimeControl().request(
            session, bot_id, command, user_id="u-1", position_id=position_id
        )
        return row.id


async def _command(factory, command_id: int) -> BotCommand:
    async with factory() as session:
        return await session.get(BotCommand, command_id)


async def _bot_status(factory, bot: str) -> str:
    async with factory() as session:
        row = (await session.execute(select(Bot).where(Bot.name == bot))).scalar_one()
        return row.status.value


async def _drive(runtime, candles: int) -> None:
    n = 0
    async for batch in runtime.feed.batches():
        await runtime.dispatch(batch)
        await runtime.settle()
        n += 1
        if n >= candles:
            return


async def test_stop_and_start_by_command(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-01 04:00", command_interval=None)
        await runtime.start()
        await _drive(runtime, 6)
        stop = await _request(factory, BOT, "stop")
        assert await runtime.commands.poll() == 1
        assert BOT not in runtime.slots and OTHER in runtime.slots
        done = await _command(factory, stop)
        assert done.status == "done" and done.handled_at is not None and done.error is None
        assert await _bot_status(factory, BOT) == "paused"
        assert {v.name: v.status for v in runtime.views()}[BOT] == "paused"
        candles, last = runtime.stopped[BOT].candles, runtime.stopped[BOT].last_candle

        await _drive(runtime, 6)
        assert runtime.stopped[BOT].candles == candles  # stopped means no more candles
        again = await _request(factory, BOT, "stop")  # stop a stopped bot: done, no effect
        start = await _request(factory, BOT, "start")
        twice = await _request(factory, BOT, "start")  # already running by then: done, no effect
        assert await runtime.commands.poll() == 3
        assert BOT in runtime.slots
        for command_id in (again, start, twice):
            assert (await _command(factory, command_id)).status == "done"
        assert await _bot_status(factory, BOT) == "running"
        await _drive(runtime, 3)
        assert runtime.runner(BOT).view.last_candle > last + pd.Timedelta(minutes=30)  # the gap skipped
        await runtime.stop()
        async with factory() as session:
            events = list(
                (
                    await session.execute(
                        select(Event).where(Event.kind.like("command_%")).order_by(Event.id)
                    )
                ).scalars()
            )
    assert [e.data["command_id"] for e in events] == [stop, again, start, twice]
    assert all(e.data["requested_by"] == "u-1" for e in events)
    assert "already running" in events[-1].message


async def test_a_bot_stopped_by_command_stays_stopped_after_a_restart(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-01 02:00", command_interval=None)
        await runtime.start()
        await _request(factory, BOT, "stop")
        await runtime.commands.poll()
        await runtime.stop()
        assert await _bot_status(factory, BOT) == "paused"  # the engine's own stop keeps it

        restarted = make_runtime(workspace, factory, end="2024-01-01 02:00", command_interval=None)
        await restarted.start()
        assert BOT not in restarted.slots and OTHER in restarted.slots
        assert {v.name: v.status for v in restarted.views()}[BOT] == "paused"
        await restarted.reload()  # a reload does not start it either
        assert BOT not in restarted.slots
        start = await _request(factory, BOT, "start")
        await restarted.commands.poll()
        assert BOT in restarted.slots
        assert (await _command(factory, start)).status == "done"
        await restarted.stop()
    assert await _bot_status(factory, BOT) == "stopped"


async def test_the_pump_runs_in_the_background(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-01 01:00", command_interval=0.05)
        await runtime.start()
        stop = await _request(factory, OTHER, "stop")
        for _ in range(200):
            if (await _command(factory, stop)).status != "pending":
                break
            await asyncio.sleep(0.02)
        assert (await _command(factory, stop)).status == "done"
        assert OTHER not in runtime.slots
        await runtime.stop()


@pytest.mark.slow
async def test_commands_that_cannot_apply_fail_with_a_message(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-02 00:00", command_interval=None)
        await runtime.start()
        bot = runtime.runner(BOT)
        closed = None
        async for batch in runtime.feed.batches():
            await runtime.dispatch(batch)
            await runtime.settle()
            async with factory() as session:
                closed = (
                    (
                        await session.execute(
                            select(Position).where(Position.bot_id == bot.bot_id, Position.status == "closed")
                        )
                    )
                    .scalars()
                    .first()
                )
            if closed is not None:
                break
        assert closed is not None, "the replay closes a trade before noon"
        late = await _request(factory, BOT, "close_position", position_id=closed.id)
        missing = await _request(factory, BOT, "close_position")
        # A bot the database knows but whose file is gone cannot be started.
        (workspace / "bots" / "xrp_futures_breakout.yaml").unlink()
        await runtime.reload()
        orphan = await _request(factory, OTHER, "start")
        await runtime.commands.poll()
        await runtime.stop()
        rows = {i: await _command(factory, i) for i in (late, missing, orphan)}
    assert all(r.status == "failed" and r.handled_at is not None for r in rows.values())
    assert "already closed" in rows[late].error and closed.pair in rows[late].error
    assert "needs a position id" in rows[missing].error
    assert "no valid bot file" in rows[orphan].error


async def _open_position(runtime, factory):  # type: ignore[no-untyped-def]
    """Drive the replay until the bot holds a position; that position's row."""
    bot = runtime.runner(BOT)
    async for batch in runtime.feed.batches():
        await runtime.dispatch(batch)
        await runtime.settle()
        if any(bot.trader.position(p) for p in bot.pairs):
            break
    pair = next(p for p in bot.pairs if bot.trader.position(p))
    async with factory() as session:
        return (
            await session.execute(
                select(Position).where(
                    Position.bot_id == bot.bot_id, Position.pair == pair, Position.status == "open"
                )
            )
        ).scalar_one()


@pytest.mark.slow
async def test_close_position_by_command(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-02 00:00", command_interval=None)
        await runtime.start()
        position = await _open_position(runtime, factory)
        command = await _request(factory, BOT, "close_position", position_id=position.id)
        await runtime.commands.poll()
        # Accepted, carried out by the bot's next candle: pending until that candle commits, and not
        # applied twice by the polls in between.
        assert (await _command(factory, command)).status == "pending"
        assert await runtime.commands.poll() == 0
        assert runtime.commands.accepted == 1
        await _drive(runtime, 3)
        await runtime.stop()
        async with factory() as session:
            after = await session.get(Position, position.id)
        done = await _command(factory, command)
        accepted = await db_events(factory, "system", "command_accepted")
        finished = [
            e for e in await db_events(factory, "system", "command_done") if e.data["command_id"] == command
        ]
    assert after.status.value == "closed"
    assert done.status == "done" and done.error is None and done.handled_at is not None
    assert len(finished) == 1 and "closed on request" in finished[0].message
    assert len(accepted) == 1


@pytest.mark.slow
async def test_a_close_request_survives_an_engine_stop_before_its_candle(workspace):
    """Accepted, then the engine stops before the bot's next candle: the next engine applies it."""
    async with database(workspace) as factory:
        first = make_runtime(workspace, factory, end="2024-01-02 00:00", command_interval=None)
        await first.start()
        position = await _open_position(first, factory)
        command = await _request(factory, BOT, "close_position", position_id=position.id)
        await first.commands.poll()
        await first.stop()
        assert (await _command(factory, command)).status == "pending"

        second = make_runtime(workspace, factory, end="2024-01-02 00:00", command_interval=None)
        await second.start()
        await second.commands.poll()
        resumed = second.runner(BOT).last_time
        # The replay starts over; the bot skips what it has done and takes its next candles.
        async for batch in second.feed.batches():
            await second.dispatch(batch)
            await second.settle()
            if second.runner(BOT).last_time >= resumed + 3 * second.runner(BOT).step_ns:
                break
        await second.stop()
        async with factory() as session:
            after = await session.get(Position, position.id)
        done = await _command(factory, command)
    assert after.status.value == "closed"
    assert done.status == "done"
