"""Notifications: Telegram, signed webhooks and e-mail, configured in YAML, delivered in the background.

    from engine.notify import Notifier, NotificationsConfig, TradeOpened

    notifier = Notifier(NotificationsConfig.model_validate(raw), resolve_secret=resolve_secret, mode="live")
    await notifier.start()
    notifier.notify(TradeOpened(bot="btc-ema", pair="BTC/USDT", side="long", price=64210.5, amount=0.01))
    await notifier.stop()

The configuration models and events load with pydantic only; the notifier (and httpx) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.notify.config import (
    EVENT_KINDS,
    EmailConfig,
    EventKind,
    NotificationsConfig,
    RateLimit,
    RetryPolicy,
    TelegramConfig,
    WebhookConfig,
)
from engine.notify.events import (
    BotDaySummary,
    DailySummary,
    ErrorEvent,
    Event,
    ModelAlert,
    MomentumAlert,
    ReloadResult,
    RiskHalt,
    TradeClosed,
    TradeOpened,
)

if TYPE_CHECKING:
    from engine.notify._base import DeliveryError
    from engine.notify._daily import next_daily_run
    from engine.notify._notifier import (
        ChannelStats,
        NotificationLogHandler,
        Notifier,
        NotifyConfigError,
        SecretResolver,
        environ_resolver,
    )
    from engine.notify._render import Rendered, render
    from engine.notify._webhook import sign as sign_webhook

__all__ = [
    "EVENT_KINDS",
    "BotDaySummary",
    "ChannelStats",
    "DailySummary",
    "DeliveryError",
    "EmailConfig",
    "ErrorEvent",
    "Event",
    "EventKind",
    "ModelAlert",
    "MomentumAlert",
    "NotificationLogHandler",
    "NotificationsConfig",
    "Notifier",
    "NotifyConfigError",
    "RateLimit",
    "ReloadResult",
    "Rendered",
    "RetryPolicy",
    "RiskHalt",
    "SecretResolver",
    "TelegramConfig",
    "TradeClosed",
    "TradeOpened",
    "WebhookConfig",
    "environ_resolver",
    "next_daily_run",
    "render",
    "sign_webhook",
]

_LAZY = {
    "DeliveryError": ("engine.notify._base", "DeliveryError"),
    "next_daily_run": ("engine.notify._daily", "next_daily_run"),
    "ChannelStats": ("engine.notify._notifier", "ChannelStats"),
    "NotificationLogHandler": ("engine.notify._notifier", "NotificationLogHandler"),
    "Notifier": ("engine.notify._notifier", "Notifier"),
    "NotifyConfigError": ("engine.notify._notifier", "NotifyConfigError"),
    "SecretResolver": ("engine.notify._notifier", "SecretResolver"),
    "environ_resolver": ("engine.notify._notifier", "environ_resolver"),
    "Rendered": ("engine.notify._render", "Rendered"),
    "render": ("engine.notify._render", "render"),
    "sign_webhook": ("engine.notify._webhook", "sign"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine.notify' has no attribute {name!r}")
