"""User administration for the command line (``engine users ...``): plain async functions over a
session, so the CLI stays a thin layer and the same rules apply as through the API."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import BackupCode, User
from engine.web.auth import accounts
from engine.web.auth.roles import Role

__all__ = ["admin_exists", "create", "disable", "list_users", "reset_2fa"]


async def admin_exists(db: AsyncSession) -> bool:
    found = await db.scalar(
        select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True)).limit(1)
    )
    return found is not None


async def create(db: AsyncSession, username: str, email: str, password: str, role: Role) -> User:
    user = await accounts.create_user(db, username, email, password, role)
    await accounts.audit(
        db, "user.create", target=f"user:{user.id}", address="cli", detail={"role": user.role}
    )
    return user


async def list_users(db: AsyncSession) -> list[User]:
    return list((await db.scalars(select(User).order_by(User.username))).all())


async def _by_name(db: AsyncSession, username: str) -> User:
    user = await db.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user named {username!r}")
    return user


async def disable(db: AsyncSession, username: str) -> User:
    user = await _by_name(db, username)
    user.active = False
    await accounts.revoke_sessions(db, user.id, reason="disabled")
    await accounts.audit(db, "user.disable", target=f"user:{user.id}", address="cli")
    return user


async def reset_2fa(db: AsyncSession, username: str) -> User:
    user = await _by_name(db, username)
    user.totp_enabled, user.totp_secret, user.totp_last_step = False, None, None
    await db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    await accounts.revoke_sessions(db, user.id, reason="2fa_reset")
    await accounts.audit(db, "user.reset_2fa", target=f"user:{user.id}", address="cli")
    return user
