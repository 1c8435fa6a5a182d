"""What the engine can notify about: one frozen dataclass per event kind.

``mode`` may be left out: the notifier fills it from its own mode or the logging context.
Amounts are plain floats in quote currency (``pnl``) or base currency (``amount``); ratios are
fractions (``pnl_ratio=0.0123`` is +1.23 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from engine.notify.config import EventKind

__all__ = [
    "BotDaySummary",
    "DailySummary",
    "ErrorEvent",
    "Event",
    "ModelAlert",
    "MomentumAlert",
    "ReloadResult",
    "RiskHalt",
    "TradeClosed",
    "TradeOpened",
]


@dataclass(frozen=True, slots=True)
class TradeOpened:
    kind: ClassVar[EventKind] = "trade_opened"
    bot: str
    pair: str
    side: str
    price: float
    amount: float
    stop: float | None = None
    take_profit: float | None = None
    reason: str | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class TradeClosed:
    kind: ClassVar[EventKind] = "trade_closed"
    bot: str
    pair: str
    side: str
    entry_price: float
    exit_price: float
    amount: float
    pnl: float
    pnl_ratio: float | None = None
    reason: str | None = None
    duration: timedelta | None = None
    currency: str | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class RiskHalt:
    """Trading stopped by a risk rule; ``bot=None`` means every bot of the account."""

    kind: ClassVar[EventKind] = "risk_halt"
    reason: str
    bot: str | None = None
    until: datetime | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """The outcome of a configuration reload: bots changed, added, removed, or the errors that kept
    the old configuration running."""

    kind: ClassVar[EventKind] = "reload"
    ok: bool
    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    mode: str | None = None
    bot: None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    kind: ClassVar[EventKind] = "error"
    message: str
    bot: str | None = None
    where: str | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class BotDaySummary:
    bot: str
    trades: int
    wins: int
    pnl: float
    open_positions: int = 0
    equity: float | None = None


@dataclass(frozen=True, slots=True)
class DailySummary:
    kind: ClassVar[EventKind] = "daily_summary"
    since: datetime
    until: datetime
    bots: tuple[BotDaySummary, ...]
    currency: str = "USDT"
    mode: str | None = None
    bot: None = None


@dataclass(frozen=True, slots=True)
class MomentumAlert:
    """A strategy's alert held at a close: ``alert`` names it, ``why`` is its message, ``score`` the
    value of its score expression (None without one)."""

    kind: ClassVar[EventKind] = "momentum_alert"
    bot: str
    pair: str
    alert: str
    why: str
    score: float | None = None
    price: float | None = None
    time: datetime | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class ModelAlert:
    """A model needs a look: ``what`` is ``drift`` (a feature's distribution moved, PSI > 0.25),
    ``degraded`` (live accuracy below the model file's floor) or ``retrain_failed`` (the production
    model was kept); ``message`` says which and by how much."""

    kind: ClassVar[EventKind] = "model"
    model: str
    what: str
    message: str
    bot: None = None
    mode: str | None = None


Event = (
    TradeOpened
    | TradeClosed
    | RiskHalt
    | ReloadResult
    | ErrorEvent
    | DailySummary
    | MomentumAlert
    | ModelAlert
)
