"""Public market-data endpoints of the fake Binance: ping, time, exchangeInfo, klines and the 24-hour
ticker, for spot (``/api/v3``) and USD-M perpetual futures (``/fapi/v1``).

Each market holds base candles (normally 1m, frame contract) and serves any interval that is a multiple of
the base one, aggregated on request. The server clock decides what exists: candles opening after
``FakeBinance.clock()`` are not served yet, and the candle containing the current time is served while still
open (its close time lies in the future), exactly as Binance does. Holes in the base candles are served as
holes (an exchange outage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tests.fakes.binance_server import BinanceError, Request, Router

if TYPE_CHECKING:
    from tests.fakes.binance_server import FakeBinance

__all__ = ["FakeMarket", "MarketData", "walk_candles"]

INTERVALS_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
_WEEK_ORIGIN_MS = 4 * 86_400_000  # weekly klines open on Monday


def walk_candles(
    start: str,
    end: str,
    *,
    seed: int = 1,
    start_price: float = 0.05,
    freq: str = "1min",
    outages: tuple[tuple[str, str], ...] = (),
) -> pd.DataFrame:
    """Deterministic random-walk candles in [start, end); ``outages`` are [from, to) stretches left out."""
    index = pd.date_range(start, end, freq=freq, tz="UTC", inclusive="left", name="date").as_unit("ns")
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0, 0.001, len(index))))
    open_ = np.r_[start_price, close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, len(index))),
            "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, len(index))),
            "close": close,
            "volume": rng.uniform(1, 50, len(index)),
        },
        index=index,
    ).round(8)
    for first, stop in outages:
        frame = frame[
            (frame.index < pd.Timestamp(first, tz="UTC")) | (frame.index >= pd.Timestamp(stop, tz="UTC"))
        ]
    return frame


@dataclass
class FakeMarket:
    """One tradable symbol with its candles and the filters exchangeInfo reports."""

    symbol: str  # ccxt symbol: ETH/BTC, or XRP/USDT:USDT for a USD-M perpetual
    candles: pd.DataFrame
    tick_size: str = "0.00000100"
    step_size: str = "0.00100000"
    min_qty: str = "0.00100000"
    min_notional: str = "0.00010000"
    status: str = "TRADING"

    @classmethod
    def spot(cls, symbol: str, candles: pd.DataFrame, **filters: Any) -> FakeMarket:
        assert ":" not in symbol
        return cls(symbol, candles, **filters)

    @classmethod
    def futures(cls, symbol: str, candles: pd.DataFrame, **filters: Any) -> FakeMarket:
        assert ":" in symbol
        return cls(symbol, candles, **filters)

    @property
    def is_futures(self) -> bool:
        return ":" in self.symbol

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1].split(":")[0]

    @property
    def id(self) -> str:
        return self.base + self.quote


class MarketData:
    """Serves the markets' exchange information and klines; registers its routes on a router."""

    def __init__(self, server: FakeBinance, markets: Any):
        self.server = server
        self.markets: dict[tuple[str, bool], FakeMarket] = {}
        self._arrays: dict[tuple[str, bool], tuple[np.ndarray, np.ndarray, int]] = {}
        self._cache: dict[tuple[str, bool, str, int], tuple[np.ndarray, np.ndarray]] = {}
        for market in markets:
            self.add(market)

    def add(self, market: FakeMarket) -> None:
        key = (market.id, market.is_futures)
        self.markets[key] = market
        candles = market.candles
        opens = candles.index.as_unit("ms").asi8.astype(np.int64)
        base = int(np.min(np.diff(opens))) if len(opens) > 1 else 60_000
        values = candles[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
        self._arrays[key] = (opens, values, base)
        self._cache = {k: v for k, v in self._cache.items() if k[:2] != key}

    def register(self, router: Router) -> None:
        for prefix, futures in (("/api/v3", False), ("/fapi/v1", True)):
            router.add("GET", f"{prefix}/ping", lambda request: {})
            router.add("GET", f"{prefix}/time", lambda request: {"serverTime": self.server.clock()})
            router.add("GET", f"{prefix}/exchangeInfo", self._exchange_info_handler(futures), weight=20)
            router.add("GET", f"{prefix}/klines", self._klines_handler(futures), weight=2)
            router.add("GET", f"{prefix}/ticker/24hr", self._ticker_handler(futures), weight=2)

    # ---- exchangeInfo -------------------------------------------------------------------

    def _exchange_info_handler(self, futures: bool):
        def handler(request: Request) -> dict[str, Any]:
            wanted = _requested_symbols(request)
            symbols = []
            for (market_id, is_futures), market in sorted(self.markets.items()):
                if is_futures != futures or (wanted is not None and market_id not in wanted):
                    continue
                symbols.append(_futures_symbol(market) if futures else _spot_symbol(market))
            if wanted is not None and not symbols:
                raise BinanceError(400, -1121, "Invalid symbol.")
            return {
                "timezone": "UTC",
                "serverTime": self.server.clock(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    },
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            }

        return handler

    # ---- klines -------------------------------------------------------------------------

    def _klines_handler(self, futures: bool):
        max_limit = 1500 if futures else 1000

        def handler(request: Request) -> list[list[Any]]:
            params = request.query
            symbol = params.get("symbol")
            if not symbol:
                raise BinanceError(
                    400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
                )
            key = (symbol.upper(), futures)
            if key not in self.markets:
                raise BinanceError(400, -1121, "Invalid symbol.")
            interval = params.get("interval")
            if not interval:
                raise BinanceError(
                    400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
                )
            if interval not in INTERVALS_MS:
                raise BinanceError(400, -1120, "Invalid interval.")
            limit = _int_param(params, "limit", 500)
            if not 1 <= limit <= max_limit:
                raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
            start = _int_param(params, "startTime", None)
            end = _int_param(params, "endTime", None)
            if start is not None and end is not None and start > end:
                raise BinanceError(400, -1023, "Start time is greater than end time.")
            opens, values = self._series(key, interval)
            if start is not None:
                lo = int(np.searchsorted(opens, start, side="left"))
                hi = len(opens) if end is None else int(np.searchsorted(opens, end, side="right"))
                hi = min(hi, lo + limit)
            else:
                hi = len(opens) if end is None else int(np.searchsorted(opens, end, side="right"))
                lo = max(0, hi - limit)
            step = INTERVALS_MS[interval]
            return [_kline(int(opens[i]), values[i], step) for i in range(lo, hi)]

        return handler

    # ---- ticker -------------------------------------------------------------------------

    def _ticker_handler(self, futures: bool):
        def handler(request: Request) -> dict[str, Any]:
            symbol = request.query.get("symbol", "").upper()
            if not symbol:
                # Binance answers every symbol then; no test needs that (and it weighs 40/80).
                raise BinanceError(
                    400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
                )
            key = (symbol, futures)
            if key not in self.markets:
                raise BinanceError(400, -1121, "Invalid symbol.")
            opens, values, _ = self._arrays[key]
            now = self.server.clock()
            visible = int(np.searchsorted(opens, now, side="right"))
            if visible == 0:
                raise BinanceError(400, -1121, "Invalid symbol.")  # not listed yet
            opens, values = opens[:visible], values[:visible]
            day = values[opens >= now - 86_400_000]
            day = day if len(day) else values[-1:]
            last = float(values[-1, 3])
            first = float(day[0, 0])
            volume = float(day[:, 4].sum())
            return {
                "symbol": symbol,
                "priceChange": f"{last - first:.8f}",
                "priceChangePercent": f"{(last / first - 1) * 100 if first else 0:.3f}",
                "weightedAvgPrice": f"{last:.8f}",
                "lastPrice": f"{last:.8f}",
                "lastQty": "1.00000000",
                "openPrice": f"{first:.8f}",
                "highPrice": f"{float(day[:, 1].max()):.8f}",
                "lowPrice": f"{float(day[:, 2].min()):.8f}",
                "volume": f"{volume:.8f}",
                "quoteVolume": f"{volume * last:.8f}",
                "openTime": now - 86_400_000,
                "closeTime": now,
                "firstId": 1,
                "lastId": 2,
                "count": 2,
            }

        return handler

    def _series(self, key: tuple[str, bool], interval: str) -> tuple[np.ndarray, np.ndarray]:
        """Open times and OHLCV of ``interval`` candles visible at the server's current time."""
        opens, values, base = self._arrays[key]
        visible = int(np.searchsorted(opens, self.server.clock(), side="right"))
        cache_key = (*key, interval, visible)
        if cache_key in self._cache:
            return self._cache[cache_key]
        step = INTERVALS_MS[interval]
        if step < base or step % base:
            result = (np.empty(0, dtype=np.int64), np.empty((0, 5)))  # finer than the data: nothing to serve
        elif step == base:
            result = (opens[:visible], values[:visible])
        else:
            result = _aggregate(
                opens[:visible], values[:visible], step, _WEEK_ORIGIN_MS if interval == "1w" else 0
            )
        self._cache[cache_key] = result
        return result


def _aggregate(
    opens: np.ndarray, values: np.ndarray, step: int, origin: int
) -> tuple[np.ndarray, np.ndarray]:
    if len(opens) == 0:
        return opens, values
    buckets = (opens - origin) // step
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)] - 1
    out = np.column_stack(
        [
            values[starts, 0],
            np.maximum.reduceat(values[:, 1], starts),
            np.minimum.reduceat(values[:, 2], starts),
            values[ends, 3],
            np.add.reduceat(values[:, 4], starts),
        ]
    )
    return buckets[starts] * step + origin, out


