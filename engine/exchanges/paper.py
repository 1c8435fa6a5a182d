"""A simulated exchange fed with prices: the ``paper`` mode, and a stand-in for an exchange in tests.

Fill rules (the same as the backtester's, so paper and backtest agree):

* a market order fills at the next price fed after it was placed: the ``open`` of the next candle given to
  :meth:`PaperExchange.on_candle`, or the next :meth:`PaperExchange.set_price`, moved against the order by
  ``slippage`` (a fraction: 0.0005 = 5 bp);
* a limit order fills at its price when a later candle's range reaches it (at the open when the candle
  opens beyond it);
* a stop-market order triggers when a candle's range reaches its stop price and fills there (at the open on
  a gap), plus slippage. Within one candle, stop orders are handled before limit orders, so a stop-loss
  wins over a take-profit when both are touched (the pessimistic assumption);
* fees are a fraction of the fill's value (``maker_fees`` for limit orders, ``fees`` for the others),
  charged in the quote asset.

Buy orders reserve their quote (``used``) while open. Sell orders reserve nothing: a stop and a target
selling the same holding are both accepted, and whichever fills second finds the holding gone and expires
(one-cancels-the-other). Every fill checks the balance again.

With a ``session_factory`` the account's balances are kept in the store's ``balances`` table and every fill
is applied to the store's order (by client order id, idempotent) in the same transaction as the balance
change; :meth:`start` reloads balances and the open orders of this account, so a restarted paper
exchange continues where it was. Exchange order ids and trade ids are derived from the client order id,
so they are the same after a restart.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import pandas as pd

from engine.exchanges.base import (
    Balance,
    Exchange,
    ExchangeOrder,
    ExchangeTrade,
    InsufficientFunds,
    InvalidOrder,
    MarketInfo,
    OperationalExchangeError,
    OrderNotFound,
    OrderRequest,
)
from engine.store.types import MONEY_CONTEXT, to_decimal

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["PaperExchange"]

Number = Decimal | int | float | str
_ID_PREFIX = "paper-"


@dataclass(slots=True)
class _Book:
    """An order the paper exchange holds, with its fills so far."""

    order: ExchangeOrder
    reserved: Decimal = Decimal(0)  # quote held for an open buy
    placed_seq: int = 0  # the price tick at placement: market orders fill at the next one
    trades: list[ExchangeTrade] = field(default_factory=list)


class PaperExchange:
    """Simulated spot account ``account`` (the key of its rows in the balances table)."""

    mode: Literal["paper"] = "paper"

    def __init__(
        self,
        account: str,
        *,
        fees: Number = Decimal("0.001"),
        maker_fees: Number | None = None,
        slippage: Number = Decimal(0),
        balances: Mapping[str, Number] | None = None,
        markets: Mapping[str, MarketInfo] | Sequence[MarketInfo] = (),
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        name: str = "paper",
        market_data: Exchange | None = None,
    ) -> None:
        self.name = name
        self.account = account
        self.fee_rate = to_decimal(fees)  # taker: market and stop orders
        self.maker_fee_rate = self.fee_rate if maker_fees is None else to_decimal(maker_fees)  # limit orders
        self.slippage = to_decimal(slippage)
        if self.fee_rate < 0 or self.maker_fee_rate < 0 or self.slippage < 0:
            raise ValueError("fees and slippage must not be negative")
        items = markets.values() if isinstance(markets, Mapping) else markets
        self._markets: dict[str, MarketInfo] = {m.symbol: m for m in items}
        self._starting = {asset: to_decimal(v) for asset, v in (balances or {}).items()}
        self._free: dict[str, Decimal] = dict(self._starting)
        self._used: dict[str, Decimal] = {}
        self._factory = session_factory
        self._orders: dict[str, _Book] = {}  # client order id -> book entry (every order, also ended ones)
        self._prices: dict[str, Decimal] = {}
        self._seq: dict[str, int] = {}  # symbol -> number of prices fed
        self._times: dict[str, pd.Timestamp] = {}
        self._started = False
        self._market_data = market_data  # where fetch_candles reads (the real exchange's public data)

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Load the account from the store (first start: write the starting balances)."""
        if self._started:
            return
        self._started = True
        if self._factory is None:
            return
        from engine.store import get_balances, list_open_orders, set_balance

        async with self._factory() as session, session.begin():
            stored = await get_balances(session, self.account)
            if stored:
                # Reservations are recomputed from the restored orders below.
                self._free = {asset: free + used for asset, (free, used) in stored.items()}
                self._used = {}
            else:
                for asset, amount in self._starting.items():
                    await set_balance(session, self.account, asset, free=amount, used=0)
            for row in await list_open_orders(session):
                if row.exchange_order_id != self._exchange_id(row.client_order_id):
                    continue  # another account's order (or one never acknowledged by us)
                self._restore(row)

    def _restore(self, row: object) -> None:
        from engine.store.models import Order

        assert isinstance(row, Order)
        order = ExchangeOrder(
            exchange_order_id=row.exchange_order_id or "",
            client_order_id=row.client_order_id,
            symbol=row.pair,
            side=row.side.value,  # type: ignore[arg-type]
            type=row.type.value,  # type: ignore[arg-type]
            amount=row.amount,
            filled=row.filled,
            average_price=row.average_price,
            state="partially_filled" if row.filled > 0 else "open",
            price=row.price,
            stop_price=row.stop_price,
        )
        book = _Book(order, placed_seq=-1)
        if order.side == "buy":
            quote = self._market(order.symbol).quote
            book.reserved = min(
                self._reservation(order, order.amount - order.filled), self._free.get(quote, Decimal(0))
            )
            self._free[quote] = self._free.get(quote, Decimal(0)) - book.reserved
            self._used[quote] = self._used.get(quote, Decimal(0)) + book.reserved
        self._orders[row.client_order_id] = book

    async def close(self) -> None:
        self._started = False

    # ---- queries ------------------------------------------------------------------------

    async def markets(self) -> dict[str, MarketInfo]:
        return dict(self._markets)

    async def balances(self) -> dict[str, Balance]:
        assets = sorted(set(self._free) | set(self._used))
        return {a: Balance(a, self._free.get(a, Decimal(0)), self._used.get(a, Decimal(0))) for a in assets}

    def price(self, symbol: str) -> Decimal | None:
        return self._prices.get(symbol)

    async def fetch_order(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        book = self._orders.get(client_order_id)
        if book is None or book.order.symbol != symbol:
            raise OrderNotFound(f"paper account {self.account} has no order {client_order_id} on {symbol}")
        return replace(book.order, trades=tuple(book.trades))

    async def open_orders(self, symbols: Sequence[str] | None = None) -> list[ExchangeOrder]:
        wanted = set(symbols) if symbols is not None else None
        return [
            replace(b.order, trades=tuple(b.trades))
            for b in self._orders.values()
            if b.order.state in ("open", "partially_filled") and (wanted is None or b.order.symbol in wanted)
        ]

    async def fetch_candles(
        self, symbol: str, timeframe: str, since: pd.Timestamp | None, limit: int = 1000
    ) -> pd.DataFrame:
        if self._market_data is None:
            raise OperationalExchangeError(
                f"paper account {self.account} has no market data source: give market_data= or use the data feed"
            )
        return await self._market_data.fetch_candles(symbol, timeframe, since, limit)

    # ---- orders -------------------------------------------------------------------------

    async def create_order(self, request: OrderRequest) -> ExchangeOrder:
        existing = self._orders.get(request.client_order_id)
        if existing is not None:  # the same client id again: the order already placed, never a second one
            return replace(existing.order, trades=tuple(existing.trades))
        market = self._market(request.symbol)
        self._validate(request, market)
        order = ExchangeOrder(
            exchange_order_id=self._exchange_id(request.client_order_id),
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            amount=request.amount,
            filled=Decimal(0),
            average_price=None,
            state="open",
            price=request.price,
            stop_price=request.stop_price,
        )
        book = _Book(order, placed_seq=self._seq.get(request.symbol, 0))
        if request.side == "buy":
            need = self._reservation(order, order.amount)
            if need > self._free.get(market.quote, Decimal(0)):
                raise InsufficientFunds(
                    f"paper account {self.account}: buying {request.amount} {request.symbol} needs about "
                    f"{need} {market.quote}, {self._free.get(market.quote, Decimal(0))} free"
                )
            book.reserved = need
            await self._move_reservation(market.quote, need)
        elif request.amount > self._free.get(market.base, Decimal(0)):
            raise InsufficientFunds(
                f"paper account {self.account}: selling {request.amount} {market.base}, "
                f"{self._free.get(market.base, Decimal(0))} free"
            )
        self._orders[request.client_order_id] = book
        return replace(order)

    async def cancel_order(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        book = self._orders.get(client_order_id)
        if book is None or book.order.symbol != symbol:
            raise OrderNotFound(f"paper account {self.account} has no order {client_order_id} on {symbol}")
        if book.order.state in ("open", "partially_filled"):
            await self._end(book, "cancelled")
        return replace(book.order, trades=tuple(book.trades))

    # ---- prices -------------------------------------------------------------------------

    async def set_price(
        self, symbol: str, price: Number, time: pd.Timestamp | None = None
    ) -> list[ExchangeTrade]:
        """A price tick: pending market orders fill at it. Returns the fills it caused."""
        value = to_decimal(price)
        return await self._tick(symbol, value, value, value, time)

    async def on_candle(self, symbol: str, candle: Mapping[str, object] | pd.Series) -> list[ExchangeTrade]:
        """A closed candle (``open``, ``high``, ``low``, ``close``; ``date`` or the Series name is its time):
        market orders fill at its open, then stops and limits whose price its range reached."""
        get = candle.get
        time = get("date") if get("date") is not None else getattr(candle, "name", None)
        stamp = pd.Timestamp(time) if time is not None else None  # type: ignore[arg-type]
        open_, high, low, close = (to_decimal(float(get(k))) for k in ("open", "high", "low", "close"))  # type: ignore[arg-type]
        fills = await self._tick(symbol, open_, high, low, stamp)
        self._prices[symbol] = close
        return fills

    async def _tick(
        self, symbol: str, open_: Decimal, high: Decimal, low: Decimal, time: pd.Timestamp | None
    ) -> list[ExchangeTrade]:
        seq = self._seq.get(symbol, 0) + 1
        self._seq[symbol] = seq
        self._prices[symbol] = open_
        when = time if time is not None else pd.Timestamp.now(tz="UTC")
        self._times[symbol] = when
        active = [
            b
            for b in self._orders.values()
            if b.order.symbol == symbol
            and b.order.state in ("open", "partially_filled")
            and b.placed_seq < seq
        ]
        order_of = {"market": 0, "stop_market": 1, "limit": 2}
        fills: list[ExchangeTrade] = []
        for book in sorted(active, key=lambda b: order_of[b.order.type]):
            price = self._fill_price(book.order, open_, high, low)
            if price is not None:
                trade = await self._fill(book, price, when)
                if trade is not None:
                    fills.append(trade)
        return fills

    def _fill_price(
        self, order: ExchangeOrder, open_: Decimal, high: Decimal, low: Decimal
    ) -> Decimal | None:
        buy = order.side == "buy"
        with decimal.localcontext(MONEY_CONTEXT):
            slip = (1 + self.slippage) if buy else (1 - self.slippage)
            if order.type == "market":
                return open_ * slip
            if order.type == "stop_market":
                assert order.stop_price is not None
                stop = order.stop_price
                if buy and high >= stop:
                    return max(open_, stop) * slip
                if not buy and low <= stop:
                    return min(open_, stop) * slip
                return None
            assert order.price is not None
            limit = order.price
            if buy and low <= limit:
                return min(open_, limit)
            if not buy and high >= limit:
                return max(open_, limit)
            return None

    async def _fill(self, book: _Book, price: Decimal, when: pd.Timestamp) -> ExchangeTrade | None:
        order = book.order
        market = self._market(order.symbol)
        amount = order.amount - order.filled
        with decimal.localcontext(MONEY_CONTEXT):
            value = to_decimal(amount * price)
            fee = to_decimal(value * (self.maker_fee_rate if order.type == "limit" else self.fee_rate))
            free = dict(self._free)
            used = dict(self._used)
            if order.side == "buy":
                used[market.quote] = used.get(market.quote, Decimal(0)) - book.reserved
                free[market.quote] = free.get(market.quote, Decimal(0)) + book.reserved - value - fee
                free[market.base] = free.get(market.base, Decimal(0)) + amount
            else:
                free[market.base] = free.get(market.base, Decimal(0)) - amount
                free[market.quote] = free.get(market.quote, Decimal(0)) + value - fee
        if any(v < 0 for v in free.values()):
            await self._end(book, "expired")  # the money went elsewhere (the other half of a stop/target)
            return None
        trade = ExchangeTrade(
            trade_id=f"{order.exchange_order_id}-{len(book.trades) + 1}",
            client_order_id=order.client_order_id,
            exchange_order_id=order.exchange_order_id,
            symbol=order.symbol,
            side=order.side,
            amount=amount,
            price=to_decimal(price),
            fee=fee,
            fee_asset=market.quote,
            time=when,
        )
        book.trades.append(trade)
        book.reserved = Decimal(0)
        with decimal.localcontext(MONEY_CONTEXT):
            filled = order.filled + amount
            previous = (order.average_price or Decimal(0)) * order.filled
            average = to_decimal((previous + amount * trade.price) / filled)
        book.order = replace(order, filled=filled, average_price=average, state="filled")
        self._free = {k: v for k, v in free.items()}
        self._used = {k: v for k, v in used.items() if v}
        await self._persist(trade, [market.base, market.quote])
        return trade

    async def _end(self, book: _Book, state: Literal["cancelled", "expired"]) -> None:
        market = self._market(book.order.symbol)
        if book.reserved:
            self._used[market.quote] = self._used.get(market.quote, Decimal(0)) - book.reserved
            self._free[market.quote] = self._free.get(market.quote, Decimal(0)) + book.reserved
            if not self._used[market.quote]:
                del self._used[market.quote]
            book.reserved = Decimal(0)
        book.order = replace(book.order, state=state)
        await self._persist(None, [market.quote], closed=book.order)

    async def _move_reservation(self, asset: str, amount: Decimal) -> None:
        self._free[asset] = self._free.get(asset, Decimal(0)) - amount
        self._used[asset] = self._used.get(asset, Decimal(0)) + amount
        await self._persist(None, [asset])

    async def _persist(
        self, trade: ExchangeTrade | None, assets: Sequence[str], closed: ExchangeOrder | None = None
    ) -> None:
        """Balances, and the fill or the cancellation, in one transaction."""
        if self._factory is None:
            return
        from engine.store import FillReport, OrderStatus, apply_fill, mark_closed, set_balance

        async with self._factory() as session, session.begin():
            for asset in assets:
                await set_balance(
                    session,
                    self.account,
                    asset,
                    free=self._free.get(asset, Decimal(0)),
                    used=self._used.get(asset, Decimal(0)),
                )
            if trade is not None and await _known(session, trade.client_order_id):
                await apply_fill(
                    session,
                    FillReport(
                        trade.trade_id,
                        trade.amount,
                        trade.price,
                        trade.time.to_pydatetime(),
                        fee=trade.fee,
                        fee_currency=trade.fee_asset,
                        client_order_id=trade.client_order_id,
                        exchange_order_id=trade.exchange_order_id,
                    ),
                )
            if (
                closed is not None
                and closed.client_order_id
                and await _known(session, closed.client_order_id)
            ):
                status = OrderStatus.CANCELLED if closed.state == "cancelled" else OrderStatus.FAILED
                reason = None if closed.state == "cancelled" else "expired: balance no longer sufficient"
                await mark_closed(session, closed.client_order_id, status, error=reason)

    # ---- rules --------------------------------------------------------------------------

    def _market(self, symbol: str) -> MarketInfo:
        market = self._markets.get(symbol)
        if market is None:
            if "/" not in symbol:
                raise InvalidOrder(f"unknown symbol {symbol!r} (expected BASE/QUOTE)")
            base, quote = symbol.split("/", 1)
            market = MarketInfo(symbol, base, quote.split(":", 1)[0])
            self._markets[symbol] = market
        return market

    def _validate(self, request: OrderRequest, market: MarketInfo) -> None:
        if request.amount <= 0:
            raise InvalidOrder(f"order amount must be positive, got {request.amount}")
        if request.type == "limit" and (request.price is None or request.price <= 0):
            raise InvalidOrder("a limit order needs a positive price")
        if request.type == "stop_market" and (request.stop_price is None or request.stop_price <= 0):
            raise InvalidOrder("a stop_market order needs a positive stop price")
        if market.amount_step and request.amount % market.amount_step:
            raise InvalidOrder(f"amount {request.amount} is not a multiple of the step {market.amount_step}")
        for what, value in (("price", request.price), ("stop price", request.stop_price)):
            if value is not None and market.price_tick and value % market.price_tick:
                raise InvalidOrder(f"{what} {value} is not a multiple of the tick {market.price_tick}")
        reference = request.price or request.stop_price or self._prices.get(request.symbol)
        if reference is None:
            raise InvalidOrder(f"no price for {request.symbol} yet: feed a candle or a price first")
        if market.min_notional and request.amount * reference < market.min_notional:
            raise InvalidOrder(
                f"order value {request.amount * reference} {market.quote} is below the minimum "
                f"{market.min_notional}"
            )

    def _reservation(self, order: ExchangeOrder, amount: Decimal) -> Decimal:
        """Quote to hold for a buy: at its limit/stop price, or the last price plus slippage, plus fees."""
        reference = order.price or order.stop_price or self._prices.get(order.symbol) or Decimal(0)
        with decimal.localcontext(MONEY_CONTEXT):
            if order.type != "limit":
                reference = reference * (1 + self.slippage)
            return to_decimal(amount * reference * (1 + max(self.fee_rate, self.maker_fee_rate)))

    def _exchange_id(self, client_order_id: str) -> str:
        return f"{_ID_PREFIX}{client_order_id}"


async def _known(session: AsyncSession, client_order_id: str | None) -> bool:
    """Whether the store has this order (orders placed without the store, as in tests, are not)."""
    from engine.store import get_order

    return bool(client_order_id) and await get_order(session, client_order_id=client_order_id) is not None
