"""Hot reload: a valid edit switches the bot's rules at the next candle and keeps its positions; an
invalid edit is reported with file:line:col and changes nothing; new and removed files start and stop bots."""

from __future__ import annotations

import asyncio
import shutil

import pandas as pd
import pytest

from tests.engine.runtime.conftest import ROOT
from tests.engine.runtime.helpers import database, db_events, make_runtime

NEVER = "long: crosses_above(fast_ma, slow_ma) and momentum < 0"
ORIGINAL = "long: crosses_above(fast_ma, slow_ma) and momentum < rsi_max"


async def _drive(runtime, until):
    """Feed batches one at a time; stop (returning True) as soon as ``until()`` holds."""
    async for batch in runtime.feed.batches():
        await runtime.dispatch(batch)
        await runtime.settle()
        if until():
            return True
    return False


async def _holding(workspace, factory):
    """A started runtime driven until eth-btc-trend holds a position: (runtime, its runner, positions)."""
    runtime = make_runtime(workspace, factory, end="2024-01-02 00:00")
    await runtime.start()
    bot = runtime.runner("eth-btc-trend")
    assert await _drive(runtime, lambda: any(bot.trader.position(p) for p in bot.pairs))
    return runtime, bot, {p: bot.trader.position(p) for p in bot.pairs if bot.trader.position(p)}


async def test_valid_edit_applies_at_the_next_candle_and_keeps_positions(workspace):
    strategy = workspace / "strategies" / "ema_rsi.yaml"
    async with database(workspace) as factory:
        runtime, bot, held = await _holding(workspace, factory)
        old_hash = bot.hash

        strategy.write_text(strategy.read_text().replace(ORIGINAL, NEVER))
        await runtime.reload()
        assert bot.hash == old_hash  # staged, not yet applied
        reload_time = bot.last_time
        await _drive(runtime, lambda: True)  # one more candle
        assert bot.hash != old_hash and NEVER in bot.loaded.strategy.text
        for pair, position in held.items():
            now = bot.trader.position(pair)
            closed = bot.trader.trades()
            kept = now is not None and now["entry_price"] == position["entry_price"]
            exited_normally = (closed["pair"] == pair).any() and now is None
            assert kept or exited_normally
        await _drive(runtime, lambda: False)  # to the end of the day
        await runtime.stop()
        staged = await db_events(factory, "reload", "staged")
        applied = await db_events(factory, "reload", "applied")
        opened = await db_events(factory, "trade", "opened")
    assert len(staged) == 1 and len(applied) == 1
    assert applied[0].data["time"] == str(pd.Timestamp(reload_time + bot.step_ns, tz="UTC"))
    after = [e for e in opened if e.time > pd.Timestamp(reload_time + 2 * bot.step_ns, tz="UTC")]
    assert after == [], "the new rules never enter"


async def test_invalid_edit_is_reported_and_the_bot_keeps_its_rules(workspace):
    strategy = workspace / "strategies" / "ema_rsi.yaml"
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-01 06:00")
        await runtime.start()
        bot = runtime.runner("eth-btc-trend")
        await _drive(runtime, lambda: bot.view.candles >= 10)
        old_hash, old_text = bot.hash, bot.loaded.strategy.text

        strategy.write_text(strategy.read_text().replace(ORIGINAL, "long: crosses_above(fast_ma, slow_mx)"))
        await runtime.reload()
        await _drive(runtime, lambda: False)
        candles = bot.view.candles
        await runtime.stop()
        invalid = await db_events(factory, "reload", "invalid")
    assert bot.hash == old_hash and bot.loaded.strategy.text == old_text
    assert candles == 6 * 12  # it kept running to the end
    assert len(invalid) == 1
    message = invalid[0].message
    line = next(i for i, text in enumerate(strategy.read_text().splitlines(), 1) if "slow_mx" in text)
    assert f"ema_rsi.yaml:{line}:" in message and "slow_mx" in message
    assert "slow_mx" in bot.view.last_error


async def test_new_and_removed_bot_files_start_and_stop_bots(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-01 02:00")
        await runtime.start()
        new = workspace / "bots" / "ltc_reversal.yaml"
        shutil.copy(ROOT / "bots" / "ltc_reversal.yaml", new)
        await runtime.reload()
        assert "ltc-xlm-reversal" not in runtime.slots  # XLM/BTC has no candles yet: reported, not fatal
        assert "no 5m candles for XLM/BTC" in runtime.file_errors[new]
        twin = workspace / "bots" / "twin.yaml"
        twin.write_text(
            (workspace / "bots" / "eth_btc_trend.yaml").read_text().replace("bot: eth-btc-trend", "bot: twin")
        )
        await runtime.reload()
        assert "twin" in runtime.slots
        (workspace / "bots" / "xrp_futures_breakout.yaml").unlink()
        await runtime.reload()
        assert "xrp-futures-breakout" not in runtime.slots
        await runtime.pump()
        await runtime.stop()
        kinds = [(e.kind, e.message.split(":")[0]) for e in await db_events(factory, "reload")]
    assert ("started", "twin") in kinds
    assert ("removed", "xrp-futures-breakout") in kinds


async def test_the_watcher_reloads_a_saved_file(workspace):
    bot_file = workspace / "bots" / "eth_btc_trend.yaml"
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end="2024-01-01 01:00", watch=True)
        await runtime.start()
        await asyncio.sleep(0.3)  # the watcher is up
        bot_file.write_text(bot_file.read_text().replace("fast: 9", "fast: 10"))
        staged = []
        for _ in range(100):
            staged = await db_events(factory, "reload", "staged")
            if staged:
                break
            await asyncio.sleep(0.05)
        await runtime.stop()
    assert staged and "eth-btc-trend" in staged[0].message


async def test_a_reload_recalculates_the_stops_of_positions_kept(workspace):
    from sqlalchemy import select

    from engine.store.models import Position

    strategy = workspace / "strategies" / "ema_rsi.yaml"
    async with database(workspace) as factory:
        runtime, bot, before = await _holding(workspace, factory)
        text = strategy.read_text()
        strategy.write_text(
            text.replace("stop_loss: stop_atr * atr(14)", "stop_loss: 3 * stop_atr * atr(14)")
        )
        await runtime.reload()
        await _drive(runtime, lambda: True)  # the candle whose close applies the reload
        after = {p: bot.trader.position(p) for p in before if bot.trader.position(p)}
        async with factory() as session:
            rows = {
                r.pair: r for r in (await session.scalars(select(Position).where(Position.status == "open")))
            }
        await runtime.stop()
        (applied,) = await db_events(factory, "reload", "applied")
    restops = applied.data["restops"]
    assert after, "a position was kept across the reload"
    for pair, held in after.items():
        stop, _ = restops[pair]
        assert held["stop"] == stop and float(rows[pair].stop) == pytest.approx(stop, rel=1e-12)
        # Three times the distance from the same entry: further from the price than before.
        old, entry = before[pair]["stop"], held["entry_price"]
        assert abs(entry - stop) > abs(entry - old)
