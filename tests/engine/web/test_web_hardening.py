"""Weaknesses found when the web app was attacked (issue 15), each closed (SECURITY.md 3, 4, 10-12, 18):
a session past its server-side expiry, a pending token used twice, lone UTF-16 surrogates and values
echoed by validation errors, and a lockout an attacker could renew for ever."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from engine.store.models import AuthSession, User
from engine.web.auth import accounts

from .conftest import PASSWORD, Web


async def test_a_session_past_its_expiry_refuses_its_access_token(web: Web) -> None:
    await web.add_user("alice", "viewer")
    alice = await web.user_client("alice")
    assert (await alice.get("/bots/")).status_code == 200
    async with web.ctx.sessions() as db, db.begin():
        await db.execute(update(AuthSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    # The access token itself still has most of its 15 minutes: the session's own end counts.
    assert (await alice.get("/bots/")).status_code == 401


async def test_a_pending_token_opens_one_session_only(web: Web) -> None:
    await web.add_user("alice", "viewer")
    web.tick()
    r = await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    pending = r.json()["pending_token"]
    first = await web.client.post(
        "/auth/2fa/verify", json={"pending_token": pending, "code": web.code("alice")}
    )
    assert first.status_code == 200
    web.tick()  # the next code is valid: only the spent pending token stands in the way
    again = await web.client.post(
        "/auth/2fa/verify", json={"pending_token": pending, "code": web.code("alice")}
    )
    assert again.status_code == 401
    async with web.ctx.sessions() as db:
        live = await db.scalars(select(AuthSession).where(AuthSession.revoked_at.is_(None)))
        assert len(live.all()) == 1


SURROGATE = '"\\ud800-x"'  # JSON text for a lone UTF-16 surrogate: valid JSON, not valid Unicode text


@pytest.mark.parametrize(
    ("method", "path", "body", "role"),
    [
        ("POST", "/auth/login", '{"username": "alice", "password": %s}', None),
        ("POST", "/auth/2fa/verify", '{"pending_token": "x", "code": %s}', None),
        ("POST", "/users/", '{"username": "bob", "email": "b@example.org", "password": %s}', "admin"),
        ("PUT", "/config/secrets/binance", '{"kind": "exchange", "value": %s}', "admin"),
        ("PUT", "/strategies/x", '{"content": %s}', "admin"),
    ],
)
async def test_a_lone_surrogate_is_a_422_that_echoes_nothing(
    web: Web, caplog: pytest.LogCaptureFixture, method: str, path: str, body: str, role: str | None
) -> None:
    await web.add_user("alice", "admin")
    client = await web.user_client("alice") if role else web.client
    caplog.set_level(logging.DEBUG)
    r = await client.request(
        method, path, content=(body % SURROGATE).encode(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert "ud800" not in r.text.lower() and "-x" not in r.text
    assert "ud800" not in caplog.text.lower() and "\ud800" not in caplog.text


async def test_validation_errors_never_echo_a_submitted_value(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    await web.add_user("alice", "admin")
    admin = await web.user_client("alice")
    caplog.set_level(logging.DEBUG)
    secret = "S3cret-" + "p" * 1100  # too long: refused by validation, whose default answer echoes it
    for r in (
        await web.client.post("/auth/login", json={"username": "alice", "password": secret}),
        await admin.post("/users/", json={"username": "bob", "email": "b@example.org", "password": secret}),
        await admin.put("/config/secrets/binance", json={"kind": "nope", "value": secret}),
    ):
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert detail and all("input" not in item and "loc" in item and "msg" in item for item in detail)
        assert "S3cret" not in r.text
    assert "S3cret" not in caplog.text


def test_every_api_route_parses_bodies_strictly() -> None:
    from fastapi.routing import APIRoute

    from engine.web.api.validation import StrictJsonRoute
    from engine.web.app import API_ROUTERS

    routes = [r for router in API_ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 20 and all(isinstance(r, StrictJsonRoute) for r in routes)


class _Body:
    """A request body sent in 1 MiB chunks, counting how many the server pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.sent = chunks, 0

    async def __aiter__(self):
        for _ in range(self.chunks):
            self.sent += 1
            yield b" " * (1024 * 1024)


