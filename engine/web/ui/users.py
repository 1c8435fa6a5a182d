"""The administration page at ``/users`` (ADMIN): users (create with the password policy, change role,
disable/enable, reset 2FA, list and revoke sessions) and the encrypted API keys (exchange and OpenAI),
shown masked only. Every change goes through :mod:`engine.web.admin_actions`, the same functions as the
REST routes, so it is audited the same way; every handler checks its permission again.

Two-factor authentication is required of every user (engine.web.auth.accounts): there is no per-user
or global switch to show here, only "Reset 2FA" for a lost phone (the user enrols again at next login).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nicegui import ui
from sqlalchemy import select

from engine.store.models import ApiSecret, AuthSession, User
from engine.web import admin_actions
from engine.web.api.context import WebContext
from engine.web.auth.passwords import MIN_LENGTH
from engine.web.auth.roles import Role
from engine.web.ui.shell import action_user, client_address, frame, page_user
from engine.web.ui.trades import when

__all__ = ["register"]

ROLES = {r.value: r.value for r in Role}


def session_state(sess: AuthSession) -> str:
    if sess.revoked_at is not None:
        return f"ended {when(sess.revoked_at)} ({sess.revoked_reason or 'revoked'})"
    return f"live until {when(sess.expires_at)}"


@dataclass
class _UsersView:
    ctx: WebContext
    elements: dict[str, Any] = field(default_factory=dict)

    async def build(self) -> None:
        ui.label(
            "Two-factor authentication is required of every user; a new user enrols at first sign-in."
        ).classes("text-caption")
        self.elements["users"] = ui.column().classes("w-full gap-1")
        self.elements["sessions"] = ui.column().classes("w-full gap-1")
        ui.label("New user").classes("text-h6")
        with ui.row().classes("items-end gap-4"):
            self.elements["username"] = ui.input("Username")
            self.elements["email"] = ui.input("Email")
            self.elements["password"] = ui.input("Password", password=True).props("autocomplete=new-password")
            self.elements["role"] = ui.select(ROLES, value=Role.VIEWER.value, label="Role").mark("new-role")
            ui.button("Create user", on_click=self.create)
        ui.label(f"At least {MIN_LENGTH} characters; common passwords are refused.").classes("text-caption")
        ui.label("API keys").classes("text-h6")
        ui.label(
            "Stored encrypted; only a masked form is ever shown. Bots refer to a key as store:NAME."
        ).classes("text-caption")
        self.elements["keys"] = ui.column().classes("w-full gap-1")
        with ui.row().classes("items-end gap-4"):
            self.elements["key_name"] = ui.input("Key name", placeholder="binance_main")
            self.elements["key_kind"] = ui.select(
                {k: k for k in admin_actions.SECRET_KINDS}, value="exchange", label="Kind"
            ).mark("key-kind")
            self.elements["key_value"] = ui.input("Key value", password=True).props("autocomplete=off")
            ui.button("Save key", on_click=self.save_key)
        await self.show_users()
        await self.show_keys()

    # ---- users ---------------------------------------------------------------------------------

    async def show_users(self) -> None:
        async with self.ctx.sessions() as db:
            users = (await db.scalars(select(User).order_by(User.username))).all()
        box = self.elements["users"]
        box.clear()
        with box:
            for u in users:
                # One card per user: who, then what can be done (wraps on a phone).
                with ui.card().props("flat bordered").classes("w-full gap-1").mark(f"user-{u.id}"):
                    with ui.row().classes("items-center gap-x-3 gap-y-0"):
                        ui.label(u.username).classes("font-bold")
                        ui.label(u.email)
                        ui.label(u.role)
                        ui.label("2FA on" if u.totp_enabled else "2FA not enrolled")
                        ui.label("active" if u.active else "disabled")
                        ui.label(
                            f"last login {when(u.last_login_at)} UTC"
                            if u.last_login_at
                            else "never signed in"
                        )
                    with ui.row().classes("items-center gap-2"):
                        role = ui.select(ROLES, value=u.role).classes("min-w-[7rem]").mark(f"role-{u.id}")
                        ui.button(
                            "Set role", on_click=lambda u=u, role=role: self.edit(u.id, role=role.value)
                        )
                        if u.active:
                            ui.button("Disable", on_click=lambda u=u: self.edit(u.id, active=False))
                        else:
                            ui.button("Enable", on_click=lambda u=u: self.edit(u.id, active=True))
                        ui.button("Reset 2FA", on_click=lambda u=u: self.reset_2fa(u.id))
                        ui.button("Sessions", on_click=lambda u=u: self.show_sessions(u.id)).props("flat")

    async def create(self) -> None:
        admin = await action_user(self.ctx, "users:write")
        if admin is None:
            return
        e = self.elements
        try:
            async with self.ctx.sessions() as db, db.begin():
                user = await admin_actions.create_user(
                    db,
                    e["username"].value or "",
                    e["email"].value or "",
                    e["password"].value or "",
                    e["role"].value,
                    by=admin.id,
                    address=client_address(),
                )
                name = user.username
        except ValueError as exc:  # PasswordPolicyError is one
            ui.notify(str(exc), type="negative")
            return
        for key in ("username", "email", "password"):
            e[key].set_value("")
        # The page first, then the message: once it shows, the page is current.
        await self.show_users()
        ui.notify(f"user {name} created")

    async def edit(self, user_id: str, *, role: str | None = None, active: bool | None = None) -> None:
        admin = await action_user(self.ctx, "users:write")
        if admin is None:
            return
        try:
            async with self.ctx.sessions() as db, db.begin():
                user = await db.get(User, user_id)
                if user is None:
                    ui.notify("this user no longer exists", type="negative")
                    return
                if (role is None or role == user.role) and (active is None or active == user.active):
                    ui.notify(f"no change for {user.username}")  # and their sessions stay
                    return
                await admin_actions.edit_user(
                    db, user, role=role, active=active, by=admin.id, address=client_address()
                )
                name = user.username
        except ValueError as exc:  # SelfChangeError, or a role that does not exist
            ui.notify(str(exc), type="negative")
            return
        await self.show_users()
        ui.notify(f"user {name} changed; their sessions ended")

    async def reset_2fa(self, user_id: str) -> None:
        admin = await action_user(self.ctx, "users:write")
        if admin is None:
            return
        async with self.ctx.sessions() as db, db.begin():
            user = await db.get(User, user_id)
            if user is None:
                ui.notify("this user no longer exists", type="negative")
                return
            await admin_actions.reset_2fa(db, user, by=admin.id, address=client_address())
            name = user.username
        await self.show_users()
        ui.notify(f"2FA reset for {name}: they enrol again at next sign-in")

    async def show_sessions(self, user_id: str) -> None:
        if await action_user(self.ctx, "users:write") is None:
            return
        async with self.ctx.sessions() as db:
            user = await db.get(User, user_id)
            rows = (
                await db.scalars(
                    select(AuthSession)
                    .where(AuthSession.user_id == user_id)
                    .order_by(AuthSession.created_at.desc())
                )
            ).all()
        box = self.elements["sessions"]
        box.clear()
        if user is None:
            return
        with box:
            ui.label(f"Sessions of {user.username}").classes("text-h6")
            if not rows:
                ui.label("No sessions.")
            for sess in rows:
                with ui.row().classes("items-center gap-3").mark(f"session-{sess.id}"):
                    ui.label(f"from {sess.address or '?'}")
                    ui.label(f"started {when(sess.created_at)}, last used {when(sess.last_used_at)}")
                    ui.label(session_state(sess))
                    if sess.revoked_at is None:
                        ui.button(
                            "Revoke", on_click=lambda sess=sess: self.revoke(user_id, only=sess.id)
                        ).props("flat color=negative")
            ui.button("Revoke all", on_click=lambda: self.revoke(user_id)).props("outline color=negative")

    async def revoke(self, user_id: str, *, only: str | None = None) -> None:
        admin = await action_user(self.ctx, "sessions:revoke")
        if admin is None:
            return
        async with self.ctx.sessions() as db, db.begin():
            count = await admin_actions.revoke_user_sessions(
                db, user_id, by=admin.id, address=client_address(), only=only
            )
        await self.show_sessions(user_id)
        ui.notify(f"{count} session(s) revoked")

    # ---- API keys ------------------------------------------------------------------------------

    async def show_keys(self) -> None:
        async with self.ctx.sessions() as db:
            keys = (await db.scalars(select(ApiSecret).order_by(ApiSecret.name))).all()
            names = dict((await db.execute(select(User.id, User.username))).all())
        box = self.elements["keys"]
        box.clear()
        with box:
            if not keys:
                ui.label("No keys stored.")
            for key in keys:
                with ui.row().classes("items-center gap-3").mark(f"secret-{key.name}"):
                    ui.label(key.name).classes("font-bold")
                    ui.label(key.kind)
                    ui.label(key.masked).classes("font-mono")
                    by = names.get(key.updated_by, "?") if key.updated_by else "?"
                    ui.label(f"updated {when(key.updated_at)} by {by}")
                    ui.button("Delete", on_click=lambda key=key: self.delete_key(key.name)).props(
                        "flat color=negative"
                    )

    async def save_key(self) -> None:
        admin = await action_user(self.ctx, "secrets:write")
        if admin is None:
            return
        e = self.elements
        name, value = (e["key_name"].value or "").strip(), e["key_value"].value or ""
        if not value:
            ui.notify("enter the key's value", type="negative")
            return
        try:
            async with self.ctx.sessions() as db, db.begin():
                await admin_actions.set_secret(
                    db,
                    self.ctx.box,
                    name,
                    e["key_kind"].value,
                    value,
                    user_id=admin.id,
                    address=client_address(),
                )
        except ValueError as exc:
            ui.notify(str(exc), type="negative")
            return
        e["key_value"].set_value("")  # the clear value leaves the page at once
        await self.show_keys()
        ui.notify(f"key {name} saved")

    async def delete_key(self, name: str) -> None:
        admin = await action_user(self.ctx, "secrets:write")
        if admin is None:
            return
        async with self.ctx.sessions() as db, db.begin():
            found = await admin_actions.delete_secret(db, name, user_id=admin.id, address=client_address())
        await self.show_keys()
        ui.notify(f"key {name} deleted" if found else f"no key named {name}")


def register(ctx: WebContext) -> None:
    @ui.page("/users")
    async def users_page() -> None:
        user = await page_user(ctx, "users:write")
        if user is None:
            return
        with frame(user, "Users & API keys"):
            await _UsersView(ctx).build()
