"""Order book and public trades of the fake Binance: ``/api/v3/depth``, ``/api/v3/trades`` and
``/api/v3/aggTrades``, with Binance's weights (reported in ``x-mbx-used-weight(-1m)``), limits and error
shapes (-1121 invalid symbol, -1100 bad number, -1127 a window of an hour or more).

    server.book.set_book("ETH/BTC", bids=[("0.05", "2")], asks=[("0.0501", "1")])
    server.book.add_trade("ETH/BTC", time_ms, "0.05", "1.5", buyer_maker=True)   # the taker sold

Trades after the server clock are not served yet, like the klines.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tests.fakes.binance_server import BinanceError, Request, Response, Router

if TYPE_CHECKING:
    from tests.fakes.binance_server import FakeBinance

__all__ = ["BookData", "depth_weight"]


def depth_weight(limit: int) -> int:
    """Binance spot's depth weights by limit (1-100: 5, 101-500: 25, 501-1000: 50, 1001-5000: 250)."""
    for top, weight in ((100, 5), (500, 25), (1000, 50)):
        if limit <= top:
            return weight
    return 250


def _market_id(symbol: str) -> str:
    """ETH/BTC -> ETHBTC; a futures symbol (XRP/USDT:USDT) is kept apart: XRPUSDT:F."""
    base = symbol.split(":")[0].replace("/", "").upper()
    return f"{base}:F" if ":" in symbol else base


class BookData:
    def __init__(self, server: FakeBinance):
        self.server = server
        self._lock = threading.Lock()
        self.books: dict[str, dict[str, list[list[str]]]] = {}
        self.trades: dict[str, list[dict[str, Any]]] = {}
        self._next_id = 1000

    # ---- what the tests set ----------------------------------------------------------------

    def set_book(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        with self._lock:
            self.books[_market_id(symbol)] = {
                "bids": [[p, q] for p, q in bids],
                "asks": [[p, q] for p, q in asks],
            }

    def add_trade(self, symbol: str, time_ms: int, price: str, qty: str, *, buyer_maker: bool) -> int:
        """One aggregate trade; returns its id."""
        with self._lock:
            self._next_id += 1
            row = {
                "a": self._next_id,
                "p": price,
                "q": qty,
                "f": self._next_id * 10,
                "l": self._next_id * 10,
                "T": time_ms,
                "m": buyer_maker,
                "M": True,
            }
            self.trades.setdefault(_market_id(symbol), []).append(row)
            return self._next_id

    def add_raw_trade(self, symbol: str, row: dict[str, Any]) -> None:
        """A row served as given (malformed ones included)."""
        with self._lock:
            self.trades.setdefault(_market_id(symbol), []).append(row)

    # ---- routes -----------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        # USD-M futures answer like spot here (their weights differ; the spot ones are reported).
        for prefix in ("/api/v3", "/fapi/v1"):
            router.add("GET", f"{prefix}/depth", self._depth, weight=5)
            router.add("GET", f"{prefix}/trades", self._recent, weight=25)
            router.add("GET", f"{prefix}/aggTrades", self._agg, weight=4)

    def _symbol(self, request: Request) -> str:
        symbol = request.query.get("symbol", "").upper()
        if not symbol:
            raise BinanceError(
                400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        futures = request.path.startswith("/fapi/")
        if (symbol, futures) not in self.server.market_data.markets:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return f"{symbol}:F" if futures else symbol

    def _depth(self, request: Request) -> Response:
        symbol = self._symbol(request)
        limit = _int(request.query, "limit", 100)
        if not 1 <= limit <= 5000:
            raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        with self._lock:
            book = self.books.get(symbol, {"bids": [], "asks": []})
            payload = {
                "lastUpdateId": 1027024,
                "bids": [list(level) for level in book["bids"][:limit]],
                "asks": [list(level) for level in book["asks"][:limit]],
            }
        weight = str(depth_weight(limit))
        return Response(200, payload, {"x-mbx-used-weight": weight, "x-mbx-used-weight-1m": weight})

    def _visible(self, symbol: str) -> list[dict[str, Any]]:
        now = self.server.clock()
        with self._lock:
            rows = list(self.trades.get(symbol, []))
        return [r for r in rows if not isinstance(r.get("T"), int) or r["T"] <= now]

    def _recent(self, request: Request) -> list[dict[str, Any]]:
        symbol = self._symbol(request)
        limit = _int(request.query, "limit", 500)
        if not 1 <= limit <= 1000:
            raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        rows = self._visible(symbol)[-limit:]
        return [
            {
                "id": r.get("a"),
                "price": r.get("p"),
                "qty": r.get("q"),
                "quoteQty": f"{float(r['p']) * float(r['q']):.8f}" if _numbers(r) else None,
                "time": r.get("T"),
                "isBuyerMaker": r.get("m"),
                "isBestMatch": True,
            }
            for r in rows
        ]

    def _agg(self, request: Request) -> list[dict[str, Any]]:
        symbol = self._symbol(request)
        limit = _int(request.query, "limit", 500)
        if not 1 <= limit <= 1000:
            raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        start = _int(request.query, "startTime", None)
        end = _int(request.query, "endTime", None)
        from_id = _int(request.query, "fromId", None)
        if start is not None and end is not None and end - start >= 3_600_000:
            raise BinanceError(400, -1127, "More than 1 hours between startTime and endTime.")
        rows = self._visible(symbol)
        if from_id is not None:
            rows = [r for r in rows if isinstance(r.get("a"), int) and r["a"] >= from_id]
            return rows[:limit]
        if start is None and end is None:
            return rows[-limit:]
        if start is not None and end is None:
            end = start + 3_600_000 - 1
        if end is not None and start is None:
            start = end - 3_600_000 + 1
        assert start is not None and end is not None
        # Malformed rows (no integer time) are served wherever they sit: a client must cope.
        chosen = [r for r in rows if not isinstance(r.get("T"), int) or start <= r["T"] <= end]
        return chosen[:limit]


def _numbers(row: dict[str, Any]) -> bool:
    try:
        float(row["p"]), float(row["q"])
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _int(params: dict[str, str], name: str, default: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BinanceError(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None