async def test_an_oversized_body_is_refused_before_it_is_read(web: Web) -> None:
    # 200 MiB announced: 413 before a single chunk is read, and before the (missing) sign-in is checked.
    body = _Body(200)
    r = await web.client.put(
        "/strategies/x",
        content=body,
        headers={"content-type": "application/json", "content-length": str(200 << 20)},
    )
    assert r.status_code == 413 and body.sent == 0
    # Sent without a length: reading stops as soon as the limit is passed.
    body = _Body(200)
    r = await web.client.put("/strategies/x", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and body.sent <= 3
    # Small routes have a small limit: 100 KiB to the sign-in is too much.
    r = await web.client.post(
        "/auth/login", content=b" " * (100 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


async def test_a_strategy_file_near_the_character_limit_still_fits(web: Web) -> None:
    from engine.web.api.schemas import MAX_FILE_CHARS

    await web.add_user("alice", "admin")
    admin = await web.user_client("alice")
    # The worst case: every character escaped as \\uXXXX (6 bytes), the whole file at its size limit.
    content = "é" * (MAX_FILE_CHARS - 10)
    body = '{"content": "' + "\\u00e9" * (MAX_FILE_CHARS - 10) + '"}'
    r = await admin.put("/strategies/x", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code != 413 and len(content) < MAX_FILE_CHARS


@pytest.fixture
def no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.web.auth import lockout

    monkeypatch.setattr(lockout, "BOTH_FACTORS_DELAY", 0.0)


async def _lock_out(web: Web, username: str) -> None:
    """An attacker's five wrong passwords: the account is locked for 15 minutes."""
    for _ in range(accounts.LOCK_AFTER):
        r = await web.client.post("/auth/login", json={"username": username, "password": "wrong password"})
        assert r.status_code == 401


async def test_a_locked_out_user_still_gets_in_with_password_and_code_together(
    web: Web, no_delay: None
) -> None:
    await web.add_user("alice", "viewer")
    await _lock_out(web, "alice")
    # The password alone no longer opens the door (and says nothing about the lock)...
    r = await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 401 and r.json() == {"detail": "invalid username or password"}
    # ...but the password and a valid code together do, at once: the attacker cannot keep her out.
    web.tick()
    r = await web.client.post(
        "/auth/login-2fa", json={"username": "alice", "password": PASSWORD, "code": web.code("alice")}
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert (await web.client.get("/bots/", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    async with web.ctx.sessions() as db:
        user = await db.scalar(select(User).where(User.username == "alice"))
        assert user.locked_until is None and user.failed_logins == 0


async def test_while_locked_each_wrong_half_gets_the_same_answer(web: Web, no_delay: None) -> None:
    await web.add_user("alice", "viewer")
    await _lock_out(web, "alice")
    web.tick()
    answers = [
        await web.client.post("/auth/login-2fa", json={"username": "alice", "password": pw, "code": code})
        for pw, code in (
            ("wrong password", web.code("alice")),  # the right code, a wrong password
            (PASSWORD, "000000"),  # the right password, a wrong code: no password oracle while locked
            ("wrong password", "000000"),
        )
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert len({a.text for a in answers}) == 1
    # The right code was not spent by the attempt with a wrong password.
    r = await web.client.post(
        "/auth/login-2fa", json={"username": "alice", "password": PASSWORD, "code": web.code("alice")}
    )
    assert r.status_code == 200


async def test_the_lock_is_renewable_but_never_keeps_the_rightful_user_out(web: Web, no_delay: None) -> None:
    await web.add_user("alice", "viewer")
    for _ in range(
        2
    ):  # an attacker renewing the lock every 15 minutes (from one address, under its throttle)
        await _lock_out(web, "alice")
        async with web.ctx.sessions() as db, db.begin():
            await db.execute(update(User).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    await _lock_out(web, "alice")
    web.tick()
    r = await web.client.post(
        "/auth/login-2fa", json={"username": "alice", "password": PASSWORD, "code": web.code("alice")}
    )
    assert r.status_code == 200


async def test_the_login_page_lets_a_locked_out_user_in_with_both_factors(web: Web, no_delay: None) -> None:
    from nicegui import ui
    from nicegui.testing.user_simulation import user_simulation

    from engine.web.pages import register_pages

    await web.add_user("alice", "viewer")
    await _lock_out(web, "alice")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await user.open("/login")
        user.find("Username").type("alice")
        user.find("Password").type(PASSWORD)
        user.find(ui.button).click()
        await user.should_see("invalid username or password")  # locked: the password alone is refused
        await user.should_see("Locked after failed sign-ins?")
        web.tick()
        user.find("Code from your authenticator app").type(web.code("alice")).trigger("keydown.enter")
        await user.should_see("alice (viewer)", retries=50)


async def test_api_answers_carry_the_security_headers(web: Web) -> None:
    r = await web.client.get("/bots/")
    assert r.status_code == 401
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    # The test client speaks https: HSTS is sent over TLS only (test_serve_hardening: not over http).
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    # FastAPI's /docs and /redoc would load Swagger UI and ReDoc from a CDN: not served.
    assert (await web.client.get("/docs")).status_code == 404
    assert (await web.client.get("/redoc")).status_code == 404
    assert (await web.client.get("/openapi.json")).status_code == 200


def test_every_script_tag_of_a_page_gets_the_nonce() -> None:
    from engine.web.headers import add_nonce, page_policy

    html = b'<script type="importmap">{}</script><SCRIPT>x</SCRIPT><p>\\u003cscript>not a tag</p><scripts>'
    out = add_nonce(html, "abc")
    assert out.count(b'nonce="abc"') == 2 and b"<scripts>" in out and b"\\u003cscript>" in out
    policy = page_policy("abc")
    assert "script-src 'self' 'nonce-abc'" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
