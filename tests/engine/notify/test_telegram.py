from __future__ import annotations

import time
from typing import Any

import pytest

from engine.notify import ErrorEvent, NotificationsConfig, Notifier, TradeOpened, render
from engine.notify._render import to_plain
from engine.observability import SecretRegistry
from tests.engine.notify.conftest import CapturedLogs
from tests.engine.notify.fakes import closed_port_url, fake_telegram

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
OTHER_TOKEN = "987654321:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALDxyz"
HOSTILE_BOT = "<b>bot</b> & *x* _y_ [z](http://e.vil) `q`."


def make(base_url: str, registry: SecretRegistry, token: str = TOKEN, **telegram: Any) -> Notifier:
    config = NotificationsConfig.model_validate(
        {
            "telegram": {
                "token": "env:TG_TOKEN",
                "chat_id": 42,
                "base_url": base_url,
                "retry": {"attempts": 2, "backoff_seconds": 0.01},
                **telegram,
            }
        }
    )
    return Notifier(
        config, resolve_secret={"env:TG_TOKEN": token}.__getitem__, mode="paper", secrets=registry
    )


def opened(bot: str = "btc-ema") -> TradeOpened:
    return TradeOpened(bot=bot, pair="BTC/USDT", side="long", price=64210.5, amount=0.01)


@pytest.mark.parametrize("parse_mode", ["HTML", "MarkdownV2", "plain"])
async def test_delivers_with_user_text_shown_literally(registry: SecretRegistry, parse_mode: str) -> None:
    with fake_telegram(TOKEN) as fake:
        async with make(fake.url, registry, parse_mode=parse_mode) as notifier:
            notifier.notify(opened(HOSTILE_BOT))
            assert await notifier.flush()
        assert notifier.stats()["telegram"].sent == 1
    (body,) = fake.received
    assert body["chat_id"] == "42"
    assert body.get("parse_mode") == (None if parse_mode == "plain" else parse_mode)
    # The fake parses the markup like Telegram does: what the user sees is the plain message.
    assert fake.visible == [to_plain(render(opened(HOSTILE_BOT), mode="paper"))]
    assert fake.visible[0].startswith(f"[paper] Trade opened: {HOSTILE_BOT}\nPair: BTC/USDT")


async def test_429_waits_retry_after_then_delivers(registry: SecretRegistry, logs: CapturedLogs) -> None:
    with fake_telegram(TOKEN) as fake:
        fake.script = [("429", 1)]
        async with make(fake.url, registry) as notifier:
            notifier.notify(opened())
            assert await notifier.flush(timeout=10)
        stats = notifier.stats()["telegram"]
    assert (stats.sent, stats.retries, stats.failed) == (1, 1, 0)
    assert fake.requests == 2
    assert fake.times[1] - fake.times[0] >= 0.95
    text = logs.text()
    assert "retrying" in text and '"retry_in":1.0' in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text


async def test_server_errors_are_retried(registry: SecretRegistry) -> None:
    with fake_telegram(TOKEN) as fake:
        fake.script = [("500", None), ("500", None)]
        async with make(fake.url, registry) as notifier:
            notifier.notify(opened())
            assert await notifier.flush()
    assert fake.requests == 3 and len(fake.received) == 1


async def test_a_refused_token_is_not_retried_and_never_logged(
    registry: SecretRegistry, logs: CapturedLogs
) -> None:
    with fake_telegram(TOKEN) as fake:
        async with make(fake.url, registry, token=OTHER_TOKEN) as notifier:
            notifier.notify(opened())
            notifier.notify(ErrorEvent(message="boom"))
            assert await notifier.flush()
        stats = notifier.stats()["telegram"]
    assert (stats.sent, stats.failed, stats.retries) == (0, 2, 0)
    assert fake.requests == 2
    text = logs.text()
    assert "Telegram answered 401: Unauthorized" in logs.file("errors")
    # httpx logs each request line with the URL; the token inside it is masked.
    assert "/bot***/sendMessage" in logs.file("api_calls")
    assert OTHER_TOKEN not in text and OTHER_TOKEN.split(":")[1] not in text


async def test_an_unreachable_api_fails_quietly(registry: SecretRegistry, logs: CapturedLogs) -> None:
    async with make(closed_port_url().removesuffix("/hook"), registry) as notifier:
        started = time.monotonic()
        for _ in range(3):
            notifier.notify(opened())  # returns at once, never raises
        assert time.monotonic() - started < 0.1
        assert await notifier.flush()
    stats = notifier.stats()["telegram"]
    assert (stats.sent, stats.failed, stats.retries) == (0, 3, 6)
    errors = logs.file("errors")
    assert errors.count("notification not delivered") == 3
    assert "cannot reach Telegram (ConnectError)" in errors
    assert TOKEN.split(":")[1] not in logs.text()


async def test_unparseable_markup_falls_back_to_plain_text(registry: SecretRegistry) -> None:
    with fake_telegram(TOKEN) as fake:
        fake.script = [("parse", None)]
        async with make(fake.url, registry) as notifier:
            notifier.notify(opened())
            assert await notifier.flush()
    (body,) = fake.received
    assert "parse_mode" not in body
    assert body["text"].startswith("[paper] Trade opened: btc-ema")
