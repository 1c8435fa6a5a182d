"""The write actions shared by the REST routes and the NiceGUI pages: closing a position by hand, the
encrypted key store, user administration, the portfolio limits and the model registry. Each one checks nothing about the caller (the route's
dependency or the page handler has done that) but does the whole job, the audit entry included, so
both ways in behave the same. All take an open session inside a transaction; the caller commits."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.observability import register_secret
from engine.runtime.portfolio import PortfolioLimits
from engine.runtime.risk_settings import APPLIED_KEY, RISK_KEY
from engine.store import EventCategory, record_event
from engine.store.enums import PositionStatus
from engine.store.models import ApiSecret, BackupCode, BotCommand, Position, User, WebSetting
from engine.web.auth import accounts
from engine.web.auth.crypto import SecretBox, mask
from engine.web.auth.roles import Role
from engine.web.control import RuntimeControl

__all__ = [
    "SECRET_KINDS",
    "SECRET_NAME",
    "SelfChangeError",
    "close_position",
    "create_user",
    "delete_secret",
    "edit_user",
    "promote_model",
    "reset_2fa",
    "revoke_user_sessions",
    "risk_settings",
    "rollback_model",
    "set_risk_limits",
    "set_secret",
]

SECRET_KINDS = ("exchange", "openai")
SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # what a credential reference ``store:NAME`` can name


class SelfChangeError(ValueError):
    """An admin tried to demote or deactivate their own account (someone must stay able to administer)."""


async def close_position(
    db: AsyncSession, control: RuntimeControl, position_id: int, *, user_id: str, address: str
) -> BotCommand | None:
    """Queue a ``close_position`` command for the runtime and audit it; None when there is no open
    position with that id. The caller has checked ``positions:close`` and the user's confirmation."""
    position = await db.get(Position, position_id)
    if position is None or position.status != PositionStatus.OPEN:
        return None
    row = await control.request(
        db, position.bot_id, "close_position", user_id=user_id, position_id=position_id
    )
    await accounts.audit(
        db, "position.close", user_id=user_id, target=f"position:{position_id}", address=address
    )
    return row


async def set_secret(
    db: AsyncSession, box: SecretBox, name: str, kind: str, value: str, *, user_id: str, address: str
) -> ApiSecret:
    """Store an exchange or OpenAI key encrypted (new or replaced); only its masked form is kept in clear."""
    if not SECRET_NAME.match(name):
        raise ValueError("a key name has 1 to 100 letters, digits, '_', '.' or '-'")
    if kind not in SECRET_KINDS:
        raise ValueError(f"a key is of kind {' or '.join(SECRET_KINDS)}, not {kind!r}")
    register_secret(value)  # from now on, log lines are scrubbed of it
    row = await db.scalar(select(ApiSecret).where(ApiSecret.name == name))
    ciphertext, masked = box.encrypt(value), mask(value)
    if row is None:
        row = ApiSecret(name=name, kind=kind, ciphertext=ciphertext, masked=masked, updated_by=user_id)
        db.add(row)
    else:
        row.kind, row.ciphertext, row.masked, row.updated_by = kind, ciphertext, masked, user_id
    await db.flush()
    await accounts.audit(db, "secret.set", user_id=user_id, target=f"secret:{name}", address=address)
    return row


async def delete_secret(db: AsyncSession, name: str, *, user_id: str, address: str) -> bool:
    """Delete a stored key; False when there is none of that name."""
    row = await db.scalar(select(ApiSecret).where(ApiSecret.name == name))
    if row is None:
        return False
    await db.delete(row)
    await accounts.audit(db, "secret.delete", user_id=user_id, target=f"secret:{name}", address=address)
    return True


async def create_user(
    db: AsyncSession,
    username: str,
    email: str,
    password: str,
    role: Role | str,
    *,
    by: str | None,
    address: str,
) -> User:
    """A new user (password policy checked; PasswordPolicyError/ValueError with a clear message)."""
    user = await accounts.create_user(db, username, email, password, role)
    await accounts.audit(
        db, "user.create", user_id=by, target=f"user:{user.id}", address=address, detail={"role": user.role}
    )
    return user


async def edit_user(
    db: AsyncSession,
    user: User,
    *,
    role: Role | str | None = None,
    active: bool | None = None,
    by: str | None,
    address: str,
) -> User:
    """Change a role and/or (de)activate; the user's sessions end at once. An admin cannot demote or
    deactivate themself (SelfChangeError)."""
    new_role = Role(role).value if role is not None else None
    if user.id == by and (active is False or (new_role is not None and new_role != user.role)):
        raise SelfChangeError("you cannot demote or deactivate yourself")
    detail: dict[str, object] = {}
    if new_role is not None:
        user.role = detail["role"] = new_role
    if active is not None:
        user.active = detail["active"] = active
    await accounts.revoke_sessions(db, user.id, reason="user_changed")
    await accounts.audit(
        db, "user.edit", user_id=by, target=f"user:{user.id}", address=address, detail=detail
    )
    return user


