"""A pair's hourly candles on an exchange through ccxt (``fetch_ohlcv``; Binance ``/api/v3/klines``), as a
price series: the fallback of a chain such as ``[coingecko, cryptocompare, exchange]``.

* ``price``: the close of each hourly candle, stamped and known at the candle's close (a candle still
  open is never used);
* ``volume_24h``: the quote volume of the 24 candles ending there, as base volume x close summed per
  candle (candles carry no quote volume in ccxt's unified form); left out until 24 candles are known.

History: ``history_days`` (30 by default; 365 for a backfill) on the first fetch, then from the last
stored candle.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.feeds.namespace import series_for
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._ccxt import DEFAULT_EXCHANGE, CcxtClients, clients_for
from engine.feeds.sources.base import FetchRequest, SourceSetup

__all__ = ["BASE_URL", "CALLS_PER_MINUTE", "ExchangeSource", "build", "price_points"]

BASE_URL = None
CALLS_PER_MINUTE = 600
TIMEFRAME = "1h"
STEP_MS = 3_600_000
WINDOW = 24  # candles in volume_24h
PAGE = 1000
_MS = 1_000_000


def price_points(rows: Sequence[Sequence[object]], now_ms: int) -> list[tuple[int, float, float | None]]:
    """(close time ms, close, volume_24h or None) of each closed, well-formed candle, in time order."""
    candles: dict[int, tuple[float, float]] = {}
    for row in rows:
        try:
            opened, close, volume = int(row[0]), float(row[4]), float(row[5])  # type: ignore[arg-type]
        except (TypeError, ValueError, IndexError):
            continue
        if close > 0 and volume >= 0 and opened + STEP_MS <= now_ms and close != float("inf"):
            candles[opened] = (close, volume)
    out: list[tuple[int, float, float | None]] = []
    for opened in sorted(candles):
        close, _ = candles[opened]
        window = [candles.get(opened - i * STEP_MS) for i in range(WINDOW)]
        volume_24h = None if any(c is None for c in window) else sum(c * v for c, v in window)  # type: ignore[misc]
        out.append((opened + STEP_MS, close, volume_24h))
    return out


class ExchangeSource:
    kind = "exchange"

    def __init__(self, clients: CcxtClients, page: int = PAGE):
        self.clients = clients
        self.page = page

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        pair = str(model.pair)
        client = self.clients.get(model.exchange or DEFAULT_EXCHANGE, pair)
        now_ms = request.now_ns // _MS
        if request.since_ns is None:
            days = model.history_days or (365 if request.backfill else 30)
            emit_from = now_ms - days * 86_400_000
        else:
            emit_from = request.since_ns // _MS
        # The day before the first point to emit, so that its volume_24h is complete.
        cursor = emit_from - WINDOW * STEP_MS
        cursor -= cursor % STEP_MS
        rows: list[Sequence[object]] = []
        while cursor < now_ms:
            page = await self.clients.call(client, client.fetch_ohlcv(pair, TIMEFRAME, cursor, self.page))
            if not isinstance(page, list) or not page:
                break
            rows.extend(page)
            try:
                last = int(page[-1][0])
            except (TypeError, ValueError, IndexError):
                break
            if len(page) < self.page or last + STEP_MS <= cursor:
                break
            cursor = last + STEP_MS
        lag_ns = int(request.feed.lag_s * NS_PER_SECOND)
        out: list[Observation] = []
        for closed, price, volume in price_points(rows, now_ms):
            if closed < emit_from:
                continue
            event = closed * _MS
            values = {"price": price, "volume_24h": volume}
            for member, value in values.items():
                if value is not None and member in request.members:
                    series = series_for(request.feed, member, None)
                    out.append(Observation(series, event, event + lag_ns, float(value), self.kind))
        return out

    async def aclose(self) -> None:
        await self.clients.aclose()


def build(setup: SourceSetup) -> ExchangeSource:
    return ExchangeSource(clients_for(setup))
