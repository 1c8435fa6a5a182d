"""The portfolio limits page (``/risk``, issue 15): an ADMIN changes the limits through the same audited
action as ``PUT /config/risk``, bad input is refused with the field named and nothing stored, the page
shows what the engine applies (and which limits the command line kept) as the engine records it, and a
VIEWER reads without a form."""

from __future__ import annotations

import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import func, select

from engine.runtime.risk_settings import APPLIED_KEY, RISK_KEY
from engine.store import EventCategory, record_event
from engine.store.models import AuditEntry, WebSetting
from engine.web.pages import register_pages
from engine.web.ui.risk import limit_rows, read_form

from .conftest import Web
from .ui_helpers import filled_table, require_sqlite, run_timers, sign_in

RETRIES = 50


async def _setting(web: Web, key: str) -> dict | None:
    async with web.ctx.sessions() as db:
        row = await db.get(WebSetting, key)
        return dict(row.value) if row else None


def _rows(user) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    (table,) = user.find(marker="risk-limits").elements
    return {row["limit"].split(" (")[0]: row for row in table.rows}


async def test_an_admin_sets_the_limits_and_sees_what_the_engine_applies(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("root", "admin")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "root")
        await user.open("/risk")
        await user.should_see("Portfolio risk limits", retries=RETRIES)
        table = await filled_table(user, "risk-limits")
        assert {row["source"] for row in table.rows} == {"no engine has read the limits yet"}

        # A profit lock needs both of its values: refused, the field named, nothing stored.
        user.find(marker="risk-profit_lock_at").type("10")
        user.find(marker="risk-save").click()
        await user.should_see("profit lock needs both", retries=RETRIES)
        assert await _setting(web, RISK_KEY) is None
        user.find(marker="risk-max_open_trades").type("two")
        user.find(marker="risk-save").click()
        await user.should_see("Max open trades (all bots): 'two' is not a number", retries=RETRIES)

        user.find(marker="risk-max_open_trades").clear().type("3")
        user.find(marker="risk-max_exposure").type("50")
        user.find(marker="risk-profit_lock_keep").type("4")
        user.find(marker="risk-save").click()
        await user.should_see("Limits saved (version 1)", retries=RETRIES)
        stored = await _setting(web, RISK_KEY)
        assert stored is not None and stored["by"] == "root" and stored["version"] == 1
        assert stored["limits"] == {
            "max_exposure": 0.5,
            "max_open_trades": 3,
            "daily_loss_limit": None,
            "profit_lock_at": 0.1,
            "profit_lock_keep": 0.04,
        }
        async with web.ctx.sessions() as db:
            assert await db.scalar(select(func.count()).where(AuditEntry.action == "risk.change")) == 1
        assert _rows(user)["Max exposure"]["asked"] == "50 %"

        # The engine (started with --max-open-trades 2) applies version 1 at its next candle.
        applied = {
            "version": 1,
            "by": "root",
            "limits": {**stored["limits"], "max_open_trades": 2},
            "from_cli": ["max_open_trades"],
            "ignored": ["max_open_trades"],
            "changed": {},
        }
        async with web.ctx.sessions() as db, db.begin():
            db.add(WebSetting(key=APPLIED_KEY, value=applied))
            await record_event(db, EventCategory.RISK, "limits_changed", "portfolio limits changed by root")
        await run_timers(user)
        rows = _rows(user)
        assert rows["Max open trades"]["applied"] == "2"
        assert rows["Max open trades"]["source"] == "command line (the web value is kept out)"
        assert rows["Max exposure"]["applied"] == "50 %" and rows["Max exposure"]["source"] == "web app"
        await user.should_see("the engine applies version 1", retries=RETRIES)


async def test_a_viewer_reads_the_limits_without_a_form(web: Web) -> None:
    require_sqlite(web)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/risk")
        await user.should_see("Portfolio risk limits", retries=RETRIES)
        await user.should_not_see(marker="risk-save")
        await user.should_not_see(kind=ui.input)


def test_the_form_reads_percent_counts_and_blanks() -> None:
    assert read_form({"max_exposure": "150", "max_open_trades": "4", "daily_loss_limit": " "}) == {
        "max_exposure": 1.5,
        "max_open_trades": 4,
        "daily_loss_limit": None,
        "profit_lock_at": None,
        "profit_lock_keep": None,
    }
    with pytest.raises(ValueError, match="a whole number"):
        read_form({"max_open_trades": "2.5"})
    rows = limit_rows({"limits": {"daily_loss_limit": 0.05}}, {})
    assert rows[2]["asked"] == "5 %" and rows[2]["applied"] == "-"
