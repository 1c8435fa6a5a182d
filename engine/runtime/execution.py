"""Orders of a testnet/live bot on its exchange: sizing to the market's rules, sending, and the fills
the kernel must follow.

A paper bot needs none of this: the kernel's own simulation fills its orders at the next open, as in
a backtest. In the exchange modes the orders the kernel decides on a close (and the exits it detects
inside a candle) are sent as market orders at once, after the candle's transaction has committed them
as ``sent`` (so a crash between the commit and the answer is found by :func:`reconcile` at the next
start); the real fills (average price, amount, fee) then replace the kernel's simulated ones.

    execution = ExchangeExecution(exchange, bot="eth", mode="testnet")
    await execution.start()                      # environment check, markets, authentication
    amount, refusal = execution.round_entry("ETH/USDT", 0.01234567, price=2000.0)
    result = await execution.send(planned)       # never raises an ExchangeError: see SendResult
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from engine.exchanges.base import (
    Exchange,
    ExchangeError,
    ExchangeOrder,
    ExchangeTrade,
    InsufficientFunds,
    InvalidOrder,
    MarketInfo,
    OperationalExchangeError,
    OrderRequest,
    RateLimited,
    TemporaryExchangeError,
)
from engine.observability import category_logger

__all__ = [
    "ExchangeExecution",
    "ExchangeStartError",
    "FillSummary",
    "PlannedOrder",
    "SendResult",
    "summarize_fills",
    "summarize_trades",
]

log = category_logger("orders")

ENTRY_ACTIONS = ("open_long", "open_short")


class ExchangeStartError(ValueError):
    """The bot's exchange could not be prepared (wrong environment, credentials, unreachable): the bot
    does not start; the others do."""


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """One market order to send for a bot: ``action`` is ``open_long``, ``open_short``, ``close`` (an exit
    decided on a close) or the reason of an exit the kernel found inside a candle (``stop_loss``, ...),
    in which case ``trade`` is the kernel's closed-trade number to reprice."""

    client_order_id: str
    pair: str
    side: str  # buy | sell
    amount: Decimal
    action: str
    trade: int = -1

    @property
    def entry(self) -> bool:
        return self.action in ENTRY_ACTIONS


@dataclass(frozen=True, slots=True)
class FillSummary:
    """What an order did, in the terms of the kernel: average price, base amount now held (or sold)
    and the fee in the quote currency."""

    price: float
    amount: float
    fee: float


@dataclass(frozen=True, slots=True)
class SendResult:
    planned: PlannedOrder
    order: ExchangeOrder | None = None  # the exchange's answer (None when it failed)
    error: ExchangeError | None = None

    @property
    def rejected(self) -> bool:
        """Refused by the exchange for good (the order does not exist there)."""
        return isinstance(self.error, InvalidOrder | InsufficientFunds)

    @property
    def unknown(self) -> bool:
        """The retries ran out: the order may or may not exist; it stays ``sent`` for a later look-up."""
        return isinstance(self.error, TemporaryExchangeError)


def summarize_fills(order: ExchangeOrder, market: MarketInfo | None) -> FillSummary | None:
    """The order's fills as one (price, amount, quote fee); None when nothing filled."""
    if order.trades:
        return summarize_trades(order.trades, order.side, market)
    if order.filled <= 0 or order.average_price is None:
        return None
    return FillSummary(float(order.average_price), float(order.filled), 0.0)


def summarize_trades(
    trades: Sequence[ExchangeTrade], side: str, market: MarketInfo | None
) -> FillSummary | None:
    """Fills of one order as (average price, amount, quote fee); None when there are none. A fee paid in
    the base asset (Binance spot buys) reduces the amount held and is valued at the fill price; a fee in
    a third asset (BNB) is not converted and counts as 0."""
    filled = sum((t.amount for t in trades), Decimal(0))
    if filled <= 0:
        return None
    price = sum((t.amount * t.price for t in trades), Decimal(0)) / filled
    symbol = trades[0].symbol
    base = market.base if market else symbol.split("/")[0]
    quote = market.quote if market else symbol.split("/")[-1].split(":")[0]
    fee = Decimal(0)
    held = filled
    for t in trades:
        if t.fee_asset == quote or not t.fee_asset:
            fee += t.fee
        elif t.fee_asset == base:
            fee += t.fee * t.price
            if side == "buy":
                held -= t.fee
    return FillSummary(float(price), float(held), float(fee))


