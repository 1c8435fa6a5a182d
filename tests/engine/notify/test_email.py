from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.notify import NotificationsConfig, Notifier, RiskHalt
from engine.observability import SecretRegistry
from tests.engine.notify.conftest import CapturedLogs
from tests.engine.notify.fakes import FakeSMTP, fake_smtp

PASSWORD = "smtp-Pa55word-for-tests"


def make(registry: SecretRegistry, port: int, env_password: str = PASSWORD, **email: Any) -> Notifier:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "username": "env:SMTP_USER",
        "password": "env:SMTP_PASSWORD",
        "from": "bots@example.com",
        "to": ["me@example.com", "ops@example.com"],
        "retry": {"attempts": 2, "backoff_seconds": 0.01},
        "timeout_seconds": 5,
        **email,
    }
    config = NotificationsConfig.model_validate({"email": settings})
    env = {"env:SMTP_USER": "engine", "env:SMTP_PASSWORD": env_password}
    return Notifier(config, resolve_secret=env.__getitem__, mode="live", secrets=registry)


async def test_mail_is_delivered_with_login(registry: SecretRegistry) -> None:
    with fake_smtp(FakeSMTP(username="engine", password=PASSWORD)) as server:
        async with make(registry, server.port) as notifier:
            notifier.notify(RiskHalt(reason="daily loss limit", bot="btc-ema"))
            assert await notifier.flush()
    (mail,) = server.mails
    assert mail.user == "engine" and not mail.tls
    assert mail.sender == "bots@example.com"
    assert mail.recipients == ["me@example.com", "ops@example.com"]
    assert mail.message["Subject"] == "[engine] [live] Risk halt: btc-ema"
    assert mail.message["X-Engine-Event"] == "risk_halt"
    assert "Reason: daily loss limit" in mail.message.get_payload(decode=True).decode()


async def test_a_refused_login_is_not_retried_and_the_password_is_not_logged(
    registry: SecretRegistry, logs: CapturedLogs
) -> None:
    with fake_smtp(FakeSMTP(username="engine", password=PASSWORD)) as server:
        async with make(registry, server.port, env_password="wrong-password-123") as notifier:
            notifier.notify(RiskHalt(reason="x"))
            assert await notifier.flush()
        stats = notifier.stats()["email"]
    # smtplib tries each advertised mechanism (PLAIN, then LOGIN) once; no retry follows.
    assert server.auth_failures == 2 and server.mails == []
    assert (stats.failed, stats.retries) == (1, 0)
    assert "SMTP server refused the login (535)" in logs.file("errors")
    assert "wrong-password-123" not in logs.text()


async def test_temporary_failures_are_retried(registry: SecretRegistry) -> None:
    with fake_smtp(FakeSMTP(script=[451])) as server:
        async with make(registry, server.port, username=None, password=None) as notifier:
            notifier.notify(RiskHalt(reason="x"))
            assert await notifier.flush()
        assert notifier.stats()["email"].retries == 1
    assert len(server.mails) == 1 and server.mails[0].user is None


async def test_starttls_required_but_not_offered_fails_clearly(
    registry: SecretRegistry, logs: CapturedLogs
) -> None:
    with fake_smtp(FakeSMTP()) as server:
        async with make(registry, server.port, tls="starttls", username=None, password=None) as notifier:
            notifier.notify(RiskHalt(reason="x"))
            assert await notifier.flush()
        assert notifier.stats()["email"].retries == 0
    assert server.mails == []
    assert "STARTTLS extension not supported" in logs.file("errors")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_starttls_with_a_private_ca(registry: SecretRegistry, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with fake_smtp(FakeSMTP(username="engine", password=PASSWORD, tls_context=context)) as server:
        async with make(registry, server.port, tls="starttls", ca_file=str(cert)) as notifier:
            notifier.notify(RiskHalt(reason="x"))
            assert await notifier.flush()
    (mail,) = server.mails
    assert mail.tls and mail.user == "engine"


async def test_an_untrusted_certificate_is_refused(
    registry: SecretRegistry, tmp_path: Path, logs: CapturedLogs
) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with fake_smtp(FakeSMTP(username="engine", password=PASSWORD, tls_context=context)) as server:
        async with make(registry, server.port, tls="starttls") as notifier:
            notifier.notify(RiskHalt(reason="x"))
            assert await notifier.flush()
    assert server.mails == []
    assert "TLS with the SMTP server failed" in logs.file("errors")
