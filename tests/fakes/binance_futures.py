"""Signed USD-M futures account endpoints of the fake Binance (``/fapi``): what a futures bot's start-up
needs, not futures trading (no ``/fapi/v1/order``: futures orders are not served by the fake).

    with FakeBinance([FakeMarket.futures("XRP/USDT:USDT", candles)]) as server:
        account = FakeFutures.install(server, "key", "secret", {"USDT": "1000"}, max_leverage={"XRPUSDT": 50})
        ...                                        # a futures bot starts
        account.margin_types["XRPUSDT"], account.leverages["XRPUSDT"]   # what it set

* ``GET /fapi/v3/account``: the wallet (ccxt's ``fetch_balance`` for futures), balances as given.
* ``POST /fapi/v1/marginType`` (``symbol``, ``marginType`` ISOLATED | CROSSED): -4046 "No need to change
  margin type." when it is already that, -4048 while a position is open (:attr:`FakeFutures.positions`).
* ``POST /fapi/v1/leverage`` (``symbol``, ``leverage``): -4028 "Leverage N is not valid" above the
  symbol's bracket maximum (``max_leverage``, default 125) or below 1.
* ``GET /fapi/v1/openOrders``: always empty.

A new symbol starts CROSSED at leverage 20, as on Binance. :attr:`FakeFutures.changes` lists every
accepted change in order, so a test can tell an idempotent restart (no change) from a second setting.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.binance_server import BinanceError, Request

if TYPE_CHECKING:
    from tests.fakes.binance_server import FakeBinance

__all__ = ["FakeFutures"]

DEFAULT_MARGIN = "CROSSED"
DEFAULT_LEVERAGE = 20


class FakeFutures:
    """One USD-M futures account on the fake server."""

    def __init__(
        self,
        server: FakeBinance,
        balances: dict[str, str | Decimal] | None = None,
        max_leverage: dict[str, int] | None = None,
    ) -> None:
        self.server = server
        self.balances = {k: Decimal(str(v)) for k, v in (balances or {}).items()}
        self.max_leverage = dict(max_leverage or {})
        self.margin_types: dict[str, str] = {}
        self.leverages: dict[str, int] = {}
        self.positions: set[str] = set()  # symbols with an open position (margin type locked)
        self.changes: list[tuple[str, str, Any]] = []  # (symbol, "marginType" | "leverage", value)
        self._lock = threading.Lock()

    @classmethod
    def install(
        cls,
        server: FakeBinance,
        api_key: str,
        secret: str,
        balances: dict[str, str | Decimal] | None = None,
        *,
        max_leverage: dict[str, int] | None = None,
    ) -> FakeFutures:
        account = cls(server, balances, max_leverage)
        server.api_keys[api_key] = secret
        router = server.router
        router.add("GET", "/fapi/v3/account", account._account, security="SIGNED", weight=5)
        router.add("POST", "/fapi/v1/marginType", account._margin_type, security="SIGNED")
        router.add("POST", "/fapi/v1/leverage", account._leverage, security="SIGNED")
        router.add("GET", "/fapi/v1/openOrders", lambda request: [], security="SIGNED")
        return account

    def margin_type(self, symbol_id: str) -> str:
        return self.margin_types.get(symbol_id, DEFAULT_MARGIN)

    def leverage(self, symbol_id: str) -> int:
        return self.leverages.get(symbol_id, DEFAULT_LEVERAGE)

    # ---- handlers -----------------------------------------------------------------------

    def _account(self, request: Request) -> dict[str, Any]:
        now = self.server.clock()
        assets = [
            {
                "asset": asset,
                "walletBalance": f"{amount:.8f}",
                "unrealizedProfit": "0.00000000",
                "marginBalance": f"{amount:.8f}",
                "maintMargin": "0.00000000",
                "initialMargin": "0.00000000",
                "positionInitialMargin": "0.00000000",
                "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": f"{amount:.8f}",
                "crossUnPnl": "0.00000000",
                "availableBalance": f"{amount:.8f}",
                "maxWithdrawAmount": f"{amount:.8f}",
                "updateTime": now,
            }
            for asset, amount in sorted(self.balances.items())
        ]
        total = sum(self.balances.values(), Decimal(0))
        return {
            "totalInitialMargin": "0.00000000",
            "totalMaintMargin": "0.00000000",
            "totalWalletBalance": f"{total:.8f}",
            "totalUnrealizedProfit": "0.00000000",
            "totalMarginBalance": f"{total:.8f}",
            "availableBalance": f"{total:.8f}",
            "maxWithdrawAmount": f"{total:.8f}",
            "assets": assets,
            "positions": [],
        }

    def _symbol(self, params: dict[str, str]) -> str:
        symbol = params.get("symbol", "").upper()
        if (symbol, True) not in self.server.market_data.markets:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return symbol

    def _margin_type(self, request: Request) -> dict[str, Any]:
        params = request.params()
        symbol = self._symbol(params)
        wanted = params.get("marginType", "").upper()
        if wanted not in ("ISOLATED", "CROSSED"):
            raise BinanceError(400, -1116, "Invalid marginType.")
        with self._lock:
            if self.margin_type(symbol) == wanted:
                raise BinanceError(400, -4046, "No need to change margin type.")
            if symbol in self.positions:
                raise BinanceError(400, -4048, "Margin type cannot be changed if there exists position.")
            self.margin_types[symbol] = wanted
            self.changes.append((symbol, "marginType", wanted))
        return {"code": 200, "msg": "success"}

    def _leverage(self, request: Request) -> dict[str, Any]:
        params = request.params()
        symbol = self._symbol(params)
        raw = params.get("leverage", "")
        try:
            value = int(raw)
        except ValueError:
            raise BinanceError(
                400,
                -1100,
                "Illegal characters found in parameter 'leverage'; legal range is '^[0-9]{1,20}$'.",
            ) from None
        if not 1 <= value <= self.max_leverage.get(symbol, 125):
            raise BinanceError(400, -4028, f"Leverage {value} is not valid")
        with self._lock:
            self.leverages[symbol] = value
            self.changes.append((symbol, "leverage", value))
        return {"leverage": value, "maxNotionalValue": "1000000", "symbol": symbol}
