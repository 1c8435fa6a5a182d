"""TOTP (RFC 6238, 30 s, 6 digits) and backup codes.

``match_step`` returns the time step a code matches (drift of at most one step either way), so the
caller can store it and accept only later steps: pyotp's ``verify`` alone would accept a replay.
Codes are normalised (spaces dropped) and must be exactly six ASCII digits: Python's ``int`` and
``str.isdigit`` accept other scripts' digits, which must not become a second spelling of a code."""

from __future__ import annotations

import hmac
import secrets
import time

import pyotp

__all__ = [
    "BACKUP_CODE_COUNT",
    "generate_backup_codes",
    "match_step",
    "new_secret",
    "normalise_code",
    "provisioning_uri",
]

STEP_SECONDS = 30
VALID_WINDOW = 1
BACKUP_CODE_COUNT = 10
_ASCII_DIGITS = frozenset("0123456789")
# The clock codes are checked against; tests move it forward instead of sleeping.
clock = time.time


def new_secret() -> str:
    return pyotp.random_base32(length=32)  # 160 bits from the secrets module


def provisioning_uri(secret: str, username: str, issuer: str = "engine") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def normalise_code(code: str) -> str | None:
    """Six ASCII digits (spaces and dashes removed), or None."""
    cleaned = code.replace(" ", "").replace("-", "")
    if len(cleaned) != 6 or not set(cleaned) <= _ASCII_DIGITS:
        return None
    return cleaned


def match_step(
    secret: str, code: str, *, now: float | None = None, after_step: int | None = None
) -> int | None:
    """The time step ``code`` is valid for (current step +- 1), if later than ``after_step``; else None."""
    cleaned = normalise_code(code)
    if cleaned is None:
        return None
    totp = pyotp.TOTP(secret)
    current = int((clock() if now is None else now) // STEP_SECONDS)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), cleaned):
            return step
    return None


def generate_backup_codes(count: int = BACKUP_CODE_COUNT) -> list[str]:
    """``count`` codes of 50 random bits each, spelled ``xxxxx-xxxxx`` in a lowercase base32 alphabet."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_backup_code(code: str) -> str:
    return code.strip().lower().replace(" ", "").replace("-", "")
