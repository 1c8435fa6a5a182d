"""Plain input records for the repositories: what the engine knows, before it becomes a row.

Numbers given as ``float`` (what ccxt and the simulator produce) are converted with
:func:`~engine.store.types.to_decimal` wherever the column is exact, so ``0.1`` stays ``0.1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.store.enums import OrderSide, OrderType, PositionSide

__all__ = ["ClosedTrade", "FillReport", "OrderIntent", "PositionState", "trades_from_frame"]

Number = Decimal | int | float | str


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the engine has decided to place. ``client_order_id`` is generated when left empty."""

    bot_id: int
    pair: str
    side: OrderSide
    type: OrderType
    amount: Number
    price: Number | None = None
    stop_price: Number | None = None
    reason: str | None = None
    signal_time: datetime | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class FillReport:
    """An execution reported by the exchange. It names its order by our client id, the exchange's order
    id, or both; ``trade_id`` is the exchange's id of the execution (unique per order). Exchange order ids
    are unique per exchange only: when the fill has no client id, give ``bot_id`` to narrow the lookup."""

    trade_id: str
    amount: Number
    price: Number
    time: datetime
    fee: Number = 0
    fee_currency: str | None = None
    client_order_id: str | None = None
    exchange_order_id: str | None = None
    bot_id: int | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id and not self.exchange_order_id:
            raise ValueError("a fill must name its order: client_order_id or exchange_order_id")
        if not self.trade_id:
            raise ValueError("a fill needs the exchange's trade id")


@dataclass(frozen=True, slots=True)
class PositionState:
    """The current state of an open position, as the trading logic holds it."""

    pair: str
    side: PositionSide
    amount: Number
    entry_price: Number
    opened_at: datetime
    stop: Number | None = None
    take_profit: Number | None = None
    trailing: Mapping[str, Any] | None = field(default=None)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A finished round trip; the fields are the columns of the trading kernel's trade list."""

    pair: str
    side: PositionSide
    open_time: datetime
    close_time: datetime
    open_price: Number
    close_price: Number
    amount: Number
    profit_ratio: float
    profit_abs: Number
    fees: Number
    exit_reason: str


_TRADE_FIELDS = tuple(f.name for f in fields(ClosedTrade))


def trades_from_frame(frame: Any) -> list[ClosedTrade]:
    """Closed trades from a trade-list DataFrame (``engine.trading.state.TRADE_COLUMNS``: pair, side,
    open_time, close_time, open_price, close_price, amount, profit_ratio, profit_abs, fees, exit_reason)."""
    missing = [name for name in _TRADE_FIELDS if name not in frame.columns]
    if missing:
        raise ValueError(f"trade list lacks columns: {', '.join(missing)}")
    return list(_iter_frame(frame))


def _iter_frame(frame: Any) -> Iterable[ClosedTrade]:
    for row in frame[list(_TRADE_FIELDS)].itertuples(index=False, name=None):
        pair, side, open_time, close_time, open_price, close_price, amount, ratio, profit, fees, reason = row
        yield ClosedTrade(
            pair=str(pair),
            side=PositionSide(side),
            open_time=_as_datetime(open_time),
            close_time=_as_datetime(close_time),
            open_price=float(open_price),
            close_price=float(close_price),
            amount=float(amount),
            profit_ratio=float(ratio),
            profit_abs=float(profit),
            fees=float(fees),
            exit_reason=str(reason),
        )


def _as_datetime(value: Any) -> datetime:
    # pandas.Timestamp is a datetime subclass; to_pydatetime drops nanoseconds the database cannot keep.
    to_py = getattr(value, "to_pydatetime", None)
    result = to_py() if to_py is not None else value
    if not isinstance(result, datetime):
        raise TypeError(f"expected a timestamp, got {value!r}")
    return result
