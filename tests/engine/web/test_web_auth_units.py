"""Passwords, TOTP, tokens, the secret box and the throttle on their own (SECURITY.md 1, 5-8, 10, 17)."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pyotp
import pytest
from cryptography.fernet import Fernet

from engine.web.auth import passwords, totp
from engine.web.auth.crypto import SecretBox, SecretBoxError, load_secret_box, mask
from engine.web.auth.throttle import Throttle
from engine.web.auth.tokens import ACCESS_TTL, TokenError, TokenKeys

from .conftest import _KEYS


def test_argon2id_hash_and_no_truncation() -> None:
    long_pw = "пароль密码🔑" * 8  # 64+ multibyte characters
    stored = passwords.hash_password(long_pw)
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, long_pw)
    assert not passwords.verify_password(stored, long_pw[:-1])


@pytest.mark.parametrize("bad", ["short", "password123", "Qwertyuiop", "12345678"])
def test_policy_refuses_short_and_common_passwords(bad: str) -> None:
    with pytest.raises(passwords.PasswordPolicyError):
        passwords.hash_password(bad)


def test_policy_has_no_composition_rules() -> None:
    assert passwords.verify_password(passwords.hash_password("all lowercase words"), "all lowercase words")


def test_totp_rejects_non_ascii_digits_and_wrong_length() -> None:
    secret = totp.new_secret()
    code = pyotp.TOTP(secret).at(1_800_000_000)
    arabic = code.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert totp.match_step(secret, code, now=1_800_000_000) is not None
    assert totp.match_step(secret, arabic, now=1_800_000_000) is None
    assert totp.match_step(secret, code + "0", now=1_800_000_000) is None
    assert totp.match_step(secret, f"{code[:3]} {code[3:]}", now=1_800_000_000) is not None


def test_totp_window_is_one_step_and_replay_needs_a_later_step() -> None:
    secret = totp.new_secret()
    t = 1_800_000_000
    step = t // 30
    at = pyotp.TOTP(secret).at
    assert totp.match_step(secret, at(t - 30), now=t) == step - 1
    assert totp.match_step(secret, at(t + 30), now=t) == step + 1
    assert totp.match_step(secret, at(t - 60), now=t) is None
    assert totp.match_step(secret, at(t), now=t, after_step=step) is None
    assert totp.match_step(secret, at(t), now=t, after_step=step - 1) == step


def test_secrets_and_backup_codes_come_from_a_csprng() -> None:
    assert len({totp.new_secret() for _ in range(50)}) == 50
    codes = totp.generate_backup_codes()
    assert len(codes) == 10 == len(set(codes))
    assert all(len(totp.normalise_backup_code(c)) == 10 for c in codes)


def _forge(claims: dict, header: dict) -> str:
    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(claims)}."


def _claims(**extra: object) -> dict:
    now = datetime.now(UTC)
    base = {"sub": "u", "sid": "s", "typ": "access", "aud": "engine-api", "iss": "engine"}
    base |= {"iat": int(now.timestamp()), "exp": int((now + ACCESS_TTL).timestamp())}
    return base | extra


def test_tokens_round_trip_and_refuse_forgeries() -> None:
    good = _KEYS.issue("access", {"sub": "u", "sid": "s"}, ACCESS_TTL)
    assert _KEYS.decode(good, "access")["sub"] == "u"
    with pytest.raises(TokenError):  # alg none
        _KEYS.decode(_forge(_claims(), {"alg": "none", "typ": "JWT"}), "access")
    with pytest.raises(TokenError):  # HS256 signed with the public key (algorithm confusion)
        _KEYS.decode(jwt.encode(_claims(), "x" * 32, algorithm="HS256"), "access")
    with pytest.raises(TokenError):  # another key pair
        _KEYS.decode(TokenKeys.generate().issue("access", {"sub": "u", "sid": "s"}, ACCESS_TTL), "access")
    with pytest.raises(TokenError):  # expired
        past = datetime.now(UTC) - timedelta(hours=1)
        _KEYS.decode(_KEYS.issue("access", {"sub": "u", "sid": "s"}, ACCESS_TTL, now=past), "access")
    with pytest.raises(TokenError):  # a pending token is not an access token
        _KEYS.decode(_KEYS.issue("pending", {"sub": "u"}, ACCESS_TTL), "access")
    with pytest.raises(TokenError):  # tampered payload
        head, _, sig = good.split(".")
        _KEYS.decode(f"{head}.{_forge(_claims(sub='admin'), {}).split('.')[1]}.{sig}", "access")


def test_private_key_file_is_0600_and_reloaded(tmp_path: Path) -> None:
    keys = TokenKeys.load_or_create(tmp_path)
    path = tmp_path / "jwt_private.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = TokenKeys.load_or_create(tmp_path)
    assert again.decode(keys.issue("access", {"sub": "u", "sid": "s"}, ACCESS_TTL), "access")["sub"] == "u"
    os.chmod(path, 0o644)
    with pytest.raises(TokenError, match="chmod 600"):
        TokenKeys.load_or_create(tmp_path)


def test_secret_box_key_file_and_wrong_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENGINE_SECRET_KEY", raising=False)
    box = load_secret_box(tmp_path)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    token = box.encrypt("api-secret-value")
    assert "api-secret-value" not in token and box.decrypt(token) == "api-secret-value"
    with pytest.raises(SecretBoxError, match="cannot be decrypted"):
        SecretBox(Fernet.generate_key()).decrypt(token)
    monkeypatch.setenv("ENGINE_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(SecretBoxError):
        load_secret_box(tmp_path).decrypt(token)
    os.chmod(tmp_path / "secret.key", 0o644)
    monkeypatch.delenv("ENGINE_SECRET_KEY")
    with pytest.raises(SecretBoxError, match="chmod 600"):
        load_secret_box(tmp_path)


def test_mask_shows_at_most_the_last_four() -> None:
    assert mask("abcdefghijklmnop") == "****mnop"
    assert mask("short") == "****"


def test_throttle_blocks_then_forgets() -> None:
    now = [0.0]
    throttle = Throttle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.fail("a")
    assert throttle.blocked("a") and not throttle.blocked("b")
    now[0] = 61
    assert not throttle.blocked("a")
