"""The /trades/live WebSocket (token and Origin checked in the handler, SECURITY.md 4 and 14), the
``engine users`` commands, and ``engine serve`` through a real socket."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.pool import NullPool
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from engine.cli import _register
from engine.cli import app as cli_app
from engine.store.db import create_engine_for, session_factory, upgrade_async
from engine.store.enums import BotMode, PositionSide
from engine.store.models import Bot, Trade, User
from engine.web import live_tail
from engine.web.api.context import WebContext
from engine.web.app import create_api
from engine.web.auth import accounts, totp
from engine.web.auth.crypto import SecretBox
from engine.web.auth.tokens import ACCESS_TTL

from .conftest import _KEYS, PASSWORD

ROOT = Path(__file__).resolve().parents[3]


def _live_setup(tmp_path: Path) -> tuple[WebContext, str]:
    async def setup() -> tuple[WebContext, str]:
        # NullPool: the test client runs the app in another event loop than this set-up.
        engine = create_engine_for(f"sqlite:///{tmp_path / 'e.db'}", poolclass=NullPool)
        await upgrade_async(engine)
        ctx = WebContext(sessions=session_factory(engine), keys=_KEYS, box=SecretBox(Fernet.generate_key()))
        async with ctx.sessions() as db, db.begin():
            user = await accounts.create_user(db, "v", "v@example.org", PASSWORD, "viewer")
            secret, _ = await accounts.begin_2fa_setup(db, user, ctx.box)
            await accounts.activate_2fa(db, user, pyotp.TOTP(secret).at(int(totp.clock())), ctx.box, "t")
            issued = await accounts.open_session(db, user, ctx.keys, "t")
            bot = Bot(name="b", config_hash="", mode=BotMode.PAPER)
            db.add(bot)
        return ctx, issued.access_token

    return asyncio.run(setup())


async def _add_trade(ctx: WebContext) -> None:
    now = datetime.now(UTC)
    async with ctx.sessions() as db, db.begin():
        db.add(
            Trade(
                bot_id=1,
                pair="<b>BTC</b>/USDT",
                side=PositionSide.LONG,
                open_time=now,
                close_time=now,
                open_price=1,
                close_price=2,
                amount=1,
                profit_ratio=1.0,
                profit_abs=1,
                fees=0,
                exit_reason="roi",
            )
        )


def test_live_trades_need_a_token_and_a_same_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_tail, "POLL_SECONDS", 0.05)
    ctx, token = _live_setup(tmp_path)
    client = TestClient(create_api(ctx), base_url="https://testserver")
    pending = ctx.keys.issue("pending", {"sub": "x"}, ACCESS_TTL)
    for url, headers in (
        ("/trades/live", {}),
        (f"/trades/live?token={pending}", {}),
        (f"/trades/live?token={token}", {"origin": "https://evil.example"}),
    ):
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url, headers=headers):
            pass
        assert refused.value.code == 1008
    with client.websocket_connect(
        f"/trades/live?token={token}", headers={"origin": "https://testserver"}
    ) as ws:
        asyncio.run(_add_trade(ctx))
        message = ws.receive_json()
        assert message["pair"] == "<b>BTC</b>/USDT"


def test_live_socket_closes_when_the_session_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_tail, "POLL_SECONDS", 0.05)
    ctx, token = _live_setup(tmp_path)
    client = TestClient(create_api(ctx), base_url="https://testserver")

    async def revoke() -> None:
        async with ctx.sessions() as db, db.begin():
            from sqlalchemy import select

            uid = await db.scalar(select(User.id))
            await accounts.revoke_sessions(db, uid, reason="admin")

    with client.websocket_connect(f"/trades/live?token={token}") as ws:
        asyncio.run(revoke())
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1008


def test_users_commands(tmp_path: Path) -> None:
    _register()
    runner = CliRunner()
    url = ["--url", f"sqlite:///{tmp_path / 'u.db'}"]
    r = runner.invoke(cli_app, ["users", "list", *url])
    assert r.exit_code == 0 and "no users yet" in r.output
    create = ["users", "create", "-u", "root", "-e", "root@example.org", "-r", "admin", *url]
    r = runner.invoke(cli_app, create, input="short\nshort\ncorrect horse battery\ncorrect horse battery\n")
    assert r.exit_code == 0, r.output
    assert "at least 8 characters" in r.output and "created root (admin)" in r.output
    assert "correct horse battery" not in r.output
    r = runner.invoke(cli_app, create, input="correct horse battery\ncorrect horse battery\n")
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(cli_app, ["users", "create", "-u", "x", "-e", "x@example.org", "-r", "god", *url])
    assert r.exit_code == 2 and "unknown role" in r.output
    r = runner.invoke(cli_app, ["users", "list", *url])
    assert "root" in r.output and "admin" in r.output and "2fa=off" in r.output
    assert runner.invoke(cli_app, ["users", "reset-2fa", "root", *url]).exit_code == 0
    assert runner.invoke(cli_app, ["users", "disable", "root", *url]).exit_code == 0
    assert "DISABLED" in runner.invoke(cli_app, ["users", "list", *url]).output
    r = runner.invoke(cli_app, ["users", "disable", "ghost", *url])
    assert r.exit_code == 1 and "no user named 'ghost'" in r.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_without_admin_refuses_then_serves_pages_and_api(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ENGINE_HOME": str(tmp_path),
        "ENGINE_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
    }
    env.pop("ENGINE_SECRET_KEY", None)
    for name in [n for n in env if n.startswith("PYTEST")]:  # NiceGUI switches to its test mode under pytest
        env.pop(name)
    engine_cmd = [str(Path(sys.executable).with_name("engine"))]
    port = _free_port()
    refused = subprocess.run(
        [*engine_cmd, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert refused.returncode == 1 and "engine users create --role admin" in refused.stderr
    subprocess.run(
        [*engine_cmd, "users", "create", "-u", "root", "-e", "r@example.org", "-r", "admin"],
        env=env,
        cwd=ROOT,
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = subprocess.Popen(
        [*engine_cmd, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        page = httpx.get(f"{base}/login")
        assert page.status_code == 200
        # NiceGUI's own session cookie: Secure, SameSite=strict, short-lived (SECURITY.md 13).
        session_cookie = page.headers.get("set-cookie", "").lower()
        assert (
            "secure" in session_cookie
            and "samesite=strict" in session_cookie
            and "max-age=28800" in session_cookie
        )
        assert httpx.get(f"{base}/bots/").status_code == 401
        r = httpx.post(f"{base}/auth/login", json={"username": "root", "password": PASSWORD})
        assert r.json()["status"] == "2fa_setup_required"
        spec = httpx.get(f"{base}/openapi.json").json()
        assert "/auth/2fa/verify" in spec["paths"] and spec["info"]["title"] == "engine API"
        assert oct((tmp_path / "jwt_private.pem").stat().st_mode & 0o777) == "0o600"
        assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"
    finally:
        server.terminate()
        server.wait(timeout=20)
