from __future__ import annotations

from typing import Any

from engine.notify import NotificationsConfig, Notifier, RiskHalt, TradeClosed, sign_webhook
from engine.observability import SecretRegistry
from tests.engine.notify.conftest import CapturedLogs
from tests.engine.notify.fakes import fake_webhook

SECRET = "whsec_9f2c1d7e4b8a6035c2e1f0d9"


def make(registry: SecretRegistry, env: dict[str, str], **webhook: Any) -> Notifier:
    config = NotificationsConfig.model_validate(
        {"webhooks": [{"name": "ops", "retry": {"attempts": 3, "backoff_seconds": 0.01}, **webhook}]}
    )
    return Notifier(config, resolve_secret=env.__getitem__, mode="live", secrets=registry)


def closed() -> TradeClosed:
    return TradeClosed(
        bot="btc-ema", pair="BTC/USDT", side="long", entry_price=100.0, exit_price=110.0, amount=2.0, pnl=20.0
    )


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    assert sign_webhook("k", "1700000000", b"{}") == (
        "sha256=" + __import__("hmac").new(b"k", b"1700000000.{}", "sha256").hexdigest()
    )


async def test_signed_json_delivery(registry: SecretRegistry) -> None:
    with fake_webhook(SECRET) as hook:
        env = {"env:HOOK_URL": hook.url, "env:HOOK_SECRET": SECRET}
        async with make(registry, env, url="env:HOOK_URL", secret="env:HOOK_SECRET") as notifier:
            notifier.notify(closed())
            assert await notifier.flush()
        assert notifier.channels == ("webhook:ops",)
    assert hook.rejected == 0
    (body,) = hook.received
    assert body["event"] == "trade_closed" and body["mode"] == "live" and body["bot"] == "btc-ema"
    assert body["title"] == "[live] Trade closed: btc-ema"
    assert body["text"].splitlines()[0] == body["title"]
    assert body["data"]["pnl"] == 20.0 and body["data"]["pair"] == "BTC/USDT"
    headers = hook.headers[0]
    assert headers["x-engine-event"] == "trade_closed"
    assert headers["x-engine-delivery"] == body["id"]
    assert headers["x-engine-signature"].startswith("sha256=")
    # The URL came from the environment: it is treated as a secret from now on.
    assert hook.url in registry


async def test_a_wrong_secret_is_refused_and_not_retried(
    registry: SecretRegistry, logs: CapturedLogs
) -> None:
    with fake_webhook(SECRET) as hook:
        env = {"env:HOOK_SECRET": "not-the-right-secret"}
        async with make(registry, env, url=hook.url, secret="env:HOOK_SECRET") as notifier:
            notifier.notify(RiskHalt(reason="max drawdown"))
            assert await notifier.flush()
        stats = notifier.stats()["webhook:ops"]
    assert hook.rejected == 1 and hook.received == []
    assert (stats.failed, stats.retries) == (1, 0)
    errors = logs.file("errors")
    assert "webhook:ops answered 401 Unauthorized" in errors
    assert "not-the-right-secret" not in logs.text()


async def test_busy_receivers_are_retried_with_one_delivery_id(registry: SecretRegistry) -> None:
    with fake_webhook(None) as hook:
        hook.script = [503, 429]
        async with make(registry, {}, url=hook.url) as notifier:
            notifier.notify(closed())
            assert await notifier.flush()
        stats = notifier.stats()["webhook:ops"]
    assert (stats.sent, stats.retries) == (1, 2)
    assert len(hook.attempts) == 3 and len(set(hook.attempts)) == 1
    assert "x-engine-signature" not in hook.headers[0]


async def test_custom_headers_from_the_environment_stay_out_of_logs(
    registry: SecretRegistry, logs: CapturedLogs
) -> None:
    with fake_webhook(None) as hook:
        hook.script = [500, 500, 500, 500]
        env = {"env:HOOK_AUTH": "Token abcdef0123456789"}
        headers = {"Authorization": "env:HOOK_AUTH", "X-Team": "quant"}
        async with make(registry, env, url=hook.url, headers=headers) as notifier:
            notifier.notify(closed())
            assert await notifier.flush()
        assert notifier.stats()["webhook:ops"].failed == 1
        assert len(hook.attempts) == 4
    assert "abcdef0123456789" not in logs.text()
    assert "webhook:ops answered 500" in logs.file("errors")
