"""Portfolio limits set in the web app (``PUT /config/risk``) are applied by the running engine from
its next candle, recorded with who changed what, checked like the ``engine run`` options, and the
command line wins where it gave a limit (issue 15)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pandas as pd
import pyotp
import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy import select

from engine.runtime import PortfolioLimits
from engine.runtime.risk_settings import merge_limits
from engine.store.models import AuditEntry, Event
from engine.web.api.context import WebContext
from engine.web.app import create_api
from engine.web.auth import accounts, passwords, totp
from engine.web.auth.crypto import SecretBox
from engine.web.auth.tokens import TokenKeys
from tests.engine.runtime.helpers import database, db_events, make_runtime

PASSWORD = "correct horse battery"


def _ns(value) -> int:  # type: ignore[no-untyped-def]
    stamp = pd.Timestamp(value)
    return (stamp if stamp.tzinfo else stamp.tz_localize("UTC")).value


def test_the_command_line_wins_limit_by_limit_and_the_profit_lock_as_a_pair() -> None:
    cli = PortfolioLimits(max_open_trades=3, profit_lock_at=0.2, profit_lock_keep=0.1)
    web = {"max_open_trades": 1, "max_exposure": 0.5, "profit_lock_keep": 0.05, "daily_loss_limit": None}
    merged = merge_limits(cli, web)
    assert merged.limits == PortfolioLimits(
        max_exposure=0.5, max_open_trades=3, profit_lock_at=0.2, profit_lock_keep=0.1
    )
    assert set(merged.from_cli) == {"max_open_trades", "profit_lock_at", "profit_lock_keep"}
    assert set(merged.ignored) == {"max_open_trades", "profit_lock_keep"}
    # Without command-line limits the web app's are the limits.
    assert merge_limits(PortfolioLimits(), web | {"profit_lock_keep": None}).limits.max_open_trades == 1
    with pytest.raises(ValueError, match="both profit_lock_at and profit_lock_keep"):
        merge_limits(PortfolioLimits(), {"profit_lock_at": 0.2})


@asynccontextmanager
async def _admin_client(factory, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """The web API on the runtime's database, signed in as the ADMIN ``root``."""
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    clock = [1_800_000_000.0]
    monkeypatch.setattr(totp, "clock", lambda: clock[0])
    ctx = WebContext(sessions=factory, keys=TokenKeys.generate(), box=SecretBox(Fernet.generate_key()))
    async with factory() as db, db.begin():
        user = await accounts.create_user(db, "root", "root@example.org", PASSWORD, "admin")
        secret, _ = await accounts.begin_2fa_setup(db, user, ctx.box)
        await accounts.activate_2fa(db, user, pyotp.TOTP(secret).at(int(clock[0])), ctx.box, "test")
    clock[0] += totp.STEP_SECONDS
    transport = httpx.ASGITransport(app=create_api(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        r = await client.post("/auth/login", json={"username": "root", "password": PASSWORD})
        r = await client.post(
            "/auth/2fa/verify",
            json={"pending_token": r.json()["pending_token"], "code": pyotp.TOTP(secret).at(int(clock[0]))},
        )
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client


async def test_the_web_app_refuses_what_the_command_line_refuses(workspace, monkeypatch) -> None:
    async with database(workspace) as factory, _admin_client(factory, monkeypatch) as admin:
        for body, message in (
            ({"profit_lock_at": 0.2}, "needs both profit_lock_at and profit_lock_keep"),
            ({"profit_lock_at": 0.2, "profit_lock_keep": 0.3}, "below profit_lock_at"),
            ({"max_open_trades": 0}, "at least 1"),
            ({"max_exposure": -1}, "positive ratio"),
        ):
            r = await admin.put("/config/risk", json=body)
            assert r.status_code == 422 and message in r.text, r.text
        assert (await admin.put("/config/risk", json={"max_open_position": 1})).status_code == 422
        assert (await admin.get("/config/")).json()["risk"] is None  # nothing stored


@pytest.mark.slow
async def test_limits_set_in_the_web_app_apply_from_the_next_candle(workspace, monkeypatch) -> None:
    async with database(workspace) as factory, _admin_client(factory, monkeypatch) as admin:
        runtime = make_runtime(
            workspace,
            factory,
            limits=PortfolioLimits(daily_loss_limit=0.5),  # given on the command line
            command_interval=0.02,
        )
        await runtime.start()
        batches = runtime.feed.batches()
        n = 0
        async for batch in batches:  # a few candles without web limits
            await runtime.dispatch(batch)
            await runtime.settle()
            changed_at = batch.close_time
            n += 1
            if n == 12:
                break
        r = await admin.put("/config/risk", json={"max_open_trades": 1, "daily_loss_limit": 0.01})
        assert r.status_code == 200 and r.json()["version"] == 1
        for _ in range(250):  # the engine's own poll (every 20 ms here) picks it up
            if runtime.portfolio.limits.max_open_trades == 1:
                break
            await asyncio.sleep(0.02)
        assert runtime.portfolio.limits == PortfolioLimits(max_open_trades=1, daily_loss_limit=0.5)
        async for batch in batches:
            await runtime.dispatch(batch)
            await runtime.settle()
        await runtime.stop()

        (event,) = await db_events(factory, "risk", "limits_changed")
        assert event.data["by"] == "root" and event.data["version"] == 1
        assert event.data["changed"] == {"max_open_trades": [None, 1]}
        assert event.data["ignored"] == ["daily_loss_limit"]  # the command line's 0.5 stays
        assert "changed by root: max_open_trades none -> 1" in event.message
        blocked = [e for e in await db_events(factory, "risk", "blocked") if "max_open_trades" in str(e.data)]
        assert blocked, "the new limit refused entries"
        assert all(_ns(e.time) > _ns(changed_at) for e in blocked)

        config = (await admin.get("/config/")).json()["risk"]
        assert config["limits"]["max_open_trades"] == 1 and config["by"] == "root"
        applied = config["applied"]
        assert applied["version"] == 1 and applied["limits"]["max_open_trades"] == 1
        assert applied["limits"]["daily_loss_limit"] == 0.5 and "daily_loss_limit" in applied["from_cli"]
        async with factory() as db:
            audit = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "risk.change"))).one()
            assert audit.detail["new"]["max_open_trades"] == 1
            assert not (await db.scalars(select(Event).where(Event.kind == "limits_refused"))).all()
