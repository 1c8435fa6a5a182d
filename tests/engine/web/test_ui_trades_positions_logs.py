"""The trades, positions and logs pages (NiceGUI simulated user): they show the store's rows, follow new
ones without a reload, export the filtered trades as CSV, close a position only for a TRADER, and show
user text as text (SECURITY.md 14, 15, 16)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import func, select, update

from engine.store.enums import BotMode, EventCategory, PositionSide, PositionStatus
from engine.store.models import AuditEntry, Bot, BotCommand, Event, Position, Trade, User
from engine.web.pages import register_pages
from engine.web.ui.trades import CSV_COLUMNS, PAGE_SIZE, parse_since, trades_csv

from .conftest import Web
from .ui_helpers import emit, filled_table, require_sqlite, run_timers, sign_in

RETRIES = 50  # a handler may take a while on a busy machine; seeing early costs nothing
EVIL = "<img src=x onerror=alert(1)>"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def trade(bot_id: int, pair: str, hours: float, profit: str = "1.5") -> Trade:
    close = T0 + timedelta(hours=hours)
    return Trade(
        bot_id=bot_id,
        pair=pair,
        side=PositionSide.LONG,
        open_time=close - timedelta(hours=1),
        close_time=close,
        open_price=Decimal("100.123456789"),
        close_price=Decimal("101.5"),
        amount=Decimal("0.25"),
        profit_ratio=0.0137,
        profit_abs=Decimal(profit),
        fees=Decimal("0.0001"),
        exit_reason="exit_signal",
    )


async def seed(web: Web) -> dict[str, int]:
    async with web.ctx.sessions() as db, db.begin():
        alpha = Bot(name="alpha", config_hash="", mode=BotMode.PAPER)
        evil = Bot(name=EVIL, config_hash="", mode=BotMode.LIVE)
        db.add_all([alpha, evil])
        await db.flush()
        db.add_all([trade(alpha.id, "BTC/USDT", h) for h in range(3)])
        db.add_all([trade(evil.id, "ETH/USDT", 10 + h, "-2") for h in range(2)])
        position = Position(
            bot_id=evil.id,
            pair="ETH/USDT",
            side=PositionSide.LONG,
            amount=Decimal("0.5"),
            entry_price=Decimal(2000),
            status=PositionStatus.OPEN,
            opened_at=T0,
        )
        closed = Position(
            bot_id=alpha.id,
            pair="BTC/USDT",
            side=PositionSide.LONG,
            amount=Decimal(1),
            entry_price=Decimal(1),
            status=PositionStatus.CLOSED,
            opened_at=T0,
        )
        db.add_all([position, closed])
        db.add(Event(time=T0, bot_id=evil.id, category=EventCategory.ERROR, kind="order", message=EVIL))
        db.add(Event(time=T0, bot_id=alpha.id, category=EventCategory.TRADE, kind="closed", message="won"))
        await db.flush()
    return {"alpha": alpha.id, "evil": evil.id, "position": position.id, "closed": closed.id}


def table_with(user, column: str) -> ui.table:  # type: ignore[no-untyped-def]
    return next(t for t in user.find(ui.table).elements if column in [c["name"] for c in t.columns])


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait for a handler scheduled by a value change to have run."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition()


async def commands(web: Web) -> list[BotCommand]:
    async with web.ctx.sessions() as db:
        return list((await db.scalars(select(BotCommand).order_by(BotCommand.id))).all())


# ---- pure helpers --------------------------------------------------------------------------------


def test_parse_since_accepts_dates_and_times_in_utc() -> None:
    assert parse_since("") is None
    assert parse_since("2026-03-01") == T0
    assert parse_since("2026-03-01T02:30") == T0 + timedelta(hours=2.5)
    assert parse_since("2026-03-01T02:00+02:00") == T0
    with pytest.raises(ValueError, match="not a date"):
        parse_since("yesterday")


def test_trades_csv_has_the_api_columns_and_exact_decimals() -> None:
    row = trade(1, "BTC/USDT", 0)
    row.id = 7
    text = trades_csv([row])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["open_price"] == "100.123456789"
    assert rows[0]["pair"] == "BTC/USDT"


# ---- trades --------------------------------------------------------------------------------------


async def test_trades_page_filters_exports_and_follows(web: Web) -> None:
    require_sqlite(web)
    ids = await seed(web)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/trades")
        await user.should_see("1-5 of 5", retries=RETRIES)
        table = table_with(user, "profit")
        assert [r["pair"] for r in table.rows] == ["ETH/USDT"] * 2 + ["BTC/USDT"] * 3  # newest close first
        assert table.rows[0]["bot"] == EVIL  # a cell (text), not markup

        # Filter: alpha's trades closed since 01:00.
        user.find(marker="filter-bot").elements.pop().set_value(ids["alpha"])
        user.find("Closed since (UTC)").type("2026-03-01T01:00")
        user.find(kind=ui.button, content="Apply").click()
        await user.should_see("1-2 of 2", retries=RETRIES)
        assert [r["closed"] for r in table.rows] == ["2026-03-01 02:00", "2026-03-01 01:00"]

        # The export holds exactly the filtered rows, with the API's columns.
        user.find(kind=ui.button, content="Export CSV").click()
        response = await user.download.next()
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert [int(r["id"]) for r in rows] == [r["id"] for r in table.rows]
        async with web.ctx.sessions() as db:
            expected = (
                await db.scalars(
                    select(Trade.id)
                    .where(Trade.bot_id == ids["alpha"], Trade.close_time >= T0 + timedelta(hours=1))
                    .order_by(Trade.close_time.desc())
                )
            ).all()
        assert [int(r["id"]) for r in rows] == list(expected)

        # A new matching trade appears at the next tick; one of another bot does not.
        async with web.ctx.sessions() as db, db.begin():
            db.add(trade(ids["alpha"], "BTC/USDT", 5))
            db.add(trade(ids["evil"], "ETH/USDT", 6))
        await run_timers(user)
        await user.should_see("1-3 of 3", retries=RETRIES)
        assert table.rows[0]["closed"] == "2026-03-01 05:00"
        await run_timers(user)
        assert len(table.rows) == 3

        user.find("Closed since (UTC)").clear().type("last tuesday")
        user.find(kind=ui.button, content="Apply").click()
        await user.should_see("not a date or time", retries=RETRIES)


async def test_trades_are_paginated(web: Web) -> None:
    require_sqlite(web)
    ids = await seed(web)
    async with web.ctx.sessions() as db, db.begin():
        db.add_all([trade(ids["alpha"], "XRP/USDT", 100 + h) for h in range(PAGE_SIZE)])
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/trades")
        total = PAGE_SIZE + 5
        await user.should_see(f"1-{PAGE_SIZE} of {total}", retries=RETRIES)
        user.find(kind=ui.button, content="Next").click()
        await user.should_see(f"{PAGE_SIZE + 1}-{total} of {total}", retries=RETRIES)
        assert len(table_with(user, "profit").rows) == 5
        user.find(kind=ui.button, content="Next").click()  # no page after the last
        await user.should_see(f"{PAGE_SIZE + 1}-{total} of {total}", retries=RETRIES)
        user.find(kind=ui.button, content="Previous").click()
        await user.should_see(f"1-{PAGE_SIZE} of {total}", retries=RETRIES)


# ---- positions -----------------------------------------------------------------------------------


async def test_trader_closes_a_position_after_confirming(web: Web) -> None:
    require_sqlite(web)
    ids = await seed(web)
    await web.add_user("tom", "trader")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "tom")
        await user.open("/positions")
        table = await filled_table(user, "positions")
        assert [(r["id"], r["bot"], r["pair"], r["side"]) for r in table.rows] == [
            (ids["position"], EVIL, "ETH/USDT", "long")
        ]  # the closed one is not listed
        emit(table, "close", table.rows[0])
        await user.should_see(f"Close position #{ids['position']} (ETH/USDT long, {EVIL}) at market?")
        assert await commands(web) == []  # nothing before the confirmation
        user.find(kind=ui.button, content="Cancel").click()
        assert await commands(web) == []
        emit(table, "close", table.rows[0])
        user.find(kind=ui.button, content="Close at market").click()
        await user.should_see(f"close requested for position {ids['position']}", retries=RETRIES)
        rows = await commands(web)
        assert [(r.bot_id, r.command, r.position_id, r.status) for r in rows] == [
            (ids["evil"], "close_position", ids["position"], "pending")
        ]
        async with web.ctx.sessions() as db:
            tom = await db.scalar(select(User.id).where(User.username == "tom"))
            assert rows[0].requested_by == tom
            audited = await db.scalar(select(func.count()).where(AuditEntry.action == "position.close"))
            assert audited == 1
        assert table.rows[0]["closing"] is True  # the row says "close requested" instead of a button


async def test_viewer_gets_no_close_and_a_demoted_trader_is_refused(web: Web) -> None:
    require_sqlite(web)
    await seed(web)
    await web.add_user("vera", "viewer")
    await web.add_user("tom", "trader")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/positions")
        table = await filled_table(user, "positions")
        assert table.rows and "action" not in [c["name"] for c in table.columns]  # no Close column
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "tom")
        await user.open("/positions")
        table = await filled_table(user, "positions")
        emit(table, "close", table.rows[0])
        # Demoted while the dialog is open: the button is on screen, the server refuses.
        async with web.ctx.sessions() as db, db.begin():
            await db.execute(update(User).where(User.username == "tom").values(role="viewer"))
        user.find(kind=ui.button, content="Close at market").click()
        await user.should_see("not allowed for role viewer", retries=RETRIES)
        assert await commands(web) == []


# ---- logs ----------------------------------------------------------------------------------------


async def test_logs_tail_filters_and_shows_markup_as_text(web: Web) -> None:
    require_sqlite(web)
    ids = await seed(web)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/logs")
        table = table_with(user, "message")
        assert {r["message"] for r in table.rows} == {EVIL, "won"}
        # Table cells are text (Quasar renders them without v-html); no element came from the line.
        await user.should_not_see(ui.image)
        await user.should_not_see(ui.html)

        user.find(marker="filter-category").elements.pop().set_value("error")
        await until(lambda: len(table.rows) == 1)
        assert [r["message"] for r in table.rows] == [EVIL]
        assert table.rows[0]["bot"] == EVIL

        async with web.ctx.sessions() as db, db.begin():
            db.add(Event(bot_id=ids["evil"], category=EventCategory.ERROR, kind="x", message="newest error"))
            db.add(Event(bot_id=ids["alpha"], category=EventCategory.TRADE, kind="x", message="not shown"))
        await run_timers(user)
        assert [r["message"] for r in table.rows] == ["newest error", EVIL]
        await run_timers(user)
        assert len(table.rows) == 2

        user.find(marker="filter-category").elements.pop().set_value("")
        user.find(marker="filter-bot").elements.pop().set_value(ids["alpha"])
        await until(lambda: [r["message"] for r in table.rows] == ["not shown", "won"])
        assert [r["message"] for r in table.rows] == ["not shown", "won"]
