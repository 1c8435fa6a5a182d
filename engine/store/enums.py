"""The closed vocabularies of the store. Stored as their lowercase values in plain VARCHAR columns (no
database enum type and no CHECK constraint), so adding a member later needs no schema migration."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE_ORDER_STATUSES",
    "FINAL_ORDER_STATUSES",
    "BotMode",
    "BotStatus",
    "EventCategory",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PositionSide",
    "PositionStatus",
]


class BotMode(StrEnum):
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


class BotStatus(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    ERROR = "error"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"


class OrderStatus(StrEnum):
    """An order's life: ``intent`` (saved, never handed to the exchange), ``sent`` (handed over, outcome
    unknown until acknowledged), ``open``, ``partially_filled``, then one final status."""

    INTENT = "intent"
    SENT = "sent"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"


ACTIVE_ORDER_STATUSES = frozenset(
    {OrderStatus.INTENT, OrderStatus.SENT, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED}
)
FINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FAILED}
)


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class EventCategory(StrEnum):
    TRADE = "trade"
    ORDER = "order"
    RISK = "risk"
    RELOAD = "reload"
    ERROR = "error"
    SYSTEM = "system"
    ALERT = "alert"  # a strategy's momentum alert (engine.runtime.momentum)
