from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet

from engine.store.db import create_engine_for, session_factory, upgrade_async
from engine.web.api.context import WebContext
from engine.web.app import create_api
from engine.web.auth import accounts, passwords, totp
from engine.web.auth.crypto import SecretBox
from engine.web.auth.throttle import Throttle
from engine.web.auth.tokens import TokenKeys
from tests.engine.store.conftest import POSTGRES_ENV, create_postgres_schema, drop_postgres_schema

PASSWORD = "correct horse battery"
_KEYS = TokenKeys.generate()  # RSA generation is slow-ish: one pair for the whole module


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with small costs: the tests hash dozens of passwords and backup codes."""
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(autouse=True)
def immediate_page_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page re-reads at the first check after a change (``run_timers``), not a second later."""
    from engine.web.ui import live_updates

    monkeypatch.setattr(live_updates, "REFRESH_GAP", 0.0)


@pytest.fixture(autouse=True)
def moving_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """TOTP clock that tests advance by whole steps, so two logins in one test use different codes."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(totp, "clock", lambda: now[0])
    return now


@dataclass
class Web:
    ctx: WebContext
    client: httpx.AsyncClient
    clock: list[float]
    secrets: dict[str, str] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)

    def code(self, username: str) -> str:
        return pyotp.TOTP(self.secrets[username]).at(int(self.clock[0]))

    def tick(self) -> None:
        self.clock[0] += totp.STEP_SECONDS

    async def add_user(self, username: str, role: str, *, enrol: bool = True) -> None:
        async with self.ctx.sessions() as db, db.begin():
            user = await accounts.create_user(db, username, f"{username}@example.org", PASSWORD, role)
            if enrol:
                secret, _ = await accounts.begin_2fa_setup(db, user, self.ctx.box)
                self.secrets[username] = secret
                self.tick()
                await accounts.activate_2fa(db, user, self.code(username), self.ctx.box, "test")

    async def login(self, username: str, *, client: httpx.AsyncClient | None = None) -> str:
        client = client or self.client
        self.tick()
        r = await client.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = await client.post(
            "/auth/2fa/verify", json={"pending_token": r.json()["pending_token"], "code": self.code(username)}
        )
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    async def user_client(self, username: str) -> httpx.AsyncClient:
        client = new_client(self.client._transport)
        token = await self.login(username, client=client)
        client.headers["Authorization"] = f"Bearer {token}"
        return client


def new_client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    # https base URL: the refresh cookie is Secure and would not be sent back over http.
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


@pytest.fixture(params=["sqlite", "postgresql"])
async def web(
    request: pytest.FixtureRequest, tmp_path: Path, moving_clock: list[float]
) -> AsyncIterator[Web]:
    """The API on a fresh database: SQLite, and PostgreSQL when ENGINE_TEST_POSTGRES_URL is set."""
    pg_url = None
    if request.param == "postgresql":
        if not os.environ.get(POSTGRES_ENV):
            pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} (.ci/run starts a server)")
        pg_url = await create_postgres_schema()
    engine = create_engine_for(pg_url or f"sqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    ctx = WebContext(
        sessions=session_factory(engine),
        keys=_KEYS,
        box=SecretBox(Fernet.generate_key()),
        throttle=Throttle(),
        # Never the repository's own bots/ and strategies/: a test's writes stay in its tmp dir.
        bots_dir=tmp_path / "bots",
        strategies_dir=tmp_path / "strategies",
    )
    ctx.bots_dir.mkdir()
    ctx.strategies_dir.mkdir()
    app = create_api(ctx)
    async with new_client(httpx.ASGITransport(app=app)) as client:
        yield Web(ctx, client, moving_clock)
    await engine.dispose()
    if pg_url is not None:
        await drop_postgres_schema(pg_url)
