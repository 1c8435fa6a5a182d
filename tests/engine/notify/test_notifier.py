from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from engine.notify import (
    BotDaySummary,
    DailySummary,
    ErrorEvent,
    NotificationLogHandler,
    NotificationsConfig,
    Notifier,
    NotifyConfigError,
    ReloadResult,
    RiskHalt,
    TradeOpened,
    environ_resolver,
    next_daily_run,
)
from engine.notify._daily import run_daily_summaries
from engine.observability import SecretRegistry, bind_context
from tests.engine.notify.conftest import CapturedLogs
from tests.engine.notify.fakes import closed_port_url, eventually, fake_telegram, fake_webhook

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
RESOLVE = {"env:TG_TOKEN": TOKEN}.__getitem__


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def telegram(url: str, **extra: Any) -> dict[str, Any]:
    return {"token": "env:TG_TOKEN", "chat_id": 7, "base_url": url, **extra}


def opened(i: int = 0) -> TradeOpened:
    return TradeOpened(bot=f"bot{i}", pair="BTC/USDT", side="long", price=100.0 + i, amount=1.0)


def test_missing_secrets_fail_at_construction(
    registry: SecretRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = NotificationsConfig.model_validate({"telegram": telegram("http://127.0.0.1:9")})
    monkeypatch.delenv("TG_TOKEN", raising=False)
    with pytest.raises(
        NotifyConfigError, match=r"notifications\.telegram\.token: cannot resolve env:TG_TOKEN"
    ):
        Notifier(config, secrets=registry)
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    assert environ_resolver("env:TG_TOKEN") == TOKEN
    assert Notifier(config, secrets=registry).channels == ("telegram",)
    assert TOKEN in registry


def test_a_webhook_url_from_the_environment_must_be_a_url(registry: SecretRegistry) -> None:
    config = NotificationsConfig.model_validate({"webhooks": [{"url": "env:HOOK"}]})
    with pytest.raises(NotifyConfigError, match=r"webhooks\[0\]\.url: env:HOOK does not hold") as info:
        Notifier(config, resolve_secret=lambda _: "hooks.example.com/secret-path", secrets=registry)
    assert "secret-path" not in str(info.value)


def test_disabled_channels_are_not_built(registry: SecretRegistry) -> None:
    config = NotificationsConfig.model_validate(
        {"telegram": telegram("http://x", enabled=False), "webhooks": [{"url": "http://x", "enabled": False}]}
    )
    assert Notifier(config, resolve_secret=RESOLVE, secrets=registry).channels == ()


async def test_rate_limit_coalesces_into_one_summary(registry: SecretRegistry) -> None:
    clock = FakeClock()
    with fake_telegram(TOKEN) as fake:
        limit = {"messages": 2, "per_seconds": 0.2}
        config = NotificationsConfig.model_validate({"telegram": telegram(fake.url, rate_limit=limit)})
        async with Notifier(
            config, resolve_secret=RESOLVE, secrets=registry, clock=clock, mode="live"
        ) as notifier:
            for i in range(6):
                notifier.notify(opened(i))
            notifier.notify(ErrorEvent(message="x"))
            assert await notifier.flush()
            assert len(fake.received) == 2
            assert notifier.stats()["telegram"].suppressed == 5
            clock.now += 0.1  # one token back
            assert await eventually(lambda: len(fake.visible) == 3)
    assert fake.visible[2] == (
        "[live] Notifications suppressed\n\n"
        "5 notifications were not sent because of the rate limit (1 error, 4 trade_opened)."
    )


async def test_after_suppression_the_next_message_carries_a_note(registry: SecretRegistry) -> None:
    clock = FakeClock()
    with fake_telegram(TOKEN) as fake:
        limit = {"messages": 1, "per_seconds": 0.2}
        config = NotificationsConfig.model_validate({"telegram": telegram(fake.url, rate_limit=limit)})
        async with Notifier(config, resolve_secret=RESOLVE, secrets=registry, clock=clock) as notifier:
            notifier.notify(opened(0))
            notifier.notify(opened(1))
            assert await notifier.flush()
            clock.now += 1.0
            notifier.notify(opened(2))  # arrives before the worker's quiet-period timer
            assert await notifier.flush()
    assert len(fake.visible) == 2
    assert fake.visible[1].startswith("Trade opened: bot2")
    assert fake.visible[1].endswith("1 earlier notifications suppressed by the rate limit (1 trade_opened)")


async def test_a_dead_channel_does_not_hold_up_the_others(
    registry: SecretRegistry, logs: CapturedLogs
) -> None:
    with fake_telegram(TOKEN) as fake:
        config = NotificationsConfig.model_validate(
            {
                "telegram": telegram(fake.url, events=["trade_opened", "risk_halt"]),
                "webhooks": [
                    {
                        "name": "down",
                        "url": closed_port_url(),
                        "retry": {"attempts": 5, "backoff_seconds": 0.2},
                    }
                ],
            }
        )
        notifier = Notifier(config, resolve_secret=RESOLVE, secrets=registry)
        await notifier.start()
        notifier.notify(opened(1))
        notifier.notify(ReloadResult(ok=True))  # not a Telegram event
        notifier.notify(RiskHalt(reason="drawdown"))
        assert await eventually(lambda: len(fake.received) == 2, timeout=2)
        # The webhook is still backing off while Telegram is done.
        assert notifier.stats()["webhook:down"].failed == 0
        started = asyncio.get_running_loop().time()
        await notifier.stop(timeout=0.3)  # gives up on the backing-off webhook
        assert asyncio.get_running_loop().time() - started < 2
        stats = notifier.stats()
    # Mode "paper" is the logging default set by the `logs` fixture.
    assert [v.splitlines()[0] for v in fake.visible] == [
        "[paper] Trade opened: bot1",
        "[paper] Risk halt: all bots",
    ]
    assert stats["telegram"].sent == 2
    assert "notification not sent, retrying" in logs.text()
    assert TOKEN.split(":")[1] not in logs.text()


async def test_stop_sends_what_is_queued(registry: SecretRegistry) -> None:
    with fake_webhook(None) as hook:
        config = NotificationsConfig.model_validate({"webhooks": [{"url": hook.url}]})
        notifier = Notifier(config, secrets=registry)
        for i in range(3):
            notifier.notify(opened(i))  # queued before start
        await notifier.start()
        await notifier.stop()
    assert [b["bot"] for b in hook.received] == ["bot0", "bot1", "bot2"]


async def test_a_full_queue_counts_as_suppressed(registry: SecretRegistry) -> None:
    with fake_webhook(None) as hook:
        config = NotificationsConfig.model_validate({"webhooks": [{"url": hook.url}], "queue_size": 2})
        notifier = Notifier(config, secrets=registry)
        for i in range(5):
            notifier.notify(opened(i))
        async with notifier:
            assert await notifier.flush()
    assert [b["bot"] for b in hook.received] == ["bot0", "bot1"]
    assert hook.received[0]["note"] == "3 earlier notifications suppressed by the rate limit (3 trade_opened)"


async def test_notify_from_another_thread(registry: SecretRegistry) -> None:
    with fake_webhook(None) as hook:
        config = NotificationsConfig.model_validate({"webhooks": [{"url": hook.url}]})
        async with Notifier(config, secrets=registry) as notifier:
            thread = threading.Thread(target=lambda: [notifier.notify(opened(i)) for i in range(3)])
            thread.start()
            await asyncio.to_thread(thread.join)
            assert await eventually(lambda: len(hook.received) == 3)


async def test_mode_comes_from_the_event_the_notifier_or_the_context(registry: SecretRegistry) -> None:
    with fake_webhook(None) as hook:
        config = NotificationsConfig.model_validate({"webhooks": [{"url": hook.url}]})
        async with Notifier(config, secrets=registry) as notifier:
            with bind_context(mode="testnet"):
                notifier.notify(opened(1))
            notifier.notify(RiskHalt(reason="r", mode="live"))
            assert await notifier.flush()
    assert [(b["mode"], b["title"]) for b in hook.received] == [
        ("testnet", "[testnet] Trade opened: bot1"),
        ("live", "[live] Risk halt: all bots"),
    ]


async def test_a_broken_channel_is_contained(registry: SecretRegistry, logs: CapturedLogs) -> None:
    with fake_webhook(None) as hook:
        config = NotificationsConfig.model_validate({"webhooks": [{"url": hook.url}]})
        async with Notifier(config, secrets=registry) as notifier:
            worker = notifier._workers[0]
            assert worker.channel is not None
            real_send = worker.channel.send
            calls = 0

            async def flaky(message: Any) -> None:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise RuntimeError("bug in a channel")
                await real_send(message)

            worker.channel.send = flaky  # type: ignore[method-assign]
            notifier.notify(opened(1))
            notifier.notify(opened(2))
            assert await notifier.flush()
    assert [b["bot"] for b in hook.received] == ["bot2"]
    assert "RuntimeError: bug in a channel" in logs.file("errors")


async def test_error_logs_become_notifications(registry: SecretRegistry) -> None:
    registry.register("exchange-api-secret-value")
    with fake_webhook(None) as hook:
        config = NotificationsConfig.model_validate({"webhooks": [{"url": hook.url, "events": ["error"]}]})
        async with Notifier(config, secrets=registry) as notifier:
            handler = NotificationLogHandler(notifier)
            orders, own = logging.getLogger("engine.orders"), logging.getLogger("engine.notify")
            orders.addHandler(handler)
            own.addHandler(handler)
            try:
                with bind_context(bot="btc-ema", mode="live"):
                    orders.warning("not an error")
                    try:
                        raise ConnectionError("reset by peer, key exchange-api-secret-value")
                    except ConnectionError:
                        orders.exception("order placement failed")
                    own.error("a failing channel must not notify about itself")
                assert await notifier.flush()
            finally:
                orders.removeHandler(handler)
                own.removeHandler(handler)
    (body,) = hook.received
    assert body["bot"] == "btc-ema" and body["mode"] == "live"
    assert body["data"]["where"] == "engine.orders"
    assert body["data"]["message"] == "order placement failed\nConnectionError: reset by peer, key ***"


def test_next_daily_run() -> None:
    at = time(0, 0)
    assert next_daily_run(datetime(2024, 5, 1, 13, 0, tzinfo=UTC), at) == datetime(2024, 5, 2, tzinfo=UTC)
    assert next_daily_run(datetime(2024, 5, 2, tzinfo=UTC), at) == datetime(2024, 5, 3, tzinfo=UTC)
    assert next_daily_run(datetime(2024, 5, 1, 6, 0, tzinfo=UTC), time(7, 30)) == datetime(
        2024, 5, 1, 7, 30, tzinfo=UTC
    )
    # Other time zones are read as the instant they are.
    from zoneinfo import ZoneInfo

    paris = datetime(2024, 5, 1, 23, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 21:30 UTC
    assert next_daily_run(paris, time(22, 0)) == datetime(2024, 5, 1, 22, 0, tzinfo=UTC)


async def test_daily_summary_loop(caplog: pytest.LogCaptureFixture) -> None:
    clock = [datetime(2024, 5, 1, 13, 0, tzinfo=UTC)]
    sleeps: list[float] = []
    windows: list[tuple[datetime, datetime]] = []
    sent: list[DailySummary] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 3:
            raise asyncio.CancelledError
        clock[0] += timedelta(seconds=seconds)

    async def provider(since: datetime, until: datetime) -> DailySummary:
        windows.append((since, until))
        if len(windows) == 2:
            raise RuntimeError("store unavailable")
        return DailySummary(since=since, until=until, bots=(BotDaySummary("b", 1, 1, 2.0),))

    with pytest.raises(asyncio.CancelledError):
        await run_daily_summaries(sent.append, provider, at=time(0, 0), now=lambda: clock[0], sleep=sleep)
    assert sleeps == [11 * 3600.0, 86400.0, 86400.0, 86400.0]
    assert [w[1].day for w in windows] == [2, 3, 4]
    assert all(until - since == timedelta(days=1) for since, until in windows)
    assert [s.until.day for s in sent] == [2, 4]
    assert "cannot build the daily summary" in caplog.text


async def test_the_daily_summary_task_stops_with_the_notifier(registry: SecretRegistry) -> None:
    config = NotificationsConfig.model_validate({"webhooks": [{"url": "http://127.0.0.1:9"}]})
    notifier = Notifier(config, secrets=registry)
    await notifier.start()
    task = notifier.start_daily_summary(lambda since, until: DailySummary(since=since, until=until, bots=()))
    await asyncio.sleep(0)
    await notifier.stop()
    assert task.cancelled()


async def test_a_notifier_can_be_restarted_after_a_stop_timeout(registry: SecretRegistry) -> None:
    with fake_webhook(None) as hook:
        hook.script = [503] * 3
        config = NotificationsConfig.model_validate(
            {"webhooks": [{"url": hook.url, "retry": {"attempts": 3, "backoff_seconds": 5}}]}
        )
        notifier = Notifier(config, secrets=registry)
        await notifier.start()
        notifier.notify(opened(1))
        assert await eventually(lambda: len(hook.attempts) == 1)
        await notifier.stop(timeout=0.05)  # cancels the worker in its backoff
        notifier.notify(opened(2))
        hook.script.clear()
        async with notifier:
            assert await notifier.flush()
    assert [b["bot"] for b in hook.received] == ["bot2"]
