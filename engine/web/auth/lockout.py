"""Signing in with both factors in one step: the way in that an account lock cannot close.

Five failed passwords or codes lock an account for 15 minutes (accounts.py). An attacker who knows a
username can renew that lock for ever, five guesses every quarter of an hour, from any address. So the
lock stops the password *alone*: while it holds, ``/auth/login`` refuses even the right password (no
oracle for an attacker guessing it), and the rightful user signs in here with the password and a
current TOTP code together. Someone without the authenticator gains nothing: a wrong half, whichever,
gets the one answer every refusal gets, after the same fixed delay, and costs an address failure
(20 in 15 minutes block the address). Only TOTP codes are taken here, not backup codes: checking a
backup code takes ten argon2 verifications, and that time would tell that the password was right.

The same step works when the account is not locked (both factors at once); its failures then count
towards the lock like any other.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import User
from engine.web.auth import passwords, totp
from engine.web.auth.accounts import (
    GENERIC_LOGIN_ERROR,
    AuthError,
    audit,
    claim_step,
    is_locked,
    register_failure,
)
from engine.web.auth.crypto import SecretBox
from engine.web.auth.throttle import Throttle

__all__ = ["BOTH_FACTORS_DELAY", "sign_in_with_both"]

# Seconds every attempt waits before its answer: the same for right and wrong halves, and slow enough
# to take the fun out of scripting guesses over one connection.
BOTH_FACTORS_DELAY = 1.0


async def _code_ok(db: AsyncSession, user: User, code: str, box: SecretBox) -> bool:
    if user.totp_secret is None or not user.totp_enabled or totp.normalise_code(code) is None:
        return False
    step = totp.match_step(box.decrypt(user.totp_secret), code, after_step=user.totp_last_step)
    return step is not None and await claim_step(db, user, step)


async def sign_in_with_both(
    db: AsyncSession,
    username: str,
    password: str,
    code: str,
    *,
    box: SecretBox,
    address: str,
    throttle: Throttle,
) -> User:
    """The user if the password and a fresh TOTP code are both right, locked account or not; else
    AuthError with the generic message. The caller opens the session and commits."""
    await asyncio.sleep(BOTH_FACTORS_DELAY)
    key = f"addr:{address}"
    user = await db.scalar(select(User).where(User.username == username.strip()))
    if throttle.blocked(key) or user is None:
        passwords.verify_dummy()
        ok = False
    else:
        # The code is checked only after a right password: a wrong password must not spend the
        # user's current code (it would then fail the user's own attempt in the same 30 s).
        ok = passwords.verify_password(user.password_hash, password) and user.active
        ok = ok and await _code_ok(db, user, code, box)
    if ok and user is not None:
        user.failed_logins = 0
        user.locked_until = None
        await audit(db, "login.both_factors", user_id=user.id, address=address)
        return user
    throttle.fail(key)
    if user is not None and not is_locked(user):
        await register_failure(db, user)
    await audit(
        db,
        "login",
        user_id=user.id if user else None,
        target=username[:200],
        address=address,
        success=False,
        detail={"why": "both_factors"},
    )
    raise AuthError(GENERIC_LOGIN_ERROR)
