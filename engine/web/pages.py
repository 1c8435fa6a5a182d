"""The NiceGUI pages of ``engine serve``: login, the second factor (enrolment with a QR code on first
login) and a minimal authenticated landing page. More pages come later; the rules here hold for them:

- No token or secret goes into ``app.storage.user`` (plain JSON on disk). The browser is known by
  NiceGUI's signed browser id; which session it holds is kept in this process's memory only.
- Every page builder and every event handler checks the session against the database again
  (handlers run later, over the socket, when the session may have ended).
- User text (bot names, log lines) is shown with ``ui.label`` (text), never ``ui.html``.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from nicegui import app, ui
from sqlalchemy import select

from engine.store.models import AuthSession, Bot, User
from engine.web.api.context import WebContext
from engine.web.api.routes_auth import qr_svg
from engine.web.auth import accounts
from engine.web.auth.accounts import AuthError
from engine.web.auth.roles import permissions_of
from engine.web.auth.tokens import PENDING_TTL

__all__ = ["register_pages"]


@dataclass
class _Pending:
    user_id: str
    expires: float


# browser id -> pending second factor / signed-in session id. Memory only: a restart signs everyone out.
_PENDING: dict[str, _Pending] = {}
_SIGNED_IN: dict[str, str] = {}


def _browser() -> str:
    return str(app.storage.browser["id"])


def _address() -> str:
    request = ui.context.client.request
    return request.client.host if request is not None and request.client else "unknown"


async def _signed_in_user(ctx: WebContext, browser: str) -> User | None:
    sid = _SIGNED_IN.get(browser)
    if sid is None:
        return None
    async with ctx.sessions() as db:
        sess = await db.get(AuthSession, sid)
        user = await db.get(User, sess.user_id) if sess else None
    if (
        sess is None
        or sess.revoked_at is not None
        or user is None
        or not user.active
        or not user.totp_enabled
    ):
        _SIGNED_IN.pop(browser, None)
        return None
    return user


def register_pages(ctx: WebContext) -> None:
    @ui.page("/login")
    async def login_page() -> None:
        browser, address = _browser(), _address()
        ui.label("Sign in").classes("text-h5")
        username = ui.input("Username").props("autocomplete=username")
        password = ui.input("Password", password=True).props("autocomplete=current-password")
        message = ui.label("").classes("text-negative")

        async def submit() -> None:
            async with ctx.sessions() as db:
                try:
                    user = await accounts.authenticate_password(
                        db, username.value or "", password.value or "", address, ctx.throttle
                    )
                except AuthError as exc:
                    await db.commit()
                    message.set_text(str(exc))
                    return
                await db.commit()
            _PENDING[browser] = _Pending(user.id, time.monotonic() + PENDING_TTL.total_seconds())
            ui.navigate.to("/2fa")

        ui.button("Sign in", on_click=submit)

    @ui.page("/2fa")
    async def second_factor_page() -> None:
        browser, address = _browser(), _address()
        pending = _PENDING.get(browser)
        if pending is None or pending.expires < time.monotonic():
            ui.navigate.to("/login")
            return
        async with ctx.sessions() as db:
            user = await db.get(User, pending.user_id)
            if user is None:
                ui.navigate.to("/login")
                return
            enrolling = not user.totp_enabled
            if enrolling:
                secret, uri = await accounts.begin_2fa_setup(db, user, ctx.box)
                await db.commit()
        if enrolling:
            ui.label("Set up two-factor authentication").classes("text-h5")
            ui.label("Scan this code with an authenticator app, then enter the 6-digit code it shows.")
            svg = base64.b64encode(qr_svg(uri).encode()).decode()
            ui.image(f"data:image/svg+xml;base64,{svg}").style("width: 220px")
            ui.label(f"Or enter this key: {secret}").classes("font-mono")
        else:
            ui.label("Enter the code from your authenticator app (or a backup code)").classes("text-h6")
        code = ui.input("Code").props("autocomplete=one-time-code")
        message = ui.label("").classes("text-negative")
        codes_box = ui.column()

        async def verify() -> None:
            current = _PENDING.get(browser)
            if current is None or current.expires < time.monotonic():
                ui.navigate.to("/login")
                return
            async with ctx.sessions() as db:
                user = await db.get(User, current.user_id)
                try:
                    if user is None:
                        raise AuthError("sign in again")
                    backup = None
                    if user.totp_enabled:
                        await accounts.verify_second_factor(
                            db, user, code.value or "", ctx.box, address, ctx.throttle
                        )
                    else:
                        backup = await accounts.activate_2fa(db, user, code.value or "", ctx.box, address)
                    issued = await accounts.open_session(db, user, ctx.keys, address)
                except AuthError as exc:
                    await db.commit()
                    message.set_text(str(exc))
                    return
                await db.commit()
            _PENDING.pop(browser, None)
            _SIGNED_IN[browser] = issued.session_id
            if backup:
                with codes_box:
                    ui.label("Backup codes: each works once. Keep them safe; they are not shown again.")
                    for item in backup:
                        ui.label(item).classes("font-mono")
                    ui.button("Continue", on_click=lambda: ui.navigate.to("/"))
            else:
                ui.navigate.to("/")

        ui.button("Verify", on_click=verify)

    @ui.page("/")
    async def landing_page() -> None:
        browser = _browser()
        user = await _signed_in_user(ctx, browser)
        if user is None:
            ui.navigate.to("/login")
            return
        ui.label(f"Signed in as {user.username} ({user.role})")
        perms = permissions_of(user.role)
        async with ctx.sessions() as db:
            bots = (await db.scalars(select(Bot).order_by(Bot.name))).all()
        ui.label("Bots").classes("text-h6")
        for bot in bots:
            ui.label(f"{bot.name}: {bot.status} ({bot.mode})")  # text, never HTML
        if not bots:
            ui.label("No bots yet.")
        ui.label(f"Permissions: {', '.join(sorted(perms))}").classes("text-caption")

        async def logout() -> None:
            sid = _SIGNED_IN.pop(browser, None)
            if sid is not None:
                async with ctx.sessions() as db, db.begin():
                    await accounts.revoke_sessions(db, user.id, reason="logout", only=sid)
            ui.navigate.to("/login")

        ui.button("Sign out", on_click=logout)