def _kline(open_ms: int, row: np.ndarray, step: int) -> list[Any]:
    o, h, low, c, v = (float(x) for x in row)
    quote_volume = v * (o + c) / 2
    return [
        open_ms,
        f"{o:.8f}",
        f"{h:.8f}",
        f"{low:.8f}",
        f"{c:.8f}",
        f"{v:.8f}",
        open_ms + step - 1,
        f"{quote_volume:.8f}",
        max(1, int(v)),
        f"{v / 2:.8f}",
        f"{quote_volume / 2:.8f}",
        "0",
    ]


def _int_param(params: dict[str, str], name: str, default: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BinanceError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None


def _requested_symbols(request: Request) -> set[str] | None:
    if "symbol" in request.query:
        return {request.query["symbol"].upper()}
    if "symbols" in request.query:
        import json

        return {s.upper() for s in json.loads(request.query["symbols"])}
    return None


def _spot_symbol(market: FakeMarket) -> dict[str, Any]:
    return {
        "symbol": market.id,
        "status": market.status,
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": market.tick_size,
                "maxPrice": "1000.00000000",
                "tickSize": market.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": market.min_qty,
                "maxQty": "100000.00000000",
                "stepSize": market.step_size,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": market.min_notional,
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _futures_symbol(market: FakeMarket) -> dict[str, Any]:
    first = int(market.candles.index[0].value // 1_000_000) if len(market.candles) else 0
    return {
        "symbol": market.id,
        "pair": market.id,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": first,
        "status": market.status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": market.base,
        "quoteAsset": market.quote,
        "marginAsset": market.symbol.split(":")[1],
        "pricePrecision": 4,
        "quantityPrecision": 1,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": market.tick_size,
                "maxPrice": "1000",
                "tickSize": market.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": market.min_qty,
                "maxQty": "10000000",
                "stepSize": market.step_size,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": market.min_qty,
                "maxQty": "2000000",
                "stepSize": market.step_size,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": market.min_notional},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.1500",
                "multiplierDown": "0.8500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }
