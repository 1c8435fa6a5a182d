"""The boundary between the engine and an exchange: one async protocol, several transports.

The paper exchange and the ccxt exchange (testnet/live) implement :class:`Exchange`. The runtime
never talks to ccxt directly. Errors are split like httpx's: :class:`TemporaryExchangeError` may be
retried (network, rate limit, maintenance); :class:`OperationalExchangeError` must not be (invalid
order, insufficient funds, authentication) and alerts a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

import pandas as pd

__all__ = [
    "AuthenticationFailed",
    "Balance",
    "Exchange",
    "ExchangeError",
    "ExchangeOrder",
    "ExchangeTrade",
    "InsufficientFunds",
    "InvalidOrder",
    "MarketInfo",
    "OperationalExchangeError",
    "OrderNotFound",
    "OrderRequest",
    "RateLimited",
    "TemporaryExchangeError",
    "WrongEnvironment",
]

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop_market"]
OrderState = Literal["open", "partially_filled", "filled", "cancelled", "rejected", "expired"]


class ExchangeError(Exception):
    """Base of every exchange error; messages never contain credentials."""


class TemporaryExchangeError(ExchangeError):
    """Network trouble, timeouts, 5xx, maintenance: retry with backoff."""


class RateLimited(TemporaryExchangeError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OperationalExchangeError(ExchangeError):
    """Retrying cannot help: stop this action and alert."""


class InvalidOrder(OperationalExchangeError):
    """Below min notional, bad precision, unknown symbol, market closed."""


class InsufficientFunds(OperationalExchangeError):
    pass


class AuthenticationFailed(OperationalExchangeError):
    pass


class WrongEnvironment(OperationalExchangeError):
    """A live key in a testnet profile or the reverse: refused before any order is sent."""


class OrderNotFound(OperationalExchangeError):
    pass


@dataclass(frozen=True, slots=True)
class MarketInfo:
    symbol: str
    base: str
    quote: str
    min_notional: Decimal = Decimal(0)
    amount_step: Decimal = Decimal(0)
    price_tick: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    used: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order the engine wants; ``client_order_id`` is set (and saved) before it is sent."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None = None  # limit price
    stop_price: Decimal | None = None
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class ExchangeTrade:
    """One fill as the exchange reports it (``trade_id`` is unique per order)."""

    trade_id: str
    client_order_id: str | None
    exchange_order_id: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    time: pd.Timestamp


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    exchange_order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    state: OrderState
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trades: tuple[ExchangeTrade, ...] = field(default=())


@runtime_checkable
class Exchange(Protocol):
    """What the runtime needs from an exchange. Every method is safe to call again after a failure."""

    name: str
    mode: Literal["paper", "testnet", "live"]

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def markets(self) -> dict[str, MarketInfo]: ...

    async def balances(self) -> dict[str, Balance]: ...

    async def create_order(self, request: OrderRequest) -> ExchangeOrder:
        """Place an order. On a timeout the implementation looks the order up by its client id before
        reporting failure, so a retry never places it twice."""
        ...

    async def fetch_order(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        """Raises OrderNotFound when the exchange does not know the client id."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> ExchangeOrder: ...

    async def open_orders(self, symbols: Sequence[str] | None = None) -> list[ExchangeOrder]: ...

    async def fetch_candles(
        self, symbol: str, timeframe: str, since: pd.Timestamp | None, limit: int = 1000
    ) -> pd.DataFrame:
        """Closed candles only (the still-open one is dropped), in the candle frame contract."""
        ...
