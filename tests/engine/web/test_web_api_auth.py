"""The sign-in flow over HTTP (SECURITY.md 3-6, 8, 10-12): password, pending token, TOTP or backup
code, sessions with rotating refresh tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import select, update

from engine.store.models import AuditEntry, AuthSession, User
from engine.web.api.context import REFRESH_COOKIE
from engine.web.auth import accounts

from .conftest import PASSWORD, Web, new_client


async def test_unknown_user_and_wrong_password_answer_alike(web: Web) -> None:
    await web.add_user("alice", "viewer")
    wrong = await web.client.post("/auth/login", json={"username": "alice", "password": "not it at all"})
    unknown = await web.client.post("/auth/login", json={"username": "nobody", "password": "not it at all"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid username or password"}


async def test_password_alone_gives_no_access(web: Web) -> None:
    await web.add_user("alice", "viewer")
    r = await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.json()["status"] == "2fa_required"
    assert REFRESH_COOKIE not in r.cookies
    pending = r.json()["pending_token"]
    assert (await web.client.get("/bots/", headers={"Authorization": f"Bearer {pending}"})).status_code == 401
    assert (await web.client.post("/auth/refresh")).status_code == 401


async def test_first_login_enrols_2fa_with_qr_and_backup_codes(web: Web) -> None:
    await web.add_user("bob", "viewer", enrol=False)
    r = await web.client.post("/auth/login", json={"username": "bob", "password": PASSWORD})
    assert r.json()["status"] == "2fa_setup_required"
    pending = r.json()["pending_token"]
    setup = (await web.client.post("/auth/2fa/setup", json={"pending_token": pending})).json()
    assert setup["qr_svg"].lstrip().startswith("<?xml") and "otpauth://totp/" in setup["otpauth_uri"]
    totp_ = pyotp.TOTP(setup["secret"])
    bad = await web.client.post("/auth/2fa/verify", json={"pending_token": pending, "code": "000000"})
    assert bad.status_code == 401
    async with web.ctx.sessions() as db:
        user = await db.scalar(select(User).where(User.username == "bob"))
        assert not user.totp_enabled and setup["secret"] not in (user.totp_secret or "")
    ok = await web.client.post(
        "/auth/2fa/verify", json={"pending_token": pending, "code": totp_.at(int(web.clock[0]))}
    )
    assert ok.status_code == 200
    assert len(ok.json()["backup_codes"]) == 10
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    # The secret is never shown again: set-up is refused once 2FA is active.
    r = await web.client.post("/auth/login", json={"username": "bob", "password": PASSWORD})
    again = await web.client.post("/auth/2fa/setup", json={"pending_token": r.json()["pending_token"]})
    assert again.status_code == 409


async def test_totp_code_replay_is_refused(web: Web) -> None:
    await web.add_user("alice", "viewer")
    web.tick()
    code = web.code("alice")
    for expected in (200, 401):
        p = (await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})).json()
        r = await web.client.post(
            "/auth/2fa/verify", json={"pending_token": p["pending_token"], "code": code}
        )
        assert r.status_code == expected


async def test_two_concurrent_uses_of_one_code_one_wins(web: Web) -> None:
    await web.add_user("alice", "viewer")
    web.tick()
    code = web.code("alice")
    pendings = [
        (await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})).json()
        for _ in range(2)
    ]
    results = await asyncio.gather(
        *(
            web.client.post("/auth/2fa/verify", json={"pending_token": p["pending_token"], "code": code})
            for p in pendings
        )
    )
    assert sorted(r.status_code for r in results) == [200, 401]


async def test_backup_code_works_once(web: Web) -> None:
    await web.add_user("carol", "viewer", enrol=False)
    async with web.ctx.sessions() as db, db.begin():
        user = await db.scalar(select(User).where(User.username == "carol"))
        secret, _ = await accounts.begin_2fa_setup(db, user, web.ctx.box)
        codes = await accounts.activate_2fa(
            db, user, pyotp.TOTP(secret).at(int(web.clock[0])), web.ctx.box, "t"
        )
    for expected in (200, 401):
        p = (await web.client.post("/auth/login", json={"username": "carol", "password": PASSWORD})).json()
        r = await web.client.post(
            "/auth/2fa/verify", json={"pending_token": p["pending_token"], "code": codes[0].upper()}
        )
        assert r.status_code == expected


async def test_brute_force_locks_the_account_for_a_while_only(web: Web) -> None:
    await web.add_user("alice", "viewer")
    for _ in range(accounts.LOCK_AFTER):
        r = await web.client.post("/auth/login", json={"username": "alice", "password": "wrong password"})
        assert r.status_code == 401
    locked = await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert locked.status_code == 401 and locked.json()["detail"] == "invalid username or password"
    async with web.ctx.sessions() as db, db.begin():  # fifteen minutes later
        await db.execute(update(User).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert (
        await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    ).status_code == 200
    async with web.ctx.sessions() as db:
        fails = (await db.scalars(select(AuditEntry).where(AuditEntry.success.is_(False)))).all()
    assert len(fails) >= accounts.LOCK_AFTER + 1


async def test_wrong_totp_codes_count_towards_lockout(web: Web) -> None:
    await web.add_user("alice", "viewer")
    for _ in range(accounts.LOCK_AFTER):
        p = (await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})).json()
        r = await web.client.post(
            "/auth/2fa/verify", json={"pending_token": p["pending_token"], "code": "123456"}
        )
        assert r.status_code == 401
    web.tick()
    p = await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert p.status_code == 401


async def test_one_address_is_throttled_across_accounts(web: Web) -> None:
    web.ctx.throttle.limit = 3
    await web.add_user("alice", "viewer")
    for name in ("x1", "x2", "x3"):
        await web.client.post("/auth/login", json={"username": name, "password": "whatever123"})
    r = await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 401


async def test_forged_expired_and_alg_none_tokens_are_refused(web: Web) -> None:
    await web.add_user("alice", "viewer")
    token = await web.login("alice")
    assert (await web.client.get("/bots/", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    header, payload, signature = token.split(".")
    for bad in (
        f"{header}.{payload}.{signature[:-4]}AAAA",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + payload + ".",
        "garbage",
    ):
        assert (await web.client.get("/bots/", headers={"Authorization": f"Bearer {bad}"})).status_code == 401
    async with web.ctx.sessions() as db:
        user = await db.scalar(select(User).where(User.username == "alice"))
        sid = await db.scalar(select(AuthSession.id).where(AuthSession.user_id == user.id))
    expired = web.ctx.keys.issue(
        "access",
        {"sub": user.id, "sid": sid, "role": "viewer"},
        timedelta(minutes=15),
        now=datetime.now(UTC) - timedelta(minutes=16),
    )
    assert (await web.client.get("/bots/", headers={"Authorization": f"Bearer {expired}"})).status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(web: Web) -> None:
    await web.add_user("alice", "viewer")
    await web.login("alice")
    first = web.client.cookies[REFRESH_COOKIE]
    r = await web.client.post("/auth/refresh")
    assert r.status_code == 200
    second = web.client.cookies[REFRESH_COOKIE]
    assert second != first
    access = r.json()["access_token"]
    assert (await web.client.get("/bots/", headers={"Authorization": f"Bearer {access}"})).status_code == 200
    thief = new_client(web.client._transport)
    assert (
        await thief.post("/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={first}"})
    ).status_code == 401
    # The whole family is gone: the current refresh token and the access token too.
    assert (await web.client.post("/auth/refresh")).status_code == 401
    assert (await web.client.get("/bots/", headers={"Authorization": f"Bearer {access}"})).status_code == 401
    async with web.ctx.sessions() as db:
        assert await db.scalar(select(AuditEntry.id).where(AuditEntry.action == "refresh.reuse")) is not None


async def test_at_most_three_sessions_the_fourth_evicts_the_oldest(web: Web) -> None:
    await web.add_user("alice", "viewer")
    tokens = [await web.login("alice", client=new_client(web.client._transport)) for _ in range(4)]
    codes = [
        (await web.client.get("/bots/", headers={"Authorization": f"Bearer {t}"})).status_code for t in tokens
    ]
    assert codes == [401, 200, 200, 200]


async def test_logout_and_role_change_act_at_once(web: Web) -> None:
    await web.add_user("alice", "trader")
    await web.add_user("root", "admin")
    token = await web.login("alice")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await web.client.post("/auth/logout", headers=auth)).status_code == 204
    assert (await web.client.get("/bots/", headers=auth)).status_code == 401
    alice = await web.user_client("alice")
    admin = await web.user_client("root")
    async with web.ctx.sessions() as db:
        alice_id = await db.scalar(select(User.id).where(User.username == "alice"))
    assert (await admin.patch(f"/users/{alice_id}", json={"role": "viewer"})).status_code == 200
    assert (await alice.get("/bots/")).status_code == 401
    alice = await web.user_client("alice")
    assert (await admin.patch(f"/users/{alice_id}", json={"active": False})).status_code == 200
    assert (await alice.get("/bots/")).status_code == 401
    assert (
        await web.client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    ).status_code == 401


async def test_cleanup_removes_expired_sessions(web: Web) -> None:
    await web.add_user("alice", "viewer")
    await web.login("alice")
    async with web.ctx.sessions() as db, db.begin():
        await db.execute(update(AuthSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert await accounts.cleanup_expired(db) == 1
    assert (await web.client.post("/auth/refresh")).status_code == 401
