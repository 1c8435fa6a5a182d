"""The secret box: authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) of exchange/OpenAI keys
and TOTP secrets. The key lives outside the database and the repository: ``$ENGINE_SECRET_KEY`` or the
file ``$ENGINE_HOME/secret.key`` (created with mode 0600 on first start, refused if others can read it)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.observability import register_secret
from engine.private_files import make_private_dir

__all__ = ["SECRET_KEY_ENV", "SecretBox", "SecretBoxError", "load_secret_box", "mask"]

SECRET_KEY_ENV = "ENGINE_SECRET_KEY"


class SecretBoxError(RuntimeError):
    """The key is missing, malformed, readable by others, or does not open stored data."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SecretBoxError(
                "the secret key is not a valid Fernet key (32 url-safe base64 bytes)"
            ) from exc
        register_secret(key.decode("ascii", "replace"))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            value = self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretBoxError(
                "stored secrets cannot be decrypted with this key (wrong ENGINE_SECRET_KEY?)"
            ) from exc
        register_secret(value)
        return value


def load_secret_box(home: Path) -> SecretBox:
    env = os.environ.get(SECRET_KEY_ENV)
    if env:
        return SecretBox(env.strip().encode())
    path = home / "secret.key"
    if not path.exists():
        make_private_dir(home)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SecretBoxError(f"{path} is readable by other users: chmod 600 {path}")
    return SecretBox(path.read_bytes().strip())


def mask(secret: str) -> str:
    """What the app shows of a stored key: its last four characters at most, never more than a quarter."""
    if len(secret) < 12:
        return "****"
    return "****" + secret[-4:]
