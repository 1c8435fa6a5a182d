from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from engine.notify import EVENT_KINDS, EmailConfig, NotificationsConfig, TelegramConfig, WebhookConfig

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_full_example_validates() -> None:
    config = NotificationsConfig.model_validate(
        {
            "telegram": {
                "token": "env:TG_TOKEN",
                "chat_id": -1001234567890,
                "events": ["trade_opened", "risk_halt"],
            },
            "webhooks": [
                {"name": "ops", "url": "env:OPS_URL", "secret": "env:OPS_SECRET", "events": ["error"]},
                {"url": "https://hooks.example.com/engine", "headers": {"X-Team": "quant"}},
            ],
            "email": {
                "host": "smtp.example.com",
                "username": "env:SMTP_USER",
                "password": "env:SMTP_PASSWORD",
                "from": "bots@example.com",
                "to": ["me@example.com"],
            },
            "daily_summary_at": "07:30",
        }
    )
    assert config.telegram is not None and config.telegram.chat_id == "-1001234567890"
    assert config.telegram.base_url == "https://api.telegram.org"
    assert config.webhooks[1].events == EVENT_KINDS
    assert config.email is not None and config.email.from_ == "bots@example.com"
    assert (config.email.port, config.email.tls) == (587, "starttls")
    assert config.daily_summary_at == time(7, 30)
    # The configuration layer exports a JSON schema from these models.
    schema = NotificationsConfig.model_json_schema(by_alias=True)
    assert "from" in schema["$defs"]["EmailConfig"]["properties"]


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (TelegramConfig, {"token": TOKEN, "chat_id": "1"}, "token"),
        (WebhookConfig, {"url": "https://x.example/h", "secret": "hunter22hunter22"}, "secret"),
        (
            EmailConfig,
            {"host": "smtp.x", "username": "u", "password": "pa55word!", "from": "a@x", "to": ["b@x"]},
            "password",
        ),
    ],
)
def test_secrets_must_be_env_references_and_are_not_echoed(
    model: type, data: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    text = str(info.value)
    assert "must be an env: reference" in text
    assert str(data[field]) not in text


def test_webhook_urls() -> None:
    assert WebhookConfig(url="env:HOOK").url == "env:HOOK"
    with pytest.raises(ValidationError, match="must be an http:// or https:// URL"):
        WebhookConfig(url="ftp://x")
    with pytest.raises(ValidationError, match="must not contain credentials") as info:
        WebhookConfig(url="https://user:s3cretpass@hooks.example.com/x")
    assert "s3cretpass" not in str(info.value)


def test_email_rules() -> None:
    base = {"host": "smtp.example.com", "from": "a@x", "to": ["b@x"]}
    with pytest.raises(ValidationError, match="refusing to send SMTP credentials without TLS"):
        EmailConfig.model_validate({**base, "tls": "none", "username": "u", "password": "env:P"})
    # Loopback relays (a local postfix, the test server) may go without TLS.
    EmailConfig.model_validate(
        {**base, "host": "127.0.0.1", "tls": "none", "username": "u", "password": "env:P"}
    )
    with pytest.raises(ValidationError, match="username and password go together"):
        EmailConfig.model_validate({**base, "username": "u"})
    with pytest.raises(ValidationError, match="at least 1 item"):
        EmailConfig.model_validate({**base, "to": []})


def test_unknown_fields_and_event_kinds_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TelegramConfig.model_validate({"token": "env:T", "chat_id": "1", "chatid": "2"})
    with pytest.raises(ValidationError, match="trade_opened"):
        TelegramConfig.model_validate({"token": "env:T", "chat_id": "1", "events": ["trade_open"]})
    with pytest.raises(ValidationError, match="must be an http"):
        TelegramConfig.model_validate({"token": "env:T", "chat_id": "1", "base_url": "localhost:8081"})
