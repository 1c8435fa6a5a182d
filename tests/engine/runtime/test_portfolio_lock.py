"""The portfolio profit lock (arms at a gain, then refuses entries below the kept gain; survives a
restart) and the one definition of P&L today shared by the live dashboard and `engine status`."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sqlalchemy import select

from engine.data import DataDirectory
from engine.runtime import PortfolioLimits, PortfolioRisk, ReplayFeed, views_from_db
from engine.runtime.status import DayStart
from engine.store.models import EquitySnapshot
from tests.engine.runtime.helpers import database, db_events, make_runtime


def test_the_lock_needs_both_values_and_keep_below_activate():
    with pytest.raises(ValueError, match="both"):
        PortfolioLimits(profit_lock_at=0.1)
    with pytest.raises(ValueError, match="below profit_lock_at"):
        PortfolioLimits(profit_lock_at=0.1, profit_lock_keep=0.1)
    assert PortfolioLimits(profit_lock_at=0.1, profit_lock_keep=0.0).active


def test_the_lock_arms_at_the_gain_then_refuses_entries_below_keep():
    risk = PortfolioRisk(PortfolioLimits(profit_lock_at=0.05, profit_lock_keep=0.02))
    risk.register("a", 100.0)
    risk.register("b", 100.0)

    def equity(total: float) -> str | None:
        risk.update("a", equity=100.0, open_trades=0, notional=0.0, pending=0)
        risk.update("b", equity=total - 100.0, open_trades=0, notional=0.0, pending=0)
        return risk.entry_refusal()

    assert equity(199.0) is None and not risk.lock_armed  # below keep, but never armed
    assert equity(209.0) is None and not risk.lock_armed  # +4.5 %: not yet
    assert equity(210.0) is None and risk.lock_armed  # +5 %: armed
    assert equity(203.9) == "portfolio_profit_lock"  # +1.95 % < +2 %
    assert equity(204.0) is None  # back at the kept gain: entries again
    assert equity(150.0) == "portfolio_profit_lock" and risk.lock_armed


@pytest.mark.slow
async def test_an_armed_lock_blocks_every_entry_with_its_reason_and_survives_a_restart(workspace):
    limits = PortfolioLimits(profit_lock_at=10.0, profit_lock_keep=5.0)  # keep +500 %: always below
    async with database(workspace) as factory:
        runtime = make_runtime(
            workspace, factory, limits=limits, end="2024-01-01 12:00", command_interval=None
        )
        await runtime.start()
        runtime.portfolio.lock_armed = True  # as if the portfolio had gained 1000 % before
        n = 0
        async for batch in runtime.feed.batches():
            await runtime.dispatch(batch)
            await runtime.settle()
            n += 1
            if n % 12 == 0 and await db_events(factory, "risk", "blocked"):
                break
        await runtime.stop()
        blocked = await db_events(factory, "risk", "blocked")
        opened = await db_events(factory, "trade", "opened")
        armed = await db_events(factory, "risk", "profit_lock_armed")

        again = make_runtime(workspace, factory, limits=limits, end="2024-01-01 00:10", command_interval=None)
        await again.start()
        restored = again.portfolio.lock_armed
        await again.stop()
        other = make_runtime(
            workspace,
            factory,
            limits=PortfolioLimits(profit_lock_at=9.0, profit_lock_keep=5.0),
            end="2024-01-01 00:10",
            command_interval=None,
        )
        await other.start()
        other_restored = other.portfolio.lock_armed
        await other.stop()
    assert blocked and not opened
    assert {e.data["reason"] for e in blocked} == {"portfolio_profit_lock"}
    assert all("refused by the portfolio (portfolio_profit_lock)" in e.message for e in blocked)
    assert len(armed) == 1 and armed[0].data["activate_at"] == 10.0
    assert restored and not other_restored  # other thresholds: a new lock, not armed


def test_day_start_is_the_last_snapshot_before_midnight():
    mark = DayStart()
    t = pd.Timestamp("2024-01-01 23:50", tz="UTC")
    mark.observe(t, 100.0)
    assert mark.start_equity == 100.0  # no snapshot before: the day's first one
    mark.observe(t + pd.Timedelta(minutes=5), 101.0)  # 23:55, closes at midnight
    mark.observe(t + pd.Timedelta(minutes=10), 103.0)  # 00:00 of the next day
    assert mark.day == pd.Timestamp("2024-01-02", tz="UTC") and mark.start_equity == 101.0


async def test_dashboard_and_status_agree_on_pnl_today(workspace):
    async with database(workspace) as factory:
        runtime = make_runtime(workspace, factory, command_interval=None)
        runtime.feed = ReplayFeed(
            DataDirectory(workspace / "data"),
            start=pd.Timestamp("2024-01-01 22:00", tz="UTC"),
            end=pd.Timestamp("2024-01-02 01:00", tz="UTC"),
        )
        await runtime.start()
        async for batch in runtime.feed.batches():
            await runtime.dispatch(batch)
            await runtime.settle()
        live = {v.name: (v.equity, v.day_start_equity) for v in runtime.views()}
        await runtime.stop()
        stored = {v.name: (v.equity, v.day_start_equity) for v in await views_from_db(factory)}
        async with factory() as session:
            midnight = pd.Timestamp("2024-01-02", tz="UTC").to_pydatetime()
            before = {
                bot_id: equity
                for bot_id, equity in (
                    await session.execute(
                        select(EquitySnapshot.bot_id, EquitySnapshot.equity)
                        .where(EquitySnapshot.time < midnight)
                        .order_by(EquitySnapshot.time)
                    )
                ).all()
            }
    assert set(live) == set(stored) == {"eth-btc-trend", "xrp-futures-breakout"}
    for name in live:
        assert live[name] == pytest.approx(stored[name]), name
        assert not math.isnan(live[name][1])
    # Both are the last snapshot before 00:00 UTC of the newest candle's day.
    assert sorted(before.values()) == sorted(v[1] for v in stored.values())
