"""Binance USD-M futures positioning statistics on the fake server: what the big traders and the crowd hold.

    with FakeBinance([FakeMarket.futures("XRP/USDT:USDT", candles)], now_ms=...) as server:
        stats = FakePositioning.install(server)          # rows for every futures market, 30 days back
        stats.rows[("XRPUSDT", "takerlongshortRatio")]   # what the server answers from

Public endpoints (no key), as documented by Binance:

* ``GET /futures/data/topLongShortPositionRatio``, ``/topLongShortAccountRatio``,
  ``/globalLongShortAccountRatio``: ``[{symbol, longShortRatio, longAccount, shortAccount, timestamp}]``;
* ``GET /futures/data/takerlongshortRatio``: ``[{buySellRatio, buyVol, sellVol, timestamp}]``;
* ``GET /futures/data/openInterestHist``: ``[{symbol, sumOpenInterest, sumOpenInterestValue, timestamp}]``;

  all with ``symbol``, ``period`` (5m ... 1d; else -1120 "Invalid interval."), ``limit`` (default 30, at
  most 500), ``startTime`` / ``endTime``; only the last 30 days are kept (older rows are gone, as on
  Binance), the newest rows when no time is given; numbers as strings;
* ``GET /fapi/v1/fundingRate``: ``[{symbol, fundingRate, fundingTime, markPrice}]`` every 8 hours,
  ``limit`` default 100, at most 1000, oldest first from ``startTime``.

An unknown symbol answers 400 -1121 "Invalid symbol.". Rows are a deterministic function of the symbol
and the time, so a test can recompute any value; :meth:`clear` empties a symbol's history (a market
just listed).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tests.fakes.binance_server import BinanceError, Request

if TYPE_CHECKING:
    from tests.fakes.binance_server import FakeBinance

__all__ = ["PERIODS", "FakePositioning", "ratio_at"]

PERIODS = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
           "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000, "1d": 86_400_000}  # fmt: skip
KEPT_MS = 30 * 86_400_000
FUNDING_MS = 8 * 3_600_000
RATIO_ENDPOINTS = ("topLongShortPositionRatio", "topLongShortAccountRatio", "globalLongShortAccountRatio")
ENDPOINTS = (*RATIO_ENDPOINTS, "takerlongshortRatio", "openInterestHist")
PHASES = {
    "topLongShortPositionRatio": 0.0,
    "topLongShortAccountRatio": 0.5,
    "globalLongShortAccountRatio": 3.5,
    "takerlongshortRatio": 1.0,
    "openInterestHist": 2.0,
}


def ratio_at(endpoint: str, time_ms: int) -> float:
    """The long/short (or buy/sell) ratio the fake reports at ``time_ms``: a slow wave per endpoint, so
    top traders and the crowd disagree part of the time (the crowd lags the top traders by half a wave)."""
    phase = PHASES[endpoint]
    return round(1.0 + 0.6 * math.sin(time_ms / 3_600_000 / 7.0 + phase), 4)


class FakePositioning:
    def __init__(self, server: FakeBinance) -> None:
        self.server = server
        self.cleared: set[str] = set()

    @classmethod
    def install(cls, server: FakeBinance) -> FakePositioning:
        stats = cls(server)
        for endpoint in ENDPOINTS:
            server.router.add("GET", f"/futures/data/{endpoint}", stats._handler(endpoint), weight=0)
        server.router.add("GET", "/fapi/v1/fundingRate", stats._funding, weight=1)
        return stats

    def clear(self, symbol_id: str) -> None:
        self.cleared.add(symbol_id)

    # ---- handlers -----------------------------------------------------------------------

    def _symbol(self, params: dict[str, str]) -> str:
        symbol = params.get("symbol", "").upper()
        if (symbol, True) not in self.server.market_data.markets:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return symbol

    def _handler(self, endpoint: str):  # type: ignore[no-untyped-def]
        def handle(request: Request) -> list[dict[str, Any]]:
            params = request.params()
            symbol = self._symbol(params)
            period = params.get("period", "")
            if period not in PERIODS:
                raise BinanceError(400, -1120, "Invalid interval.")
            step = PERIODS[period]
            limit = min(int(params.get("limit", 30)), 500)
            times = self._times(params, step, limit, KEPT_MS)
            if symbol in self.cleared:
                return []
            return [self._row(endpoint, symbol, t) for t in times]

        return handle

    def _times(self, params: dict[str, str], step: int, limit: int, kept: int) -> list[int]:
        now = self.server.clock()
        newest = (now // step) * step - step  # the last complete period
        oldest = ((now - kept) // step + 1) * step
        start = int(params["startTime"]) if "startTime" in params else None
        end = int(params["endTime"]) if "endTime" in params else None
        last = min(newest, end) if end is not None else newest
        if start is not None:
            first = max(oldest, -(-start // step) * step)
            times = list(range(first, last + 1, step))[:limit]
        else:
            times = list(range(max(oldest, last - (limit - 1) * step), last + 1, step))
        return times

    def _row(self, endpoint: str, symbol: str, t: int) -> dict[str, Any]:
        ratio = ratio_at(endpoint, t)
        if endpoint in RATIO_ENDPOINTS:
            long_share = ratio / (1 + ratio)
            return {
                "symbol": symbol,
                "longShortRatio": f"{ratio:.4f}",
                "longAccount": f"{long_share:.4f}",
                "shortAccount": f"{1 - long_share:.4f}",
                "timestamp": t,
            }
        if endpoint == "takerlongshortRatio":
            sell = 250.0
            return {
                "buySellRatio": f"{ratio:.4f}",
                "buyVol": f"{sell * ratio:.4f}",
                "sellVol": f"{sell:.4f}",
                "timestamp": t,
            }
        amount = 1_000_000 * ratio
        return {
            "symbol": symbol,
            "sumOpenInterest": f"{amount:.8f}",
            "sumOpenInterestValue": f"{amount * 0.5:.8f}",
            "timestamp": t,
        }

    def _funding(self, request: Request) -> list[dict[str, Any]]:
        params = request.params()
        symbol = self._symbol(params)
        limit = min(int(params.get("limit", 100)), 1000)
        if symbol in self.cleared:
            return []
        now = self.server.clock()
        last = (now // FUNDING_MS) * FUNDING_MS
        start = int(params.get("startTime", last - (limit - 1) * FUNDING_MS))
        first = -(-start // FUNDING_MS) * FUNDING_MS
        end = min(last, int(params["endTime"])) if "endTime" in params else last
        times = list(range(first, end + 1, FUNDING_MS))[:limit]
        return [
            {
                "symbol": symbol,
                "fundingTime": t,
                "fundingRate": f"{funding_at(t):.8f}",
                "markPrice": "0.50000000",
            }
            for t in times
        ]


def funding_at(time_ms: int) -> float:
    """The funding rate the fake reports for the funding at ``time_ms``."""
    return round(0.0001 * math.sin(time_ms / FUNDING_MS / 3.0), 8)