async def reset_2fa(db: AsyncSession, user: User, *, by: str | None, address: str) -> User:
    """Turn the user's 2FA off (lost phone): they enrol again at their next login; backup codes are
    void and sessions end."""
    user.totp_enabled, user.totp_secret, user.totp_last_step = False, None, None
    await db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    await accounts.revoke_sessions(db, user.id, reason="2fa_reset")
    await accounts.audit(db, "user.reset_2fa", user_id=by, target=f"user:{user.id}", address=address)
    return user


async def revoke_user_sessions(
    db: AsyncSession, user_id: str, *, by: str, address: str, only: str | None = None
) -> int:
    """End a user's sessions (or just ``only``); returns how many were live."""
    count = await accounts.revoke_sessions(db, user_id, reason="admin", only=only)
    await accounts.audit(
        db,
        "sessions.revoke",
        user_id=by,
        target=f"user:{user_id}",
        address=address,
        detail={"session": only} if only else None,
    )
    return count


async def _setting(db: AsyncSession, key: str) -> dict[str, Any]:
    row = await db.get(WebSetting, key)
    return dict(row.value) if row else {}


async def risk_settings(db: AsyncSession) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the web app asked for: limits, version, by, at; what the running engine applies), each
    empty when there is none yet."""
    return await _setting(db, RISK_KEY), await _setting(db, APPLIED_KEY)


async def set_risk_limits(db: AsyncSession, limits: dict[str, Any], *, user: User, address: str) -> int:
    """Store the portfolio limits for the running engine (applied from its next candle); returns the
    new version. ``ValueError`` (nothing stored) when they fail the ``engine run`` options' check."""
    PortfolioLimits(**limits)
    row = await db.get(WebSetting, RISK_KEY)
    old = dict(row.value) if row is not None else {}
    value = {
        "limits": dict(limits),
        "version": int(old.get("version", 0)) + 1,
        "by": user.username,
        "user_id": user.id,
        "at": datetime.now(UTC).isoformat(),
    }
    if row is None:
        db.add(WebSetting(key=RISK_KEY, value=value))
    else:
        row.value = value
    await accounts.audit(
        db,
        "risk.change",
        user_id=user.id,
        address=address,
        detail={"old": old.get("limits"), "new": dict(limits), "version": value["version"]},
    )
    await db.flush()
    return value["version"]


async def promote_model(db: AsyncSession, name: str, version: str, *, user: User, address: str) -> Any:
    """Serve ``version`` of model ``name`` (running bots pick it up within their registry refresh), as
    ``engine ml promote`` does: never files that are missing or changed since training. Audited
    (``model.promote``) and recorded as an ``ml/promoted`` event. ``MLError`` (nothing changed) else."""
    from engine.ml.artifacts import load_artifacts
    from engine.ml.registry import get_version, production, promote

    row = await get_version(db, name, version)
    if row is not None:
        await asyncio.to_thread(load_artifacts, Path(row.path), checksum=row.checksum)
    before = await production(db, name)
    promoted = await promote(db, name, version, f"web:{user.username}")
    previous = before.version if before is not None and before.version != version else None
    await _model_change(db, "promote", name, promoted.version, previous, user=user, address=address)
    return promoted


async def rollback_model(db: AsyncSession, name: str, *, user: User, address: str) -> Any:
    """Retire ``name``'s production version and serve the one promoted before it (``engine ml
    rollback``); audited and recorded like :func:`promote_model`."""
    from engine.ml.artifacts import load_artifacts
    from engine.ml.registry import production, rollback

    before = await production(db, name)
    back = await rollback(db, name, f"web:{user.username}")
    await asyncio.to_thread(load_artifacts, Path(back.path), checksum=back.checksum)
    await _model_change(
        db, "rollback", name, back.version, before.version if before else None, user=user, address=address
    )
    return back


async def _model_change(
    db: AsyncSession, action: str, name: str, version: str, previous: str | None, *, user: User, address: str
) -> None:
    detail = {"model": name, "version": version, "previous": previous}
    await accounts.audit(db, f"model.{action}", user_id=user.id, address=address, detail=detail)
    verb = "promoted to production" if action == "promote" else "rolled back to"
    await record_event(
        db,
        EventCategory.SYSTEM,
        f"ml/{'promoted' if action == 'promote' else 'rolled_back'}",
        f"model {name}: version {version} {verb} by {user.username}"
        + (f" (was {previous})" if previous else ""),
        data={**detail, "by": user.username},
    )
