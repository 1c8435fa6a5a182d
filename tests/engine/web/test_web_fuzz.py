"""A schemathesis run over the OpenAPI document, signed in as an admin (so the handlers run, not only
the 401 path): no generated request may cause a server error (5xx)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from sqlalchemy.pool import NullPool

from engine.store.db import create_engine_for, session_factory, upgrade_async
from engine.store.enums import BotMode, PositionSide
from engine.store.models import Bot, Position
from engine.web.api.context import WebContext
from engine.web.app import create_api
from engine.web.auth import accounts, totp
from engine.web.auth.crypto import SecretBox

from .conftest import _KEYS, PASSWORD

SKIP = {("POST", "/auth/logout")}  # would end the fuzzer's own session


def _admin_app(tmp_path: Path) -> tuple[object, str]:
    async def setup() -> tuple[WebContext, str]:
        engine = create_engine_for(f"sqlite:///{tmp_path / 'f.db'}", poolclass=NullPool)
        await upgrade_async(engine)
        ctx = WebContext(
            sessions=session_factory(engine),
            keys=_KEYS,
            box=SecretBox(Fernet.generate_key()),
            bots_dir=tmp_path / "bots",  # the admin's writes land here, never in the repository
            strategies_dir=tmp_path / "strategies",
        )
        async with ctx.sessions() as db, db.begin():
            user = await accounts.create_user(db, "root", "root@example.org", PASSWORD, "admin")
            secret, _ = await accounts.begin_2fa_setup(db, user, ctx.box)
            await accounts.activate_2fa(db, user, pyotp.TOTP(secret).at(int(totp.clock())), ctx.box, "t")
            issued = await accounts.open_session(db, user, ctx.keys, "t")
            # Something for the id routes to find (ids are small), beside the 404 paths.
            bot = Bot(name="seed", config_hash="", mode=BotMode.PAPER)
            db.add(bot)
            await db.flush()
            db.add(
                Position(
                    bot_id=bot.id,
                    pair="BTC/USDT",
                    side=PositionSide.LONG,
                    amount=1,
                    entry_price=1,
                    opened_at=datetime.now(UTC),
                )
            )
        return ctx, issued.access_token

    ctx, token = asyncio.run(setup())
    return create_api(ctx), token


@pytest.mark.slow
def test_fuzzing_the_openapi_spec_finds_no_server_error(tmp_path: Path) -> None:
    app, token = _admin_app(tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1

        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                )

        run()
    assert operations >= 20
    assert failures == []


@pytest.mark.parametrize("path", ["/openapi.json"])
def test_openapi_document_describes_models(path: str, tmp_path: Path) -> None:
    app, _ = _admin_app(tmp_path)
    spec = app.openapi()  # type: ignore[attr-defined]
    assert {"LoginIn", "TokenOut", "BotOut", "Page_TradeOut_"} <= set(spec["components"]["schemas"])
    assert spec["paths"]["/trades/"]["get"]["parameters"]
