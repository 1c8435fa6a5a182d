"""Momentum alerts of a live bot: the strategy's ``alerts:`` that hold at a close, rate limited.

The signals carry every alert whose condition holds on the candle (``Signals.alerts``); a bot keeps,
per pair and alert, the candle of the last one it sent and lets a new one through only ``every``
candles later, the rule ``engine.strategy.signals.rate_limited`` applies to a backtest's history.
What passes becomes an :class:`AlertFired` among the candle's events, stored as an ``alert`` event
in the candle's own transaction; ``engine.runtime.alerts`` turns the stored row into a notification.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["AlertFired", "AlertLimiter"]


class AlertFired(NamedTuple):
    pair: str
    name: str
    score: float  # NaN when the alert has no score expression
    message: str  # why, from the strategy
    price: float  # the close that raised it
    time_ns: int  # the candle's open time


class AlertLimiter:
    """Per (pair, alert): the candle number of the last alert sent."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], int] = {}

    @classmethod
    async def restored(cls, session: Any, bot_id: int, step_ns: int, limit: int = 1000) -> AlertLimiter:
        """The limiter as the bot's stored alerts leave it (a restart, or a failed candle rolled back),
        so a restart does not send again inside the rate limit."""
        import pandas as pd

        from engine.store import EventCategory, list_events

        limiter = cls()
        for event in await list_events(session, bot_id=bot_id, category=EventCategory.ALERT, limit=limit):
            data = event.data or {}
            stamp = pd.Timestamp(event.time)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
            key = (str(data.get("pair", "")), str(data.get("alert", "")))
            limiter.last[key] = max(limiter.last.get(key, -(2**62)), int(stamp.value) // step_ns)
        return limiter

    def take(
        self, strategy: Any, time_ns: int, step_ns: int, decided: Mapping[str, tuple[Any, Any]]
    ) -> list[AlertFired]:
        """The alerts to send for the candles in ``decided`` (pair -> (candle, signals))."""
        specs = strategy.model.alerts
        index = time_ns // step_ns
        fired: list[AlertFired] = []
        for pair, (candle, signals) in decided.items():
            for name, score in signals.alerts:
                spec = specs.get(name)
                if spec is None:
                    continue  # judged by rules a reload has replaced since
                last = self.last.get((pair, name))
                if last is not None and index - last < spec.every:
                    continue
                self.last[(pair, name)] = index
                fired.append(AlertFired(pair, name, score, spec.message, float(candle.close), time_ns))
        return fired


def alert_data(alert: AlertFired, mode: str, every: int | None) -> dict[str, Any]:
    """The stored event's data (what the notification shows)."""
    return {
        "pair": alert.pair,
        "alert": alert.name,
        "score": None if math.isnan(alert.score) else alert.score,
        "why": alert.message,
        "price": alert.price,
        "every": every,
        "mode": mode,
    }
