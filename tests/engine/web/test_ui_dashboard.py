"""The dashboard page (NiceGUI simulated user) and the equity arithmetic behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import func, select, update

from engine.store.enums import BotMode, BotStatus, EventCategory, PositionSide, PositionStatus
from engine.store.models import AuditEntry, Bot, BotCommand, EquitySnapshot, Event, Position, Trade, User
from engine.web.auth import accounts
from engine.web.pages import register_pages
from engine.web.queries import (
    drawdown,
    equity_before,
    equity_by_bot,
    first_equity_by_bot,
    pnl_since,
    pnl_summary,
    portfolio_pnl,
    total_equity,
)

from .conftest import Web
from .ui_helpers import require_sqlite, run_timers, sign_in

EVIL = "<b onmouseover=alert(1)>evil</b>"
T0 = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # a Monday, 22:00 UTC


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# ---- pure equity arithmetic --------------------------------------------------------------------


def test_total_equity_sums_each_bots_latest_value() -> None:
    series = {1: [(at(0), 100.0), (at(2), 110.0)], 2: [(at(1), 50.0), (at(2), 40.0), (at(3), 45.0)]}
    assert total_equity(series) == [(at(0), 100.0), (at(1), 150.0), (at(2), 150.0), (at(3), 155.0)]
    assert total_equity({}) == []


def test_drawdown_from_the_running_peak() -> None:
    curve = [(at(0), 100.0), (at(1), 120.0), (at(2), 90.0), (at(3), 130.0)]
    assert [round(v, 6) for _, v in drawdown(curve)] == [0.0, 0.0, -0.25, 0.0]


def test_pnl_today_from_the_last_value_before_midnight_else_the_first_of_the_day() -> None:
    curve = [(at(0), 100.0), (at(1.5), 104.0), (at(3), 110.0), (at(5), 107.0)]  # midnight is at(2)
    pnl = pnl_summary(curve)
    assert pnl.as_of == at(5)
    assert pnl.today == pytest.approx(107.0 - 104.0)
    assert pnl.week == pytest.approx(7.0)  # the week began on Monday 00:00, before the first point
    assert pnl.all_time == pytest.approx(7.0)
    assert pnl_since([(at(3), 110.0), (at(5), 107.0)], at(2)) == pytest.approx(-3.0)  # first of the day
    assert pnl_summary([]).today is None


def test_pnl_week_starts_on_monday_utc() -> None:
    # Sunday 03-01 12:00 then Monday and Tuesday: the week began Monday 03-02 00:00.
    curve = [(at(-34), 90.0), (at(-10), 100.0), (at(5), 120.0)]
    pnl = pnl_summary(curve)
    assert pnl.week == pytest.approx(120.0 - 90.0)
    assert pnl.today == pytest.approx(120.0 - 100.0)


def test_portfolio_pnl_counts_a_new_bots_gains_not_its_capital() -> None:
    series = {1: [(at(1.5), 100.0), (at(3), 110.0)], 2: [(at(4), 1000.0), (at(5), 1004.0)]}
    pnl = portfolio_pnl(series)
    assert pnl.as_of == at(5)
    assert pnl.today == pytest.approx(10.0 + 4.0)
    assert pnl.all_time == pytest.approx(14.0)
    # With the first equity known from before the window, all time is measured from it.
    assert portfolio_pnl(series, {1: 80.0}).all_time == pytest.approx(34.0)
    assert portfolio_pnl({}).today is None


async def test_equity_window_and_first_equity(web: Web) -> None:
    require_sqlite(web)
    ids = await seed(web)
    async with web.ctx.sessions() as db:
        series, last_id = await equity_by_bot(db, since=at(1))
        assert series[ids["alpha"]] == [(at(1.5), 1010.0), (at(3), 1030.0)]
        assert await first_equity_by_bot(db) == {ids["alpha"]: 1000.0, ids["evil"]: 500.0}
        assert await equity_by_bot(db, after_id=last_id) == ({}, last_id)
        assert await equity_before(db, at(1.5)) == {ids["alpha"]: 1000.0, ids["evil"]: 500.0}
        assert await equity_before(db, at(0)) == {}


# ---- the page ----------------------------------------------------------------------------------


async def seed(web: Web) -> dict[str, int]:
    """Two bots with equity, an open position, closed trades and alerts."""
    async with web.ctx.sessions() as db, db.begin():
        alpha = Bot(name="alpha", config_hash="", mode=BotMode.PAPER, status=BotStatus.RUNNING)
        evil = Bot(name=EVIL, config_hash="", mode=BotMode.LIVE)
        db.add_all([alpha, evil])
        await db.flush()
        for hours, a, b in ((0, 1000.0, 500.0), (1.5, 1010.0, 505.0), (3, 1030.0, 495.0)):
            db.add(EquitySnapshot(bot_id=alpha.id, time=at(hours), equity=a, cash=a))
            db.add(EquitySnapshot(bot_id=evil.id, time=at(hours), equity=b, cash=b))
        db.add(
            Position(
                bot_id=alpha.id,
                pair="ETH/BTC",
                side=PositionSide.LONG,
                amount=Decimal("1.5"),
                entry_price=Decimal("0.05"),
                status=PositionStatus.OPEN,
                opened_at=at(2.5),
            )
        )
        db.add(trade(alpha.id, "LTC/BTC", at(2), Decimal("12.5")))
        db.add(
            Event(
                time=at(2.9),
                bot_id=evil.id,
                category=EventCategory.RISK,
                kind="blocked",
                message="entry refused (daily loss limit)",
            )
        )
        db.add(
            Event(time=at(2.9), bot_id=evil.id, category=EventCategory.TRADE, kind="closed", message="quiet")
        )
    return {"alpha": alpha.id, "evil": evil.id}


def trade(bot_id: int, pair: str, close: datetime, profit: Decimal) -> Trade:
    return Trade(
        bot_id=bot_id,
        pair=pair,
        side=PositionSide.LONG,
        open_time=close - timedelta(hours=1),
        close_time=close,
        open_price=Decimal("0.1"),
        close_price=Decimal("0.11"),
        amount=Decimal(1),
        profit_ratio=0.1,
        profit_abs=profit,
        fees=Decimal("0.01"),
        exit_reason="exit_signal",
    )


async def commands(web: Web) -> list[BotCommand]:
    async with web.ctx.sessions() as db:
        return list((await db.scalars(select(BotCommand).order_by(BotCommand.id))).all())


async def test_dashboard_shows_the_store_and_follows_new_trades(web: Web) -> None:
    require_sqlite(web)
    ids = await seed(web)
    async with web.ctx.sessions() as db, db.begin():  # the evil bot's currency: BTC, from a trade
        db.add(trade(ids["evil"], "XRP/BTC", at(0.5), Decimal("0.5")))
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.should_see("Last candle", retries=50)  # the page is built
        # Both bots are in BTC: figures per currency with the unit; no BTC/USDT price, so no total
        # in USDT, and the page says why instead of adding BTC as if it were USDT.
        tables = {t._markers[0]: t for t in user.find(ui.table).elements if t._markers}
        (btc,) = tables["per-currency"].rows
        assert btc["currency"] == "BTC"
        assert btc["equity"] == "1,525.00000000 BTC"
        assert btc["today"] == "+10.00000000 BTC"  # today began at 03-03 00:00, last total before it 1515
        assert btc["all"] == "+25.00000000 BTC"
        assert "no BTC/USDT price" in btc["rate"]
        await user.should_see("no BTC/USDT price known: BTC bots are not in the total", retries=20)
        # Valued in BTC, the total is the BTC figure.
        view_select = user.find(marker="valuation").elements.pop()
        view_select.value = "BTC"
        await user.should_see("+25.00000000 BTC", retries=50)
        charts = {c.options["title"]["text"]: c.options for c in user.find(ui.echart).elements}
        assert [p[1] for p in charts["Total equity (BTC)"]["series"][0]["data"]] == [1500.0, 1515.0, 1525.0]
        assert charts["Drawdown"]["series"][0]["data"][-1][1] == pytest.approx(0.0)
        profit = charts["Realised profit, all bots (BTC)"]
        assert profit["xAxis"]["data"] == ["2026-03-02", "2026-03-03"]
        assert [b["value"] for b in profit["series"][0]["data"]] == [0.5, 12.5]
        assert profit["series"][1]["data"] == [0.5, 13.0]  # cumulative
        # Bot cards, names as text (no element made from the name).
        with user.scope(marker=f"bot-{ids['evil']}"):
            await user.should_see(EVIL, retries=50)
            await user.should_see("stopped · live", retries=50)
            await user.should_see("-10.00000000 BTC", retries=50)  # today
            await user.should_see("2026-03-03 01:00 UTC", retries=50)
        with user.scope(marker=f"bot-{ids['alpha']}"):
            await user.should_see("running · paper", retries=50)
            await user.should_see("+12.50000000 BTC", retries=50)  # realised
            await user.should_see("+30.00000000 BTC", retries=50)  # all time: 1000 -> 1030
            await user.should_see("100 % of 1", retries=50)  # win rate
        # Positions, trades and alerts (the quiet trade event is no alert).
        positions, feed, alerts = tables["positions"], tables["latest-trades"], tables["alerts"]
        assert [r["pair"] for r in positions.rows] == ["ETH/BTC"]
        assert positions.rows[0]["entry"] == "0.050000" and positions.rows[0]["amount"] == "1.5"
        assert [r["pair"] for r in feed.rows] == ["LTC/BTC", "XRP/BTC"]
        assert feed.rows[0]["profit"] == "+12.50000000 BTC" and feed.rows[0]["profit_pct"] == "+10.00 %"
        assert [r["message"] for r in alerts.rows] == ["entry refused (daily loss limit)"]
        assert alerts.rows[0]["bot"] == EVIL
        # A viewer gets no start/stop buttons.
        await user.should_not_see(kind=ui.button, content="Start")
        await user.should_not_see(kind=ui.button, content="Stop")

        # A trade closed after the page opened shows at the next tick, without reopening the page.
        async with web.ctx.sessions() as db, db.begin():
            db.add(trade(ids["evil"], "XRP/BTC", at(3), Decimal("-3")))
            db.add(EquitySnapshot(bot_id=ids["evil"], time=at(4), equity=520.0, cash=520.0))
        await run_timers(user)
        assert [r["pair"] for r in feed.rows] == ["XRP/BTC", "LTC/BTC", "XRP/BTC"]
        assert feed.rows[0]["bot"] == EVIL and feed.rows[0]["tone"] == "loss"
        await user.should_see("1,550.00000000 BTC", retries=20)  # the new snapshot moved the total
        await run_timers(user)  # nothing new: nothing repeated
        assert len(feed.rows) == 3

        # Once the session is revoked, the open page gets no more data and is sent to the login.
        async with web.ctx.sessions() as db, db.begin():
            uid = await db.scalar(select(User.id).where(User.username == "vera"))
            await accounts.revoke_sessions(db, uid, reason="admin")
            db.add(trade(ids["alpha"], "BNB/BTC", at(4), Decimal("1")))
        await run_timers(user)
        assert len(feed.rows) == 3
        await user.should_see("Sign in", retries=50)


async def test_trader_stops_a_bot_and_a_demoted_user_cannot(web: Web) -> None:
    require_sqlite(web)
    ids = await seed(web)
    await web.add_user("tom", "trader")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "tom")
        await user.should_see(kind=ui.button, content="Stop", retries=50)
        # Only the action that applies: alpha runs (Stop), the evil bot is stopped (Start).
        with user.scope(marker=f"bot-{ids['alpha']}"):
            assert not user.find(kind=ui.button, content="Start").elements.pop().enabled
            user.find(kind=ui.button, content="Stop").click()
        await user.should_see("stop requested for alpha", retries=50)
        rows = await commands(web)
        assert [(r.bot_id, r.command, r.status) for r in rows] == [(ids["alpha"], "stop", "pending")]
        await user.should_see("Pending: stop", retries=50)
        with user.scope(marker=f"bot-{ids['alpha']}"):  # nothing more to ask while one is pending
            assert not any(b.enabled for b in user.find(kind=ui.button).elements)
        with user.scope(marker=f"bot-{ids['evil']}"):
            assert not user.find(kind=ui.button, content="Stop").elements.pop().enabled
        async with web.ctx.sessions() as db:
            assert await db.scalar(select(func.count()).where(AuditEntry.action == "bot.stop")) == 1

        # The runtime handles it: the page says what happened.
        from engine.runtime.commands import record_command_outcome

        async with web.ctx.sessions() as db, db.begin():
            await db.execute(update(Bot).where(Bot.id == ids["alpha"]).values(status=BotStatus.PAUSED))
            await record_command_outcome(db, rows[0].id, "stop", ids["alpha"], "alpha: stopped by command")
        await run_timers(user)
        await user.should_see("alpha: stop: alpha: stopped by command", retries=50)
        await user.should_see("stopped by a user (Start resumes it) · paper", retries=50)

        # The role changes while the page is open: the button is still on screen, the server refuses.
        async with web.ctx.sessions() as db, db.begin():
            await db.execute(update(User).where(User.username == "tom").values(role="viewer"))
        with user.scope(marker=f"bot-{ids['evil']}"):
            user.find(kind=ui.button, content="Start").click()
        await user.should_see("not allowed for role viewer", retries=50)
        assert len(await commands(web)) == 1


async def test_a_bot_idle_today_shows_no_pnl_today(web: Web) -> None:
    require_sqlite(web)
    async with web.ctx.sessions() as db, db.begin():
        idle, busy = (
            Bot(name="idle", config_hash="", mode=BotMode.PAPER),
            Bot(name="busy", config_hash="", mode=BotMode.PAPER),
        )
        db.add_all([idle, busy])
        await db.flush()
        db.add(EquitySnapshot(bot_id=idle.id, time=at(-1), equity=100.0, cash=100.0))
        db.add(EquitySnapshot(bot_id=idle.id, time=at(1), equity=110.0, cash=110.0))  # Monday, 23:00
        db.add(EquitySnapshot(bot_id=busy.id, time=at(1), equity=50.0, cash=50.0))
        db.add(EquitySnapshot(bot_id=busy.id, time=at(3), equity=53.0, cash=53.0))  # Tuesday, 01:00
        dormant = Bot(name="dormant", config_hash="", mode=BotMode.PAPER)
        db.add(dormant)
        await db.flush()
        db.add(EquitySnapshot(bot_id=dormant.id, time=at(-24 * 60), equity=1000.0, cash=1000.0))
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.should_see("2026-03-03 01:00 UTC", retries=50)
        # The page is sent before its data is read: wait for the bot cards too (slow under load).
        for bot in (idle, busy, dormant):
            await user.should_see(marker=f"bot-{bot.id}", retries=100)
        # No pair known for these bots: no currency, so amounts show without a unit, and they are
        # left out of the USDT total (the page says so).
        with user.scope(marker=f"bot-{idle.id}"):
            await user.should_see("0.000000", retries=50)
        with user.scope(marker=f"bot-{busy.id}"):
            await user.should_see("+3.000000", retries=50)
        await user.should_see("3 bot(s) of unknown currency left out", retries=50)


def test_the_open_dashboard_keeps_only_its_window_plus_one_carried_point() -> None:
    from engine.web.ui.dashboard import EQUITY_DAYS, _Dashboard

    day = timedelta(days=1)
    late = at(0) + (EQUITY_DAYS + 5) * day
    view = _Dashboard(ctx=None, can_control=False)  # type: ignore[arg-type]
    view.series = {
        1: [(at(0), 1.0), (at(0) + day, 2.0), (at(0) + 2 * day, 3.0), (late, 4.0)],
        2: [(at(0), 9.0)],
    }
    view._trim()
    assert view.series == {1: [(at(0) + 2 * day, 3.0), (late, 4.0)], 2: [(at(0), 9.0)]}
