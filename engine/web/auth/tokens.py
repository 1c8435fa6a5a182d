"""Signed tokens: RS256 only. The key pair is made on first start; the private key file is mode 0600
under ``$ENGINE_HOME`` (never in the repository).

Two kinds, told apart by ``typ`` and ``aud`` so one can never stand in for the other:
- ``access``  (15 min): user id, session id, role, permissions; every request also checks the session
  in the database, so logout/revocation/role change act at once.
- ``pending`` (5 min): the state between a correct password and the second factor; grants nothing else.
Refresh tokens are not JWTs: they are random strings stored hashed (accounts.py)."""

from __future__ import annotations

import os
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.private_files import make_private_dir

__all__ = ["ACCESS_TTL", "PENDING_TTL", "TokenError", "TokenKeys"]

ACCESS_TTL = timedelta(minutes=15)
PENDING_TTL = timedelta(minutes=5)
_ALGORITHM = "RS256"
_ISSUER = "engine"
_AUDIENCE = {"access": "engine-api", "pending": "engine-2fa"}


class TokenError(Exception):
    """A token that is malformed, forged, expired, of the wrong kind or signed another way."""


@dataclass(frozen=True)
class TokenKeys:
    private_pem: bytes
    public_pem: bytes

    @classmethod
    def generate(cls) -> TokenKeys:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private, public)

    @classmethod
    def load_or_create(cls, home: Path) -> TokenKeys:
        path = home / "jwt_private.pem"
        if not path.exists():
            keys = cls.generate()
            make_private_dir(home)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(keys.private_pem)
            return keys
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise TokenError(f"{path} is readable by other users: chmod 600 {path}")
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TokenError(f"{path} does not hold an RSA private key")
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(path.read_bytes(), public)

    def issue(self, typ: str, claims: dict[str, Any], ttl: timedelta, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        payload = {
            **claims,
            "typ": typ,
            "aud": _AUDIENCE[typ],
            "iss": _ISSUER,
            "iat": int(issued.timestamp()),
            "exp": int((issued + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self.private_pem, algorithm=_ALGORITHM, headers={"typ": "JWT"})

    def decode(self, token: str, typ: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != _ALGORITHM:
                raise TokenError("token algorithm refused")
            claims = jwt.decode(
                token,
                self.public_pem,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE[typ],
                issuer=_ISSUER,
                options={"require": ["exp", "iat", "aud", "iss", "sub", "typ"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
        if claims.get("typ") != typ:
            raise TokenError("wrong token type")
        return claims
