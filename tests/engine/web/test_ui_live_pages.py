"""Pages update from the server's shared tails of the store (issue 15), not on a timer: a page re-reads
only when a row that concerns it was committed, and the bot chart grows by the candles and trades the
bot made while the page was open."""

from __future__ import annotations

from decimal import Decimal

from nicegui import ui
from nicegui.testing.user_simulation import user_simulation

from engine.store.enums import EventCategory, PositionSide
from engine.store.models import Bot, EquitySnapshot, Event, Trade
from engine.web.pages import register_pages
from engine.web.ui import live_updates

from . import test_ui_bot_page
from .conftest import Web
from .test_ui_bot_page import candle_at, chart_options, seed
from .ui_helpers import require_sqlite, run_timers, sign_in

bot_file = test_ui_bot_page.bot_file  # the same bot and candles as the bot page's tests


def _follows(user) -> list[live_updates.LiveFollow]:  # type: ignore[no-untyped-def]
    owners = [getattr(t.callback, "__self__", None) for t in user.find(ui.timer).elements]
    return [owner for owner in owners if isinstance(owner, live_updates.LiveFollow)]


async def test_the_bot_chart_grows_with_the_bot_s_candles_and_trades(web: Web, bot_file) -> None:  # type: ignore[no-untyped-def]
    require_sqlite(web)
    bot_id = await seed(web, bot_file)
    async with web.ctx.sessions() as db, db.begin():  # the bot has run up to candle 560 so far
        await db.execute(EquitySnapshot.__table__.delete().where(EquitySnapshot.bot_id == bot_id))
        db.add(EquitySnapshot(bot_id=bot_id, time=candle_at(560).to_pydatetime(), equity=1.0, cash=1.0))
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open(f"/bot/{bot_id}")
        await user.should_see("Configuration", retries=50)
        (chart,) = user.find(marker="bot-chart").elements
        assert chart_options(user)["xAxis"][0]["data"][-1] == f"{candle_at(560):%Y-%m-%d %H:%M}"
        (follow,) = _follows(user)
        await run_timers(user)
        assert follow.refreshes == 0  # nothing committed: no re-read

        # Another bot's candle close concerns this page not.
        other = await _other_bot(web)
        async with web.ctx.sessions() as db, db.begin():
            db.add(EquitySnapshot(bot_id=other, time=candle_at(561).to_pydatetime(), equity=5.0, cash=5.0))
        await run_timers(user)
        assert follow.refreshes == 0

        # The bot closes two candles and a trade: the same chart, two candles and the markers longer.
        async with web.ctx.sessions() as db, db.begin():
            for i in (561, 562):
                db.add(EquitySnapshot(bot_id=bot_id, time=candle_at(i).to_pydatetime(), equity=1.0, cash=1.0))
            db.add(_trade(bot_id, opened=555, closed=562))
        await run_timers(user)
        assert follow.refreshes == 1
        assert user.find(marker="bot-chart").elements == {chart}  # updated in place, not rebuilt
        options = chart_options(user)
        assert options["xAxis"][0]["data"][-1] == f"{candle_at(562):%Y-%m-%d %H:%M}"
        series = {s["name"]: s for s in options["series"]}
        exits = [e["value"][0] for e in series["exits"]["data"]]
        assert f"{candle_at(562):%Y-%m-%d %H:%M}" in exits
        trades = next(
            t for t in user.find(ui.table).elements if any(c["name"] == "reason" for c in t.columns)
        )
        assert [r["reason"] for r in trades.rows] == ["stop_loss", "take_profit"]

        # An alert of the bot shows in its table at the next check.
        async with web.ctx.sessions() as db, db.begin():
            db.add(
                Event(
                    bot_id=bot_id, category=EventCategory.ERROR, kind="order_failed", message="order refused"
                )
            )
        await run_timers(user)
        (alerts,) = user.find(marker="alerts").elements
        assert [r["message"] for r in alerts.rows] == ["order refused"]


async def _other_bot(web: Web) -> int:
    from sqlalchemy import select

    async with web.ctx.sessions() as db:
        return await db.scalar(select(Bot.id).where(Bot.name == "other"))


def _trade(bot_id: int, *, opened: int, closed: int) -> Trade:
    return Trade(
        bot_id=bot_id,
        pair="ETH/BTC",
        side=PositionSide.LONG,
        open_time=candle_at(opened).to_pydatetime(),
        close_time=candle_at(closed).to_pydatetime(),
        open_price=Decimal("0.05"),
        close_price=Decimal("0.049"),
        amount=Decimal(1),
        profit_ratio=-0.02,
        profit_abs=Decimal("-0.001"),
        fees=Decimal("0.0001"),
        exit_reason="stop_loss",
    )
