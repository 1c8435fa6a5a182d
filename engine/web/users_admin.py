"""User administration for the command line (``engine users ...``): plain async functions over a
session, so the CLI stays a thin layer and the same rules apply as through the API."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import User
from engine.web import admin_actions
from engine.web.auth.roles import Role

__all__ = ["admin_exists", "create", "disable", "list_users", "reset_2fa"]

CLI = "cli"  # the "address" of changes made on the command line, in the audit log


async def admin_exists(db: AsyncSession) -> bool:
    found = await db.scalar(
        select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True)).limit(1)
    )
    return found is not None


async def create(db: AsyncSession, username: str, email: str, password: str, role: Role) -> User:
    return await admin_actions.create_user(db, username, email, password, role, by=None, address=CLI)


async def list_users(db: AsyncSession) -> list[User]:
    return list((await db.scalars(select(User).order_by(User.username))).all())


async def _by_name(db: AsyncSession, username: str) -> User:
    user = await db.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user named {username!r}")
    return user


async def disable(db: AsyncSession, username: str) -> User:
    return await admin_actions.edit_user(db, await _by_name(db, username), active=False, by=None, address=CLI)


async def reset_2fa(db: AsyncSession, username: str) -> User:
    return await admin_actions.reset_2fa(db, await _by_name(db, username), by=None, address=CLI)
