"""The account page at ``/account`` (every signed-in user): change one's password (the current one is
asked again), the two-factor status, new backup codes (password asked again; shown once), and one's
own sessions with revoke. Revoking this browser's own session asks first, then signs out.

Password and backup-code changes go through engine.web.auth.accounts (the same functions as the REST
routes): they audit, and they end the user's other sessions (SECURITY.md 9).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nicegui import ui
from sqlalchemy import func, select

from engine.store.models import AuthSession, BackupCode, User
from engine.web.api.context import WebContext
from engine.web.auth import accounts
from engine.web.auth.accounts import AuthError
from engine.web.auth.passwords import MIN_LENGTH, PasswordPolicyError
from engine.web.ui.shell import (
    action_user,
    browser_id,
    client_address,
    forget_browser,
    frame,
    page_user,
    signed_in_session,
)
from engine.web.ui.trades import when
from engine.web.ui.users import session_state

__all__ = ["register"]


@dataclass
class _AccountView:
    ctx: WebContext
    elements: dict[str, Any] = field(default_factory=dict)

    async def build(self, user: User) -> None:
        e = self.elements
        ui.label("Password").classes("text-h6")
        with ui.row().classes("items-end gap-4"):
            e["current"] = ui.input("Current password", password=True).props("autocomplete=current-password")
            e["new"] = ui.input("New password", password=True).props("autocomplete=new-password")
            e["repeat"] = ui.input("Repeat new password", password=True).props("autocomplete=new-password")
            ui.button("Change password", on_click=self.change_password)
        ui.label(
            f"At least {MIN_LENGTH} characters; common passwords are refused. Your other sessions end."
        ).classes("text-caption")
        e["password_message"] = ui.label("").classes("text-negative")

        ui.label("Two-factor authentication").classes("text-h6")
        e["twofa"] = ui.label("")
        with ui.row().classes("items-end gap-4"):
            e["codes_password"] = ui.input("Password", password=True).props("autocomplete=current-password")
            ui.button("New backup codes", on_click=self.new_backup_codes)
        e["codes_message"] = ui.label("").classes("text-negative")
        e["codes"] = ui.column().classes("gap-0")

        ui.label("Your sessions").classes("text-h6")
        e["sessions"] = ui.column().classes("w-full gap-1")
        with ui.dialog() as e["dialog"], ui.card():
            ui.label("This is the session of this browser: revoking it signs you out here.")
            with ui.row():
                ui.button("Revoke and sign out", on_click=self.revoke_own).props("color=negative")
                ui.button("Cancel", on_click=e["dialog"].close).props("flat")
        await self.show(user)

    async def show(self, user: User) -> None:
        current = signed_in_session(browser_id())
        async with self.ctx.sessions() as db:
            unused = await db.scalar(
                select(func.count()).where(BackupCode.user_id == user.id, BackupCode.used_at.is_(None))
            )
            rows = (
                await db.scalars(
                    select(AuthSession)
                    .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
                    .order_by(AuthSession.created_at.desc())
                )
            ).all()
        self.elements["twofa"].set_text(
            f"On (required of every user); {unused} unused backup code(s)."
            if user.totp_enabled
            else "Not enrolled."
        )
        box = self.elements["sessions"]
        box.clear()
        with box:
            for sess in rows:
                mine = sess.id == current
                with (
                    ui.row()
                    .classes("items-center gap-3")
                    .mark("session-current" if mine else f"session-{sess.id}")
                ):
                    ui.label("this browser" if mine else f"from {sess.address or '?'}").classes("font-bold")
                    ui.label(f"started {when(sess.created_at)}, last used {when(sess.last_used_at)}")
                    ui.label(session_state(sess))
                    if mine:
                        ui.button("Revoke", on_click=self.elements["dialog"].open).props(
                            "flat color=negative"
                        )
                    else:
                        ui.button("Revoke", on_click=lambda sess=sess: self.revoke(sess.id)).props(
                            "flat color=negative"
                        )

    async def change_password(self) -> None:
        user = await action_user(self.ctx, "read")
        if user is None:
            return
        e = self.elements
        if (e["new"].value or "") != (e["repeat"].value or ""):
            e["password_message"].set_text("the new password and its repetition differ")
            return
        sid = signed_in_session(browser_id())
        async with self.ctx.sessions() as db:
            me = await db.get(User, user.id)
            try:
                await accounts.change_password(
                    db,
                    me,
                    e["current"].value or "",
                    e["new"].value or "",
                    keep_session=sid or "",
                    address=client_address(),
                )
            except AuthError as exc:
                await db.commit()  # the refusal is audited and counts as a failure
                e["password_message"].set_text(str(exc))
                return
            except PasswordPolicyError as exc:
                await db.rollback()
                e["password_message"].set_text(str(exc))
                return
            await db.commit()
        for key in ("current", "new", "repeat"):
            e[key].set_value("")
        e["password_message"].set_text("")
        # The page first, then the message: once it shows, the page is current.
        await self.show(user)
        ui.notify("password changed; your other sessions ended")

    async def new_backup_codes(self) -> None:
        user = await action_user(self.ctx, "read")
        if user is None:
            return
        e = self.elements
        sid = signed_in_session(browser_id())
        async with self.ctx.sessions() as db:
            me = await db.get(User, user.id)
            try:
                codes = await accounts.regenerate_backup_codes(
                    db, me, e["codes_password"].value or "", keep_session=sid or "", address=client_address()
                )
            except AuthError as exc:
                await db.commit()
                e["codes_message"].set_text(str(exc))
                return
            await db.commit()
        e["codes_password"].set_value("")
        e["codes_message"].set_text("")
        e["codes"].clear()
        with e["codes"]:
            ui.label(
                "New backup codes (the old ones no longer work). Keep them safe: they are not shown again."
            )
            for code in codes:
                ui.label(code).classes("font-mono")
        await self.show(user)

    async def revoke(self, session_id: str) -> None:
        user = await action_user(self.ctx, "read")
        if user is None:
            return
        async with self.ctx.sessions() as db, db.begin():
            # Only one's own session: the id comes from the page, the owner from the database.
            count = await accounts.revoke_sessions(db, user.id, reason="user", only=session_id)
            await accounts.audit(
                db, "sessions.revoke", user_id=user.id, target=f"user:{user.id}", address=client_address()
            )
        await self.show(user)
        ui.notify("session revoked" if count else "that session had already ended")

    async def revoke_own(self) -> None:
        self.elements["dialog"].close()
        user = await action_user(self.ctx, "read")
        if user is None:
            return
        sid = forget_browser(browser_id())
        if sid is not None:
            async with self.ctx.sessions() as db, db.begin():
                await accounts.revoke_sessions(db, user.id, reason="logout", only=sid)
                await accounts.audit(db, "sessions.revoke", user_id=user.id, address=client_address())
        ui.navigate.to("/login")


def register(ctx: WebContext) -> None:
    @ui.page("/account")
    async def account_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Account"):
            ui.label(f"{user.username} <{user.email}>, role {user.role}")
            await _AccountView(ctx).build(user)
