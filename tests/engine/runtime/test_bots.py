"""Failure containment, the portfolio risk manager and the lease, on a short replay."""

from __future__ import annotations

import pytest

from engine.runtime import PortfolioLimits, PortfolioRisk
from engine.store import LeaseHeldError
from tests.engine.runtime.helpers import database, db_events, make_runtime

END = "2024-01-01 12:00"


async def test_a_failing_bot_is_retried_and_does_not_stop_the_other(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end=END)
        await runtime.start()
        flaky = runtime.runner("eth-btc-trend")
        real = flaky.on_batch
        failures = {"left": 2, "calls": 0}

        async def on_batch(batch, received=None):
            failures["calls"] += 1
            if failures["calls"] == 10 and failures["left"]:
                failures["left"] -= 1
                failures["calls"] -= 1
                raise RuntimeError("exchange outage")
            return await real(batch, received)

        flaky.on_batch = on_batch  # type: ignore[method-assign]
        await runtime.pump()
        views = {v.name: v for v in runtime.views()}
        await runtime.stop()
        errors = await db_events(factory, "error", "bot_failed")
    candles = 12 * 12  # 5m candles in 12 hours
    assert views["xrp-futures-breakout"].candles == 12 * 4  # 15m
    assert views["eth-btc-trend"].candles == candles  # the failed candle succeeded on retry
    assert views["eth-btc-trend"].errors == 2
    assert [e.data["attempt"] for e in errors] == [1, 2]
    assert all("exchange outage" in e.message for e in errors)


async def test_a_bot_that_keeps_failing_skips_the_candle_and_carries_on(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, end=END, max_attempts=3)
        await runtime.start()
        runner = runtime.runner("xrp-futures-breakout")
        real = runner.on_batch
        seen: list[int] = []

        async def on_batch(batch, received=None):
            if batch.close_time not in seen:
                seen.append(batch.close_time)
            if seen.index(batch.close_time) == 5:
                raise ValueError("broken candle")
            return await real(batch, received)

        runner.on_batch = on_batch  # type: ignore[method-assign]
        await runtime.pump()
        views = {v.name: v for v in runtime.views()}
        await runtime.stop()
        errors = await db_events(factory, "error", "bot_failed")
    assert views["xrp-futures-breakout"].candles == 12 * 4 - 1
    assert views["eth-btc-trend"].candles == 12 * 12
    assert [e.data["final"] for e in errors] == [False, False, True]


def test_portfolio_daily_loss_halts_until_the_next_utc_day():
    import pandas as pd

    risk = PortfolioRisk(PortfolioLimits(daily_loss_limit=0.02, max_open_trades=3))
    risk.register("a", 1000.0)
    risk.register("b", 1000.0)
    risk.observe_time(pd.Timestamp("2024-01-01 00:05", tz="UTC"))
    assert risk.entry_refusal() is None
    risk.update("a", equity=950.0, open_trades=0, notional=0.0, pending=0)  # -2.5 % of 2000
    assert risk.entry_refusal() == "portfolio_daily_loss"
    risk.update("a", equity=1000.0, open_trades=0, notional=0.0, pending=0)
    assert risk.entry_refusal() == "portfolio_daily_loss"  # the halt lasts the day
    risk.observe_time(pd.Timestamp("2024-01-02 00:00", tz="UTC"))
    assert risk.entry_refusal() is None
    for bot in ("a", "a", "b"):
        risk.note_entry(bot)
    assert risk.entry_refusal() == "portfolio_max_open_trades"


@pytest.mark.slow
async def test_portfolio_daily_loss_halt_blocks_entries_in_every_bot(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, limits=PortfolioLimits(daily_loss_limit=1e-9))
        await runtime.run()
        blocked = await db_events(factory, "risk", "blocked")
        opened = await db_events(factory, "trade", "opened")
    halted = [e for e in blocked if e.data["reason"] == "portfolio_daily_loss"]
    by_bot = {e.bot_id for e in halted}
    assert len(by_bot) == 2, "both bots had entries refused"
    assert all("refused by the portfolio (portfolio_daily_loss)" in e.message for e in halted)
    # No entry fills on a halted day after the first refusal of that day.
    first_refusal = {}
    for e in halted:
        day = e.time.date()
        first_refusal.setdefault(day, e.time)
    for e in opened:
        day = e.time.date()
        if day in first_refusal:
            # an entry decided before the halt fills at the next open: at most one candle later
            assert (e.time - first_refusal[day]).total_seconds() <= 300


async def test_a_second_engine_on_the_same_database_refuses_to_start(workspace):
    async with database(workspace) as factory:
        first = make_runtime(workspace, factory, end=END)
        await first.start()
        second = make_runtime(workspace, factory, end=END)
        with pytest.raises(LeaseHeldError):
            await second.start()
        await first.stop()
        third = make_runtime(workspace, factory, end="2024-01-01 01:00")
        await third.run()  # the lease was released by the first one's stop
