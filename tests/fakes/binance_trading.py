"""Signed account and order endpoints of the fake Binance (spot ``/api/v3``), for the exchange layer's tests.

    with FakeBinance([FakeMarket.spot("ETH/USDT", candles)]) as server:
        trading = FakeTrading.install(server, "key", "secret", {"USDT": "1000"})
        trading.slow_ack(1.0)        # the next order is accepted, then answered after 1 s (client timeout)
        trading.fill("ye...", "0.4") # fill part of an open order, as the matching engine would

Orders: MARKET fills at once at the last visible candle's close (unless
:meth:`FakeTrading.rest_market`); LIMIT fills at once when marketable (at
the limit price), else rests until :meth:`FakeTrading.fill`; STOP_LOSS_LIMIT rests. ``newClientOrderId``
is unique among open orders and recent ones: a second order with the same id is refused with -2010
"Duplicate order sent.", as Binance does. Balances move with fills (fee 0 unless ``fee_rate`` is set,
taken in the quote asset; :meth:`FakeTrading.pay_fees_in` takes it in another asset such as BNB, as
Binance's "pay fees with BNB" does, while that asset's balance covers it); buy orders lock quote, sell
orders lock base. Filters (LOT_SIZE step, NOTIONAL)
of the market are enforced with -1013. :meth:`FakeTrading.revoke` makes the key fail with -2015.
:meth:`FakeTrading.refuse` refuses the next orders of a side (insufficient balance, market closed...);
:meth:`FakeTrading.partial_market` fills only part of the next market orders of a side, then EXPIRED.
Every other fault (429 + Retry-After, 5xx, dropped connections, delays) comes from ``server.faults``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.binance_server import BinanceError, Request

if TYPE_CHECKING:
    from tests.fakes.binance_market import FakeMarket
    from tests.fakes.binance_server import FakeBinance

__all__ = ["FakeOrder", "FakeTrading"]


@dataclass
class FakeOrder:
    order_id: int
    client_order_id: str
    symbol: str  # Binance id, e.g. ETHUSDT
    side: str  # BUY | SELL
    type: str
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)
    trades: list[dict[str, Any]] = field(default_factory=list)


class FakeTrading:
    """One spot account on the fake server."""

    def __init__(self, server: FakeBinance, balances: dict[str, str | Decimal] | None = None) -> None:
        self.server = server
        self.free: dict[str, Decimal] = {k: Decimal(str(v)) for k, v in (balances or {}).items()}
        self.locked: dict[str, Decimal] = {}
        self.orders: dict[int, FakeOrder] = {}
        self.fee_rate = Decimal(0)
        self.fee_asset: str | None = None  # pay_fees_in
        self.fee_asset_price: Decimal | None = None
        self.revoked = False
        self._next_order = 1000
        self._next_trade = 5000
        self._slow_ack: list[list[float]] = []  # [seconds, accepted orders to answer at once first]
        self._placements = 0
        self.held = 0
        self._resting_markets = 0
        self._refusals: list[list[Any]] = []  # [side, times left, code, message]
        self._partial_markets: list[list[Any]] = []  # [side, times left, share filled]
        self._lock = threading.RLock()

    @classmethod
    def install(
        cls, server: FakeBinance, api_key: str, secret: str, balances: dict[str, str | Decimal] | None = None
    ) -> FakeTrading:
        trading = cls(server, balances)
        server.api_keys[api_key] = secret
        router = server.router
        router.add("GET", "/api/v3/account", trading._account, security="SIGNED", weight=20)
        router.add("POST", "/api/v3/order", trading._create, security="SIGNED")
        router.add("GET", "/api/v3/order", trading._query, security="SIGNED", weight=4)
        router.add("DELETE", "/api/v3/order", trading._cancel, security="SIGNED")
        router.add("GET", "/api/v3/openOrders", trading._open_orders, security="SIGNED", weight=6)
        router.add("GET", "/api/v3/myTrades", trading._my_trades, security="SIGNED", weight=20)
        info = router.find("GET", "/api/v3/exchangeInfo")
        if (
            info is not None
        ):  # real spot markets also list STOP_LOSS (a stop-market order); ccxt checks this list
            router.add("GET", info.path, _with_stop_loss(info.handler), weight=info.weight)
        return trading

    # ---- test controls ------------------------------------------------------------------

    def slow_ack(self, seconds: float, *, after: int = 0) -> None:
        """The next accepted order is answered only after ``seconds`` (it exists on the exchange already);
        ``after`` answers that many accepted orders at once first. :attr:`held` counts answers being
        held back right now (a test can act, or kill the client, while one is)."""
        self._slow_ack.append([seconds, after])

    def rest_market(self, count: int = 1) -> None:
        """The next ``count`` MARKET orders are accepted but rest ``NEW`` (answered so), as on an exchange
        that matches asynchronously, until :meth:`fill` executes them."""
        self._resting_markets += count

    def refuse(
        self,
        side: str,
        *,
        times: int = 1,
        code: int = -2010,
        msg: str = "Account has insufficient balance for requested action.",
    ) -> None:
        """Refuse the next ``times`` orders of ``side`` (BUY | SELL) with Binance error ``code`` and
        ``msg`` (default -2010, insufficient balance; -1013 with "Market is closed." for a halted
        market), before any other check: the order does not exist afterwards."""
        self._refusals.append([side.upper(), times, code, msg])

    def partial_market(self, side: str, share: str | Decimal, *, times: int = 1) -> None:
        """The next ``times`` MARKET orders of ``side`` fill only ``share`` of their quantity (floored to
        the market's step) and end ``EXPIRED``, as a market order that ran out of liquidity does."""
        self._partial_markets.append([side.upper(), times, Decimal(str(share))])

    def pay_fees_in(self, asset: str, price: str | Decimal | None = None) -> None:
        """Charge commissions in ``asset`` (BNB) instead of the quote asset: the quote fee converted at
        ``price`` (the asset's value in the quote currency) or, without one, at the last close of the
        fake's ASSET/QUOTE market. A fill whose fee the asset's free balance cannot cover pays in the
        quote asset, as on Binance."""
        self.fee_asset = asset
        self.fee_asset_price = Decimal(str(price)) if price is not None else None

    def revoke(self) -> None:
        self.revoked = True

    def by_client_id(self, client_order_id: str) -> FakeOrder | None:
        with self._lock:
            return next((o for o in self.orders.values() if o.client_order_id == client_order_id), None)

    @property
    def placements(self) -> int:
        """How many order placements reached the handler (whatever their outcome); counted on arrival,
        unlike the server's request log, which records a request once it is answered."""
        return self._placements

    def fill(
        self, client_order_id: str, amount: str | Decimal | None = None, price: str | Decimal | None = None
    ) -> None:
        """Execute (part of) an open order, as if the market had traded against it."""
        with self._lock:
            order = self.by_client_id(client_order_id)
            assert order is not None and order.status in ("NEW", "PARTIALLY_FILLED"), client_order_id
            qty = Decimal(str(amount)) if amount is not None else order.quantity - order.executed
            at = Decimal(str(price)) if price is not None else (order.price or self._last_price(order.symbol))
            self._execute(order, qty, at)

    def place(self, client_order_id: str, symbol: str, side: str, quantity: str, price: str) -> FakeOrder:
        """An open LIMIT order placed directly on the exchange (as a crashed engine would have left it)."""
        with self._lock:
            return self._new_order(
                {
                    "symbol": symbol,
                    "side": side,
                    "type": "LIMIT",
                    "quantity": quantity,
                    "price": price,
                    "newClientOrderId": client_order_id,
                }
            )

    # ---- handlers -----------------------------------------------------------------------

    def _check_key(self) -> None:
        if self.revoked:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")

    def _account(self, request: Request) -> dict[str, Any]:
        self._check_key()
        with self._lock:
            assets = sorted(set(self.free) | set(self.locked))
            return {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": False,
                "updateTime": self.server.clock(),
                "accountType": "SPOT",
                "balances": [
                    {
                        "asset": a,
                        "free": _s(self.free.get(a, Decimal(0))),
                        "locked": _s(self.locked.get(a, Decimal(0))),
                    }
                    for a in assets
                ],
                "permissions": ["SPOT"],
            }

    def _create(self, request: Request) -> dict[str, Any]:
        with self._lock:
            self._placements += 1
        self._check_key()
        with self._lock:
            order = self._new_order(request.params())
            answer = self._full(order)
            delay = 0.0
            if self._slow_ack and self._slow_ack[0][1] > 0:
                self._slow_ack[0][1] -= 1
            elif self._slow_ack:
                delay = self._slow_ack.pop(0)[0]
            self.held += 1 if delay else 0
        if delay:
            try:
                time.sleep(delay)
            finally:
                with self._lock:
                    self.held -= 1
        return answer

    def _new_order(self, params: dict[str, str]) -> FakeOrder:
        market = self._market(params.get("symbol", ""))
        client_id = params.get("newClientOrderId") or f"fake{self._next_order}"
        if self.by_client_id(client_id) is not None:
            raise BinanceError(400, -2010, "Duplicate order sent.")
        kind = params.get("type", "")
        if kind not in ("MARKET", "LIMIT", "STOP_LOSS", "STOP_LOSS_LIMIT"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        side = params.get("side", "")
        refusal = _take(self._refusals, side)
        if refusal is not None:
            raise BinanceError(400, refusal[2], refusal[3])
        quantity = Decimal(params.get("quantity", "0"))
        price = Decimal(params["price"]) if params.get("price") else None
        stop = Decimal(params["stopPrice"]) if params.get("stopPrice") else None
        step = Decimal(market.step_size)
        if quantity < Decimal(market.min_qty) or (step and quantity % step):
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        reference = price if price is not None else self._last_price(market.id)
        if quantity * reference < Decimal(market.min_notional):
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        lock_asset, lock_amount = (
            (market.quote, quantity * reference * (1 + self.fee_rate))
            if side == "BUY"
            else (market.base, quantity)
        )
        if self.free.get(lock_asset, Decimal(0)) < lock_amount:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        order = FakeOrder(
            self._next_order, client_id, market.id, side, kind, quantity, price, stop, self.server.clock()
        )
        self._next_order += 1
        self.free[lock_asset] = self.free.get(lock_asset, Decimal(0)) - lock_amount
        self.locked[lock_asset] = self.locked.get(lock_asset, Decimal(0)) + lock_amount
        order.locked = lock_amount
        self.orders[order.order_id] = order
        last = self._last_price(market.id)
        partial = _take(self._partial_markets, side) if kind == "MARKET" else None
        if kind == "MARKET" and self._resting_markets > 0:
            self._resting_markets -= 1
        elif partial is not None:
            part = quantity * partial[2]
            if step:
                part = (part / step).to_integral_value(ROUND_DOWN) * step
            if part > 0:
                self._execute(order, part, last)
            order.status = "EXPIRED"
            self._release(order)
        elif kind == "MARKET":
            self._execute(order, quantity, last)
        elif (
            kind == "LIMIT"
            and price is not None
            and ((side == "BUY" and price >= last) or (side == "SELL" and price <= last))
        ):
            self._execute(order, quantity, price)
        return order

    def _query(self, request: Request) -> dict[str, Any]:
        self._check_key()
        with self._lock:
            return self._plain(self._find(request.params()))

    def _cancel(self, request: Request) -> dict[str, Any]:
        self._check_key()
        with self._lock:
            order = self._find(request.params(), code=-2011, msg="Unknown order sent.")
            if order.status not in ("NEW", "PARTIALLY_FILLED"):
                raise BinanceError(400, -2011, "Unknown order sent.")
            order.status = "CANCELED"
            self._release(order)
            return self._plain(order)

    def _open_orders(self, request: Request) -> list[dict[str, Any]]:
        self._check_key()
        symbol = request.params().get("symbol")
        with self._lock:
            return [
                self._plain(o)
                for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and (symbol is None or o.symbol == symbol)
            ]

    def _my_trades(self, request: Request) -> list[dict[str, Any]]:
        self._check_key()
        params = request.params()
        with self._lock:
            trades = [t for o in self.orders.values() if o.symbol == params.get("symbol") for t in o.trades]
            if params.get("orderId"):
                trades = [t for t in trades if str(t["orderId"]) == params["orderId"]]
            return sorted(trades, key=lambda t: t["id"])

    # ---- internals ----------------------------------------------------------------------

    def _market(self, symbol_id: str) -> FakeMarket:
        market = self.server.market_data.markets.get((symbol_id, False))
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    def _last_price(self, symbol_id: str) -> Decimal:
        candles = self._market(symbol_id).candles
        visible = candles[candles.index.as_unit("ms").asi8 <= self.server.clock()]
        row = visible.iloc[-1] if len(visible) else candles.iloc[0]
        return Decimal(repr(float(row["close"])))

    def _find(
        self, params: dict[str, str], code: int = -2013, msg: str = "Order does not exist."
    ) -> FakeOrder:
        order = None
        if params.get("orderId"):
            order = self.orders.get(int(params["orderId"]))
        elif params.get("origClientOrderId"):
            order = self.by_client_id(params["origClientOrderId"])
        if order is None or order.symbol != params.get("symbol"):
            raise BinanceError(400, code, msg)
        return order

    def _execute(self, order: FakeOrder, qty: Decimal, price: Decimal) -> None:
        market = self._market(order.symbol)
        qty = min(qty, order.quantity - order.executed)
        value = qty * price
        fee_asset, commission = self._commission(market, value * self.fee_rate)
        fee = commission if fee_asset == market.quote else Decimal(0)
        if fee_asset != market.quote:
            self.free[fee_asset] -= commission
        if order.side == "BUY":
            spent = min(order.locked, value + fee)
            order.locked -= spent
            self.locked[market.quote] -= spent
            self.free[market.quote] = self.free.get(market.quote, Decimal(0)) - (value + fee - spent)
            self.free[market.base] = self.free.get(market.base, Decimal(0)) + qty
        else:
            order.locked -= qty
            self.locked[market.base] -= qty
            self.free[market.quote] = self.free.get(market.quote, Decimal(0)) + value - fee
        order.executed += qty
        order.quote += value
        order.trades.append(
            {
                "symbol": order.symbol,
                "id": self._next_trade,
                "orderId": order.order_id,
                "orderListId": -1,
                "price": _s(price),
                "qty": _s(qty),
                "quoteQty": _s(value),
                "commission": _s(commission),
                "commissionAsset": fee_asset,
                "time": self.server.clock(),
                "isBuyer": order.side == "BUY",
                "isMaker": order.type != "MARKET",
                "isBestMatch": True,
            }
        )
        self._next_trade += 1
        order.status = "FILLED" if order.executed >= order.quantity else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order)

    def _commission(self, market: FakeMarket, quote_fee: Decimal) -> tuple[str, Decimal]:
        """(asset, amount) of a fill's commission worth ``quote_fee`` in the quote asset."""
        asset = self.fee_asset
        if asset is None or asset == market.quote or not quote_fee:
            return market.quote, quote_fee
        rate = self.fee_asset_price
        if rate is None:
            rate = self._last_price(asset + market.quote)
        commission = (quote_fee / rate).quantize(Decimal("1e-8"))
        if self.free.get(asset, Decimal(0)) < commission:
            return market.quote, quote_fee
        return asset, commission

    def _release(self, order: FakeOrder) -> None:
        market = self._market(order.symbol)
        asset = market.quote if order.side == "BUY" else market.base
        self.locked[asset] -= order.locked
        self.free[asset] = self.free.get(asset, Decimal(0)) + order.locked
        order.locked = Decimal(0)

    def _plain(self, order: FakeOrder) -> dict[str, Any]:
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": _s(order.price or Decimal(0)),
            "origQty": _s(order.quantity),
            "executedQty": _s(order.executed),
            "cummulativeQuoteQty": _s(order.quote),
            "status": order.status,
            "timeInForce": "GTC",
            "type": order.type,
            "side": order.side,
            "stopPrice": _s(order.stop_price or Decimal(0)),
            "time": order.time_ms,
            "updateTime": self.server.clock(),
            "isWorking": True,
            "workingTime": order.time_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _full(self, order: FakeOrder) -> dict[str, Any]:
        answer = self._plain(order)
        answer["transactTime"] = order.time_ms
        answer["fills"] = [
            {
                "price": t["price"],
                "qty": t["qty"],
                "commission": t["commission"],
                "commissionAsset": t["commissionAsset"],
                "tradeId": t["id"],
            }
            for t in order.trades
        ]
        return answer


def _with_stop_loss(handler: Any) -> Any:
    def wrapped(request: Request) -> Any:
        answer = handler(request)
        for symbol in answer.get("symbols", []):
            if "STOP_LOSS" not in symbol.get("orderTypes", []):
                symbol["orderTypes"] = [*symbol["orderTypes"], "STOP_LOSS"]
        return answer

    return wrapped


def _take(queue: list[list[Any]], side: str) -> list[Any] | None:
    """The first entry of ``queue`` for ``side``, counted down (removed when used up)."""
    for entry in queue:
        if entry[0] == side:
            entry[1] -= 1
            if entry[1] <= 0:
                queue.remove(entry)
            return entry
    return None


def _s(value: Decimal) -> str:
    return f"{value:.8f}"
