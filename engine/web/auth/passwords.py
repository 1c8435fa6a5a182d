"""Password hashing (argon2id) and the password policy: at least 8 characters, no composition rules,
common passwords refused. Nothing truncates a password (argon2 hashes every byte)."""

from __future__ import annotations

import contextlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "MIN_LENGTH",
    "PasswordPolicyError",
    "check_policy",
    "hash_password",
    "hash_secret",
    "verify_dummy",
    "verify_password",
]

MIN_LENGTH = 8
MAX_LENGTH = 1024  # only against denial of service by huge inputs; far above any real password
_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# The most common leaked passwords that pass the length rule; a user picking one is refused.
_COMMON = frozenset(
    [
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "iloveyou",
        "11111111",
        "00000000",
        "abc12345",
        "abcd1234",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "welcome1",
        "admin123",
        "administrator",
        "letmein1",
        "trustno1",
        "passw0rd",
        "p@ssw0rd",
        "1q2w3e4r",
        "1qaz2wsx",
        "zaq12wsx",
        "qwertyui",
        "asdfghjkl",
        "superman",
        "michael1",
        "dragon12",
        "monkey12",
        "changeme",
        "87654321",
        "11223344",
        "123123123",
        "88888888",
        "aaaaaaaa",
        "computer",
        "internet",
        "whatever",
        "starwars",
        "password!",
        "bitcoin1",
        "crypto123",
    ]
)
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class PasswordPolicyError(ValueError):
    """A password the policy refuses; the message says why."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_LENGTH} characters")
    if password.lower() in _COMMON:
        raise PasswordPolicyError("this password is too common; choose another")


def hash_password(password: str) -> str:
    check_policy(password)
    return _HASHER.hash(password)


def hash_secret(value: str) -> str:
    """argon2id of a generated secret (backup codes): no policy check."""
    return _HASHER.hash(value)


def verify_password(stored_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        verify_dummy()
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_dummy() -> None:
    """Spend the time of one verification, so an unknown user answers as slowly as a wrong password."""
    with contextlib.suppress(VerifyMismatchError):
        _HASHER.verify(_DUMMY_HASH, "not the password")