class ExchangeExecution:
    """The exchange side of one testnet/live bot."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        bot: str,
        mode: str,
        retries: int = 2,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
    ) -> None:
        self.exchange = exchange
        self.bot = bot
        self.mode = mode
        self.retries = retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.markets: dict[str, MarketInfo] = {}

    @property
    def account(self) -> str:
        """``exchange:mode:key fingerprint`` (what the bots table shows; never the key itself)."""
        from engine.exchanges.ccxt_exchange import _fingerprint

        client = getattr(self.exchange, "client", None)
        key = getattr(client, "apiKey", None) if client is not None else None
        suffix = f":{_fingerprint(key)}" if key else ""
        return f"{self.exchange.name}:{self.mode}{suffix}"

    async def start(self) -> None:
        try:
            await self.exchange.start()
            self.markets = await self.exchange.markets()
        except ExchangeError as error:
            raise ExchangeStartError(f"{self.exchange.name} {self.mode}: {error}") from error

    async def close(self) -> None:
        await self.exchange.close()

    def round_entry(self, pair: str, amount: float, price: float) -> tuple[Decimal, str | None]:
        """``amount`` floored to the market's amount step; ``(0, reason)`` below its minimum notional
        or when it rounds to nothing."""
        market = self.markets.get(pair)
        if market is None:
            return Decimal(0), "unknown_market"
        value = Decimal(repr(float(amount)))
        if market.amount_step > 0:
            value = (value / market.amount_step).to_integral_value(ROUND_DOWN) * market.amount_step
        if value <= 0:
            return Decimal(0), "lot_size"
        if market.min_notional > 0 and value * Decimal(repr(float(price))) < market.min_notional:
            return Decimal(0), "min_notional"
        return value.normalize(), None

    def round_exit(self, pair: str, amount: float) -> Decimal:
        """A position's amount as the exchange takes it (floored to the step, so never more than held)."""
        market = self.markets.get(pair)
        value = Decimal(repr(float(amount)))
        if market is not None and market.amount_step > 0:
            value = (value / market.amount_step).to_integral_value(ROUND_DOWN) * market.amount_step
        return value.normalize()

    async def send(self, planned: PlannedOrder) -> SendResult:
        """Send one market order (already saved and committed as ``sent``) with bounded retries and the
        same client id every time. Exchange errors are returned, not raised."""
        request = OrderRequest(
            client_order_id=planned.client_order_id,
            symbol=planned.pair,
            side=planned.side,  # type: ignore[arg-type]
            type="market",
            amount=planned.amount,
            reduce_only=not planned.entry and ":" in planned.pair,
        )
        attempt = 0
        while True:
            try:
                order = await self.exchange.create_order(request)
            except TemporaryExchangeError as error:
                attempt += 1
                if attempt > self.retries:
                    log.warning(
                        "[%s] %s order %s: %s; left as sent for the next look-up",
                        self.mode,
                        self.bot,
                        planned.client_order_id,
                        error,
                    )
                    return SendResult(planned, error=error)
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                delay += random.uniform(0, delay / 2)
                if isinstance(error, RateLimited) and error.retry_after is not None:
                    delay = max(delay, error.retry_after)
                await asyncio.sleep(delay)
            except OperationalExchangeError as error:
                log.error("[%s] %s order %s refused: %s", self.mode, self.bot, planned.client_order_id, error)
                return SendResult(planned, error=error)
            else:
                log.info(
                    "[%s] %s order %s %s %s %s: %s",
                    self.mode,
                    self.bot,
                    planned.client_order_id,
                    planned.side,
                    planned.amount,
                    planned.pair,
                    order.state,
                )
                return SendResult(planned, order=order)

    async def look_up(self, pair: str, client_order_id: str) -> ExchangeOrder | None:
        """The order as the exchange has it now; None when it does not know it or cannot be reached."""
        try:
            return await self.exchange.fetch_order(pair, client_order_id)
        except ExchangeError as error:
            log.info("[%s] %s look-up of %s: %s", self.mode, self.bot, client_order_id, error)
            return None
