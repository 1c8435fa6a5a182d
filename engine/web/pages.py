"""The NiceGUI pages of ``engine serve``: login, the second factor (enrolment with a QR code on first
login) and sign-out; the pages behind the sign-in live in :mod:`engine.web.ui`. The rules for all:

- No token or secret goes into ``app.storage.user`` (plain JSON on disk). The browser is known by
  NiceGUI's signed browser id; which session it holds is kept in this process's memory only.
- Every page builder and every event handler checks the session against the database again
  (handlers run later, over the socket, when the session may have ended).
- User text (bot names, log lines) is shown with ``ui.label`` (text), never ``ui.html``.
"""

from __future__ import annotations

import base64
import importlib
import pkgutil
import time
from dataclasses import dataclass

from nicegui import ui

from engine.store.models import User
from engine.web.api.context import WebContext
from engine.web.api.routes_auth import qr_svg
from engine.web.auth import accounts, lockout
from engine.web.auth.accounts import AuthError
from engine.web.auth.tokens import PENDING_TTL
from engine.web.ui.shell import browser_id, client_address, current_user, forget_browser, remember_session

__all__ = ["register_pages"]


@dataclass
class _Pending:
    user_id: str
    expires: float


# browser id -> pending second factor. Memory only: a restart signs everyone out.
_PENDING: dict[str, _Pending] = {}


def _page_modules() -> list[str]:
    import engine.web.ui as pages

    return sorted(
        f"{pages.__name__}.{info.name}"
        for info in pkgutil.iter_modules(pages.__path__)
        if not info.name.startswith("_") and info.name != "shell"
    )


def _show_backup_codes(box: ui.column, codes: list[str]) -> None:
    """The backup codes once, with a way to keep them all at once (copy, or a text file)."""
    text = "\n".join(codes) + "\n"
    with box:
        ui.label("Two-factor authentication is on").classes("text-h5")
        ui.label("Backup codes: each works once. Keep them safe; they are not shown again.")
        ui.label(text).classes("font-mono whitespace-pre").mark("backup-codes")
        with ui.row():
            ui.button("Copy all", on_click=lambda: _copy(text)).props("outline")
            ui.button(
                "Download",
                on_click=lambda: ui.download.content(text.encode(), "engine-backup-codes.txt", "text/plain"),
            ).props("outline")
            ui.button("Continue", on_click=lambda: ui.navigate.to("/"))


def _copy(text: str) -> None:
    ui.clipboard.write(text)
    ui.notify("backup codes copied")


def register_pages(ctx: WebContext) -> None:
    """Login, second factor and sign-out here; every module of :mod:`engine.web.ui` with a
    ``register(ctx)`` adds the pages behind the sign-in."""
    for name in _page_modules():
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if register is not None:
            register(ctx)

    @ui.page("/login")
    async def login_page() -> None:
        browser, address = browser_id(), client_address()
        ui.page_title("Sign in · engine")
        ui.label("Sign in").classes("text-h5")
        username = ui.input("Username").props("autocomplete=username autofocus")
        password = ui.input("Password", password=True).props("autocomplete=current-password")
        # Shown after a refusal: an account locked by failed attempts opens to the password and a
        # code together (engine.web.auth.lockout), so whoever caused the lock cannot keep its owner out.
        code = ui.input("Code from your authenticator app").props("autocomplete=one-time-code")
        hint = ui.label(
            "Locked after failed sign-ins? Enter your password and a code from your authenticator app together."
        ).classes("text-caption")
        code.set_visibility(False)
        hint.set_visibility(False)
        message = ui.label("").classes("text-negative")

        async def both_factors() -> None:
            async with ctx.sessions() as db:
                try:
                    user = await lockout.sign_in_with_both(
                        db,
                        username.value or "",
                        password.value or "",
                        code.value or "",
                        box=ctx.box,
                        address=address,
                        throttle=ctx.throttle,
                    )
                    issued = await accounts.open_session(db, user, ctx.keys, address)
                except AuthError as exc:
                    await db.commit()
                    message.set_text(str(exc))
                    return
                await db.commit()
            remember_session(browser, issued.session_id)
            ui.navigate.to("/")

        async def submit() -> None:
            if code.visible and (code.value or "").strip():
                await both_factors()
                return
            async with ctx.sessions() as db:
                try:
                    user = await accounts.authenticate_password(
                        db, username.value or "", password.value or "", address, ctx.throttle
                    )
                except AuthError as exc:
                    await db.commit()
                    message.set_text(str(exc))
                    code.set_visibility(True)
                    hint.set_visibility(True)
                    return
                await db.commit()
            _PENDING[browser] = _Pending(user.id, time.monotonic() + PENDING_TTL.total_seconds())
            ui.navigate.to("/2fa")

        ui.button("Sign in", on_click=submit)
        # Enter in any field signs in, as in any login form.
        username.on("keydown.enter", submit)
        password.on("keydown.enter", submit)
        code.on("keydown.enter", submit)

    @ui.page("/2fa")
    async def second_factor_page() -> None:
        browser, address = browser_id(), client_address()
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
        ui.page_title("Two-factor authentication · engine")
        form = ui.column().classes("gap-2")
        codes_box = ui.column().classes("gap-2")
        with form:
            if enrolling:
                ui.label("Set up two-factor authentication").classes("text-h5")
                ui.label("Scan this code with an authenticator app, then enter the 6-digit code it shows.")
                svg = base64.b64encode(qr_svg(uri).encode()).decode()
                ui.image(f"data:image/svg+xml;base64,{svg}").style("width: 220px")
                ui.label(f"Or enter this key: {secret}").classes("font-mono")
            else:
                ui.label("Enter the code from your authenticator app (or a backup code)").classes("text-h6")
            code = ui.input("Code").props("autocomplete=one-time-code autofocus")  # letters too: backup codes
            message = ui.label("").classes("text-negative")

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
            remember_session(browser, issued.session_id)
            if backup:
                # Enrolled: the QR code, the key and the form go (they are done with); the codes stay.
                form.delete()
                _show_backup_codes(codes_box, backup)
            else:
                ui.navigate.to("/")

        with form:
            ui.button("Verify", on_click=verify)
        code.on("keydown.enter", verify)  # Enter sends the code

    @ui.page("/logout")
    async def logout_page() -> None:
        user = await current_user(ctx)
        sid = forget_browser(browser_id())
        if user is not None and sid is not None:
            async with ctx.sessions() as db, db.begin():
                await accounts.revoke_sessions(db, user.id, reason="logout", only=sid)
        ui.navigate.to("/login")
