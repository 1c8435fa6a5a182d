"""An open position as a trader reads it (pure): current price, unrealised P&L in the quote currency
and in percent, the stop and take-profit with their distance from the price, and its age.

The current price is the bot's last close of the pair (:class:`engine.web.prices.BotPrices`), the
price the engine marks the position to; the P&L is before the exit's fee. A trailing or profit-lock
stop that has moved past the initial stop is the stop shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.store.models import Position
from engine.web import formatting as fmt
from engine.web.prices import BotPrices

__all__ = ["POSITION_COLUMNS", "PositionLine", "position_cells", "position_line"]


@dataclass(frozen=True)
class PositionLine:
    id: int
    bot: str
    bot_id: int
    pair: str
    side: str
    amount: float
    entry: float
    currency: str
    current: float | None
    price_time: datetime | None
    pnl: float | None
    pnl_ratio: float | None
    stop: float | None
    stop_distance: float | None  # (stop - current) / current: -0.02 = 2 % below
    trailing: bool
    take_profit: float | None
    tp_distance: float | None
    opened_at: datetime
    tick: float | None = None
    step: float | None = None


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def position_line(position: Position, bot: str, prices: BotPrices | None) -> PositionLine:
    side = str(position.side)
    sign = -1.0 if side == "short" else 1.0
    amount, entry = float(position.amount), float(position.entry_price)
    current = prices.closes.get(position.pair) if prices else None
    stop = _number(position.stop)
    trailing = False
    moved = prices.trailing.get(position.pair) if prices else None
    if moved is not None and (stop is None or sign * (moved - stop) > 0):
        stop, trailing = moved, True
    take_profit = _number(position.take_profit)

    def distance(level: float | None) -> float | None:
        return None if level is None or not current else level / current - 1.0

    return PositionLine(
        id=position.id,
        bot=bot,
        bot_id=position.bot_id,
        pair=position.pair,
        side=side,
        amount=amount,
        entry=entry,
        currency=fmt.quote_currency(position.pair),
        current=current,
        price_time=prices.time if prices and current is not None else None,
        pnl=None if current is None else sign * (current - entry) * amount,
        pnl_ratio=None if current is None or not entry else sign * (current / entry - 1.0),
        stop=stop,
        stop_distance=distance(stop),
        trailing=trailing,
        take_profit=take_profit,
        tp_distance=distance(take_profit),
        opened_at=position.opened_at,
        tick=prices.ticks.get(position.pair) if prices else None,
        step=prices.steps.get(position.pair) if prices else None,
    )


# (field, label, shown on a phone): the table of the dashboard and of /positions.
POSITION_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("pair", "Pair", True),
    ("side", "Side", False),
    ("amount", "Amount", False),
    ("entry", "Entry", False),
    ("current", "Price", True),
    ("pnl", "Unrealised P&L", True),
    ("pnl_pct", "P&L %", True),
    ("stop", "Stop (distance)", False),
    ("take_profit", "Take profit (distance)", False),
    ("age", "Age", False),
    ("bot", "Bot", False),
)


def _level(level: float | None, distance: float | None, tick: float | None, note: str = "") -> str:
    if level is None:
        return fmt.DASH
    text = fmt.price(level, tick) + note
    return f"{text} ({fmt.percent(distance)})" if distance is not None else text


def position_cells(line: PositionLine, now: datetime | None) -> dict[str, Any]:
    """The table row: every figure formatted with its unit, and ``tone`` for the P&L colour."""
    return {
        "id": line.id,
        "pair": line.pair,
        "side": line.side,
        "amount": fmt.amount(line.amount, line.step),
        "entry": fmt.price(line.entry, line.tick),
        "current": fmt.price(line.current, line.tick),
        "pnl": fmt.money(line.pnl, line.currency, signed=True),
        "pnl_pct": fmt.percent(line.pnl_ratio),
        "tone": fmt.tone(line.pnl),
        "stop": _level(line.stop, line.stop_distance, line.tick, " trailing" if line.trailing else ""),
        "take_profit": _level(line.take_profit, line.tp_distance, line.tick),
        "age": fmt.age(line.opened_at, now),
        "bot": line.bot,
        "price_time": fmt.when(line.price_time),
    }
