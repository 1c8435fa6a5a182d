"""The price of a fee asset in a bot's quote currency, for fees an exchange charges in a third asset
(Binance's "pay fees with BNB"): a fill's fee of 0.0004 BNB on ETH/USDT is worth 0.0004 x BNB/USDT.

    rates = FeeRates(exchange.last_price, markets)
    await rates.rate("BNB", "USDT")     # 600.0, or None when no route to a price exists

Routes, first that answers: FEE/QUOTE, QUOTE/FEE inverted, then through a bridge currency (USDT, USDC,
BTC): FEE/BRIDGE x BRIDGE/QUOTE, each leg direct or inverted. Only symbols the exchange lists are asked
(a USD-M perpetual ``FEE/QUOTE:QUOTE`` stands in when the spot one is not loaded). Prices, a missing
one included, are kept ``ttl`` seconds so a round of orders asks once; instances given the same
``scope`` (one exchange environment: prices are public) share them and their requests in flight, so
25 bots on one account ask once too, even at the same moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from decimal import Decimal

from engine.observability import category_logger

__all__ = ["BRIDGES", "FeeRates"]

log = category_logger("orders", "fees")

BRIDGES = ("USDT", "USDC", "BTC")

PriceOf = Callable[[str], Awaitable[Decimal | None]]
_Prices = dict[str, tuple[float, float | None]]  # symbol -> (when asked, price or None)

_SHARED: dict[str, _Prices] = {}
_ASKING: dict[str, dict[str, asyncio.Future[float | None]]] = {}  # scope -> requests in flight


class FeeRates:
    """Cached prices of fee assets in quote currencies, asked from ``price`` (a symbol's last price;
    None or an exception when it has none) over the ``symbols`` the exchange lists; ``scope`` names
    the price cache to share (None: this instance's own)."""

    def __init__(
        self,
        price: PriceOf,
        symbols: Collection[str],
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        scope: str | None = None,
    ) -> None:
        self._price = price
        self._symbols = set(symbols)
        self.ttl = ttl
        self._clock = clock
        self._prices: _Prices = {} if scope is None else _SHARED.setdefault(scope, {})
        self._asking: dict[str, asyncio.Future[float | None]] = (
            {} if scope is None else _ASKING.setdefault(scope, {})
        )

    async def rate(self, asset: str, quote: str) -> float | None:
        """The value of one ``asset`` in ``quote``; None when no listed market gives one."""
        if asset == quote:
            return 1.0
        value = await self._leg(asset, quote)
        if value is None:
            for bridge in BRIDGES:
                if bridge in (asset, quote):
                    continue
                first = await self._leg(asset, bridge)
                second = await self._leg(bridge, quote) if first is not None else None
                if first is not None and second is not None:
                    value = first * second
                    break
        return value

    async def _leg(self, asset: str, quote: str) -> float | None:
        for symbol in (f"{asset}/{quote}", f"{asset}/{quote}:{quote}"):
            if symbol in self._symbols:
                price = await self._last(symbol)
                if price:
                    return price
        for symbol in (f"{quote}/{asset}", f"{quote}/{asset}:{asset}"):
            if symbol in self._symbols:
                price = await self._last(symbol)
                if price:
                    return 1.0 / price
        return None

    async def _last(self, symbol: str) -> float | None:
        now = self._clock()
        cached = self._prices.get(symbol)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        # Bots valuing their fills at the same moment share one request for a symbol: the first asks,
        # the others await its answer (the cache only helps once that answer is in).
        asking = self._asking.get(symbol)
        if asking is None or asking.get_loop() is not asyncio.get_running_loop():  # (a new engine's loop)
            asking = self._asking[symbol] = asyncio.ensure_future(self._ask(symbol, now))
            asking.add_done_callback(
                lambda done: self._asking.pop(symbol) if self._asking.get(symbol) is done else None
            )
        return await asyncio.shield(asking)

    async def _ask(self, symbol: str, now: float) -> float | None:
        try:
            raw = await self._price(symbol)
        except Exception as error:  # a price look-up must never block or fail a fill
            log.warning("price of %s for fee valuation: %s", symbol, error)
            raw = None
        value = float(raw) if raw is not None and raw > 0 else None
        self._prices[symbol] = (now, value)
        return value
