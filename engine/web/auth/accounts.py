"""Accounts and sessions over the SQL store: users, the password step, the second factor, sessions
with rotating refresh tokens, the audit log. All functions take an open ``AsyncSession`` inside a
transaction; the caller commits.

Decisions (docs/security.md):
- 2FA is required of every user: a correct password only yields a 5-minute pending token, good for
  enrolling (first login) or for entering a code.
- Account lockout: 5 failures (password or code) lock the account for 15 minutes; while locked the
  password alone is refused, but the password and a TOTP code together still sign in
  (:mod:`engine.web.auth.lockout`), so an attacker renewing the lock cannot keep the user out.
  Addresses are throttled separately.
- At most 3 sessions per user: a 4th login evicts the least recently used session.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.observability import register_secret
from engine.store.models import AuditEntry, AuthSession, BackupCode, RefreshToken, User
from engine.web.auth import passwords, totp
from engine.web.auth.crypto import SecretBox
from engine.web.auth.roles import Role, permissions_of
from engine.web.auth.throttle import Throttle
from engine.web.auth.tokens import ACCESS_TTL, TokenKeys

__all__ = [
    "LOCK_AFTER",
    "LOCK_FOR",
    "MAX_SESSIONS",
    "REFRESH_TTL",
    "AuthError",
    "Issued",
    "activate_2fa",
    "audit",
    "authenticate_password",
    "begin_2fa_setup",
    "change_password",
    "claim_step",
    "cleanup_expired",
    "create_user",
    "is_locked",
    "open_session",
    "regenerate_backup_codes",
    "register_failure",
    "revoke_sessions",
    "rotate_refresh",
    "verify_second_factor",
]

LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
MAX_SESSIONS = 3
REFRESH_TTL = timedelta(days=7)
GENERIC_LOGIN_ERROR = "invalid username or password"


class AuthError(Exception):
    """A refused authentication step; ``str(exc)`` is safe to show (it never says which part was wrong)."""


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    session_id: str


def _now() -> datetime:
    return datetime.now(UTC)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def audit(
    db: AsyncSession,
    action: str,
    *,
    user_id: str | None = None,
    target: str | None = None,
    address: str | None = None,
    success: bool = True,
    detail: dict[str, Any] | None = None,
) -> None:
    db.add(
        AuditEntry(
            time=_now(),
            user_id=user_id,
            action=action,
            target=target,
            address=address,
            success=success,
            detail=detail,
        )
    )
    await db.flush()


async def create_user(db: AsyncSession, username: str, email: str, password: str, role: Role | str) -> User:
    """A new active user without 2FA yet (enrolled at first login). Raises ValueError with a clear message."""
    username, email = username.strip(), email.strip().lower()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise ValueError("a username has 1 to 64 characters and no spaces")
    if "@" not in email or len(email) > 254:
        raise ValueError(f"not an email address: {email!r}")
    role = Role(role)
    taken = await db.scalar(select(User.id).where(or_(User.username == username, User.email == email)))
    if taken is not None:
        raise ValueError("a user with this username or email already exists")
    user = User(
        id=str(uuid.uuid4()),
        username=username,
        email=email,
        password_hash=passwords.hash_password(password),
        role=role.value,
        totp_enabled=False,
        active=True,
        failed_logins=0,
    )
    db.add(user)
    await db.flush()
    return user


async def register_failure(db: AsyncSession, user: User) -> None:
    user.failed_logins += 1
    if user.failed_logins >= LOCK_AFTER:
        user.locked_until = _now() + LOCK_FOR
        user.failed_logins = 0
    await db.flush()


def is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > _now()


async def authenticate_password(
    db: AsyncSession, username: str, password: str, address: str, throttle: Throttle
) -> User:
    """The user, if the password is right and neither the account nor the address is locked out.
    Every refusal has the same message; an unknown user costs one dummy hash, like a wrong password."""
    if throttle.blocked(f"addr:{address}"):
        passwords.verify_dummy()
        await audit(
            db, "login", target=username[:200], address=address, success=False, detail={"why": "address"}
        )
        raise AuthError(GENERIC_LOGIN_ERROR)
    user = await db.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        passwords.verify_dummy()
        ok = False
    else:
        ok = passwords.verify_password(user.password_hash, password)
    if user is not None and ok and user.active and not is_locked(user):
        # The failure count is reset only after the second factor: a thief who knows the password must
        # not be able to clear it between guesses of the code.
        return user
    throttle.fail(f"addr:{address}")
    if user is not None and ok is False and not is_locked(user):
        await register_failure(db, user)
    await audit(
        db, "login", user_id=user.id if user else None, target=username[:200], address=address, success=False
    )
    raise AuthError(GENERIC_LOGIN_ERROR)


async def begin_2fa_setup(db: AsyncSession, user: User, box: SecretBox) -> tuple[str, str]:
    """A fresh TOTP secret, stored encrypted but not yet active; returns (secret, otpauth URI) to show once."""
    secret = totp.new_secret()
    register_secret(secret)
    user.totp_secret = box.encrypt(secret)
    user.totp_enabled = False
    user.totp_last_step = None
    await db.flush()
    await audit(db, "2fa.setup", user_id=user.id)
    return secret, totp.provisioning_uri(secret, user.username)


async def claim_step(db: AsyncSession, user: User, step: int) -> bool:
    # One UPDATE that succeeds only if no later-or-equal step was accepted: two requests with the same
    # code race here and exactly one wins.
    result = await db.execute(
        update(User)
        .where(User.id == user.id)
        .where(or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def activate_2fa(db: AsyncSession, user: User, code: str, box: SecretBox, address: str) -> list[str]:
    """Turn 2FA on after a correct code for the pending secret; returns 10 new backup codes (old ones void)."""
    if user.totp_secret is None:
        raise AuthError("start the two-factor set-up first")
    step = totp.match_step(box.decrypt(user.totp_secret), code)
    if step is None or not await claim_step(db, user, step):
        await register_failure(db, user)
        await audit(db, "2fa.activate", user_id=user.id, address=address, success=False)
        raise AuthError("invalid code")
    user.totp_enabled = True
    user.totp_last_step = step
    user.failed_logins = 0
    codes = await _new_backup_codes(db, user)
    await revoke_sessions(db, user.id, reason="2fa_changed")
    await audit(db, "2fa.activate", user_id=user.id, address=address)
    return codes


async def verify_second_factor(
    db: AsyncSession, user: User, code: str, box: SecretBox, address: str, throttle: Throttle
) -> None:
    """Accept a TOTP code (once, later step than the last one) or an unused backup code; else AuthError."""
    if is_locked(user) or not user.active or throttle.blocked(f"addr:{address}") or not user.totp_enabled:
        await audit(
            db, "2fa.verify", user_id=user.id, address=address, success=False, detail={"why": "locked"}
        )
        raise AuthError("invalid code")
    if user.totp_secret is not None and totp.normalise_code(code) is not None:
        step = totp.match_step(box.decrypt(user.totp_secret), code, after_step=user.totp_last_step)
        if step is not None and await claim_step(db, user, step):
            user.failed_logins = 0
            return
    elif len(totp.normalise_backup_code(code)) == 10:
        wanted = totp.normalise_backup_code(code)
        rows = (
            await db.scalars(
                select(BackupCode).where(BackupCode.user_id == user.id, BackupCode.used_at.is_(None))
            )
        ).all()
        for row in rows:
            if passwords.verify_password(row.code_hash, wanted):
                claimed = await db.execute(
                    update(BackupCode)
                    .where(BackupCode.id == row.id, BackupCode.used_at.is_(None))
                    .values(used_at=_now())
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount == 1:
                    user.failed_logins = 0
                    await audit(db, "2fa.backup_code_used", user_id=user.id, address=address)
                    return
    throttle.fail(f"addr:{address}")
    await register_failure(db, user)
    await audit(db, "2fa.verify", user_id=user.id, address=address, success=False)
    raise AuthError("invalid code")


async def _recheck_password(db: AsyncSession, user: User, password: str, address: str, action: str) -> None:
    if is_locked(user) or not passwords.verify_password(user.password_hash, password):
        await register_failure(db, user)
        await audit(db, action, user_id=user.id, address=address, success=False)
        raise AuthError("the password is not right")


async def change_password(
    db: AsyncSession, user: User, current: str, new: str, *, keep_session: str, address: str
) -> None:
    """Asks for the current password again; ends every other session of the user."""
    await _recheck_password(db, user, current, address, "password.change")
    user.password_hash = passwords.hash_password(new)
    await revoke_sessions(db, user.id, reason="password_changed", keep=keep_session)
    await audit(db, "password.change", user_id=user.id, address=address)


async def regenerate_backup_codes(
    db: AsyncSession, user: User, password: str, *, keep_session: str, address: str
) -> list[str]:
    """Ten new backup codes (the old set is void); asks for the password; ends other sessions."""
    await _recheck_password(db, user, password, address, "2fa.backup_codes")
    codes = await _new_backup_codes(db, user)
    await revoke_sessions(db, user.id, reason="backup_codes", keep=keep_session)
    await audit(db, "2fa.backup_codes", user_id=user.id, address=address)
    return codes


async def _new_backup_codes(db: AsyncSession, user: User) -> list[str]:
    """Ten fresh single-use codes, stored hashed; the previous set is void. The plain codes are
    returned to be shown once."""
    codes = totp.generate_backup_codes()
    await db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    for code_text in codes:
        db.add(
            BackupCode(
                user_id=user.id, code_hash=passwords.hash_secret(totp.normalise_backup_code(code_text))
            )
        )
    return codes


def _access_token(keys: TokenKeys, user: User, session_id: str) -> str:
    claims = {
        "sub": user.id,
        "sid": session_id,
        "role": user.role,
        "perms": sorted(permissions_of(user.role)),
    }
    return keys.issue("access", claims, ACCESS_TTL)


async def open_session(db: AsyncSession, user: User, keys: TokenKeys, address: str) -> Issued:
    """A new session (after both factors). Evicts the least recently used one beyond MAX_SESSIONS."""
    now = _now()
    live = (
        await db.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > now
            )
            .order_by(AuthSession.last_used_at)
        )
    ).all()
    for old in live[: max(0, len(live) - (MAX_SESSIONS - 1))]:
        old.revoked_at, old.revoked_reason = now, "evicted"
    sid = str(uuid.uuid4())
    db.add(
        AuthSession(
            id=sid,
            user_id=user.id,
            created_at=now,
            expires_at=now + REFRESH_TTL,
            last_used_at=now,
            address=address[:64],
        )
    )
    refresh = secrets.token_urlsafe(32)
    db.add(RefreshToken(session_id=sid, token_hash=_sha256(refresh), created_at=now))
    user.last_login_at = now
    await db.flush()
    await audit(db, "login", user_id=user.id, address=address)
    return Issued(_access_token(keys, user, sid), refresh, sid)


async def rotate_refresh(db: AsyncSession, refresh: str, keys: TokenKeys, address: str) -> Issued:
    """Spend ``refresh`` for a new pair. A spent token presented again revokes its whole session."""
    now = _now()
    row = await db.scalar(select(RefreshToken).where(RefreshToken.token_hash == _sha256(refresh)))
    if row is None:
        raise AuthError("invalid refresh token")
    sess = await db.get(AuthSession, row.session_id)
    user = await db.get(User, sess.user_id) if sess is not None else None
    if sess is None or user is None:
        raise AuthError("invalid refresh token")
    if row.spent_at is not None:
        if sess.revoked_at is None:
            sess.revoked_at, sess.revoked_reason = now, "refresh_reuse"
        await audit(db, "refresh.reuse", user_id=user.id, address=address, success=False, target=sess.id)
        raise AuthError("invalid refresh token")
    if sess.revoked_at is not None or sess.expires_at <= now or not user.active:
        raise AuthError("invalid refresh token")
    spent = await db.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.spent_at.is_(None))
        .values(spent_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # a concurrent use of the same token: treat as reuse
        sess.revoked_at, sess.revoked_reason = now, "refresh_reuse"
        raise AuthError("invalid refresh token")
    new_refresh = secrets.token_urlsafe(32)
    db.add(RefreshToken(session_id=sess.id, token_hash=_sha256(new_refresh), created_at=now))
    sess.last_used_at = now
    await db.flush()
    return Issued(_access_token(keys, user, sess.id), new_refresh, sess.id)


async def revoke_sessions(
    db: AsyncSession, user_id: str, *, reason: str, only: str | None = None, keep: str | None = None
) -> int:
    """Revoke the user's live sessions (or just ``only``; all but ``keep``). Returns how many."""
    query = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if only is not None:
        query = query.where(AuthSession.id == only)
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    result = await db.execute(
        query.values(revoked_at=_now(), revoked_reason=reason).execution_options(synchronize_session=False)
    )
    return result.rowcount


async def cleanup_expired(db: AsyncSession, *, keep_revoked_for: timedelta = timedelta(days=1)) -> int:
    """Delete sessions (and their refresh tokens) past their 7-day limit or revoked more than a day ago.
    Revoked ones are kept a day so that reuse of their tokens is still recognised and audited."""
    now = _now()
    result = await db.execute(
        delete(AuthSession)
        .where(or_(AuthSession.expires_at <= now, AuthSession.revoked_at <= now - keep_revoked_for))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
