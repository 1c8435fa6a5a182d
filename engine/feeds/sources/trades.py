"""Public trades of each followed pair through ccxt (``fetch_trades``; on Binance the aggregate trades,
``GET /api/v3/aggTrades``), summed per bucket (``bucket:``, 1m by default: the candle timeframe of the
strategies that read it).

Per complete bucket and pair (series ``NAME.member@exchange:PAIR``):

* ``taker_buy_volume`` / ``taker_sell_volume``: base amount bought / sold by takers (Binance's
  ``m: true`` means the buyer was the maker, so the taker sold; ccxt's ``side`` is the taker's);
* ``taker_buy_ratio``: buy / (buy + sell), left out for a bucket without volume;
* ``trade_count``: trades in the bucket (on Binance, aggregate trades: the fills of one taker order
  at one price count once);
* ``large_trades``: trades whose quote value (price x amount) is at least ``large_trade``.

A bucket is emitted once it is over and every trade of it has been fetched; ``event_time`` is its
start (like a candle's open time) and ``available_at`` its end plus ``lag``, 2 s unless the feed sets
one: the recorder fetches a bucket 2 s after it ends (the last trades get published), so a backtest
at a candle close sees exactly what a live bot had then, which is the bucket before. There is no
public history beyond what the exchange still serves: the source follows each pair from the moment
it is first asked (the last complete bucket), keeps a cursor so that each refresh fetches only the
new trades, and after a restart resumes from the last stored bucket (at most ``MAX_CATCHUP_S`` back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dsl.timeframes import parse_duration
from engine.feeds.http import FeedError
from engine.feeds.namespace import series_for
from engine.feeds.observations import Observation
from engine.feeds.sources._ccxt import CcxtClients, clients_for, scopes_of, split_scope
from engine.feeds.sources.base import FetchRequest, SourceSetup
from engine.observability import category_logger, log_event

__all__ = [
    "BASE_URL",
    "CALLS_PER_MINUTE",
    "BucketTotals",
    "Trade",
    "TradesSource",
    "aggregate_trades",
    "build",
    "parse_trade",
]

BASE_URL = None
CALLS_PER_MINUTE = 600
DEFAULT_BUCKET_S = 60
DEFAULT_LARGE_TRADE = 100_000.0  # quote units: meant for USD(T) pairs; set large_trade for others
MAX_CATCHUP_S = 24 * 3600
DEFAULT_LAG_S = 2.0  # the Recorder's settle time: when a live bot first has the bucket
PAGE = 1000  # Binance's aggTrades maximum
MAX_PAGES = 100  # per refresh; the cursor carries on at the next one
_WINDOW_MS = 3_600_000  # Binance refuses a startTime..endTime window of an hour or more
_MS = 1_000_000

api_log = category_logger("api_calls")


@dataclass(frozen=True, slots=True)
class Trade:
    time_ms: int
    taker_side: str  # "buy" | "sell"
    amount: float  # base units
    price: float
    id: str | None = None


def parse_trade(row: Mapping[str, Any]) -> Trade | None:
    """A ccxt trade structure as a Trade; None when a field is missing or malformed."""
    try:
        stamp = int(row["timestamp"])
        side = row["side"]
        amount, price = float(row["amount"]), float(row["price"])
    except (KeyError, TypeError, ValueError):
        return None
    if side not in ("buy", "sell") or not amount > 0 or not price > 0 or amount == float("inf"):
        return None
    return Trade(stamp, side, amount, price, None if row.get("id") is None else str(row["id"]))


@dataclass(slots=True)
class BucketTotals:
    buy: float = 0.0
    sell: float = 0.0
    count: int = 0
    large: int = 0

    def add(self, trade: Trade, large_trade: float) -> None:
        if trade.taker_side == "buy":
            self.buy += trade.amount
        else:
            self.sell += trade.amount
        self.count += 1
        if trade.amount * trade.price >= large_trade:
            self.large += 1

    def values(self) -> dict[str, float]:
        out = {
            "taker_buy_volume": self.buy,
            "taker_sell_volume": self.sell,
            "trade_count": float(self.count),
            "large_trades": float(self.large),
        }
        if self.buy + self.sell > 0:
            out["taker_buy_ratio"] = self.buy / (self.buy + self.sell)
        return out


def aggregate_trades(trades: Iterable[Trade], bucket_ms: int, large_trade: float) -> dict[int, BucketTotals]:
    """Totals per bucket start (ms) of the buckets that hold at least one trade."""
    out: dict[int, BucketTotals] = {}
    for trade in trades:
        start = trade.time_ms - trade.time_ms % bucket_ms
        out.setdefault(start, BucketTotals()).add(trade, large_trade)
    return out


@dataclass(slots=True)
class _Follow:
    """Where one pair's trades have been fetched to, and the totals of the buckets not emitted yet."""

    next_bucket: int  # ms: the first bucket not emitted
    cursor: int  # ms: trades before this are all fetched
    pending: dict[int, BucketTotals] = field(default_factory=dict)
    edge_ids: set[str] = field(default_factory=set)  # ids of fetched trades at the cursor's ms
    from_id: int | None = None  # Binance: the next aggregate-trade id after a full page


class TradesSource:
    kind = "trades"

    def __init__(self, clients: CcxtClients, *, page: int = PAGE, max_pages: int = MAX_PAGES):
        self.clients = clients
        self.page = page
        self.max_pages = max_pages
        self._follows: dict[tuple[str, str], _Follow] = {}

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        bucket_ms = int(parse_duration(model.bucket) if model.bucket else DEFAULT_BUCKET_S) * 1000
        large = float(model.large_trade or DEFAULT_LARGE_TRADE)
        scopes = scopes_of(request.scopes, model.pair, model.exchange)
        out: list[Observation] = []
        errors: list[FeedError] = []
        for scope in scopes:
            try:
                out.extend(await self._scope(request, scope, bucket_ms, large))
            except FeedError as exc:
                errors.append(exc)
                log_event(api_log, "trades failed", feed=request.feed.name, scope=scope, error=str(exc))
        if errors and len(errors) == len(scopes):
            raise errors[0]
        return out

    async def _scope(
        self, request: FetchRequest, scope: str, bucket_ms: int, large: float
    ) -> list[Observation]:
        now_ms = request.now_ns // _MS
        last_complete_end = now_ms - now_ms % bucket_ms
        key = (request.feed.name, scope)
        follow = self._follows.get(key)
        if follow is None:
            start = last_complete_end - bucket_ms
            if request.since_ns is not None:
                resume = request.since_ns // _MS + bucket_ms
                start = max(resume - resume % bucket_ms, last_complete_end - MAX_CATCHUP_S * 1000)
            follow = self._follows[key] = _Follow(start, start)
        exchange_id, pair = split_scope(scope)
        client = self.clients.get(request.feed.model.exchange or exchange_id, pair)
        # Trades of the last second may still be arriving: fetch up to a second ago.
        target = now_ms - 1000
        # On a failure the cursor stays where the last good page left it: the next refresh resumes
        # there and emits the buckets then, so nothing fetched is lost and nothing is half-counted.
        await self._fetch_until(client, pair, follow, target, bucket_ms, large)
        return self._emit(request, scope, follow, bucket_ms)

    async def _fetch_until(
        self, client: Any, pair: str, follow: _Follow, target: int, bucket_ms: int, large: float
    ) -> None:
        binance = str(getattr(client, "id", "")).startswith("binance")
        pages = 0
        while follow.cursor <= target and pages < self.max_pages:
            until = min(target, follow.cursor + _WINDOW_MS - 1)
            cursor = follow.cursor
            if follow.from_id is not None:
                # Binance pages by aggregate-trade id after a full page: exact, whatever the times.
                pending = client.fetch_trades(pair, None, self.page, {"fromId": follow.from_id})
            else:
                pending = client.fetch_trades(pair, cursor, self.page, {"until": until} if binance else {})
            rows = await self.clients.call(client, pending)
            pages += 1
            rows = rows if isinstance(rows, list) else []
            trades = [t for t in map(parse_trade, rows) if t is not None]
            if len(trades) < len(rows):
                log_event(
                    api_log, "malformed trades skipped", service=self.kind, count=len(rows) - len(trades)
                )
            fresh = [
                t
                for t in trades
                if cursor <= t.time_ms <= until and not (t.time_ms == cursor and t.id in follow.edge_ids)
            ]
            for trade in fresh:
                start = trade.time_ms - trade.time_ms % bucket_ms
                if start >= follow.next_bucket:
                    follow.pending.setdefault(start, BucketTotals()).add(trade, large)
            beyond = any(t.time_ms > until for t in trades)
            if len(rows) >= self.page and not beyond and fresh:
                # A full page: more trades may share the last trade's millisecond. Continue after the
                # last id (Binance) or from that millisecond, skipping the ids already counted.
                last = max(t.time_ms for t in fresh)
                at_last = {t.id for t in fresh if t.time_ms == last and t.id is not None}
                follow.edge_ids = follow.edge_ids | at_last if last == cursor else at_last
                follow.cursor = last
                ids = [t.id for t in fresh]
                if binance and all(i is not None and i.isdigit() for i in ids):
                    follow.from_id = max(int(i) for i in ids if i is not None) + 1
            elif len(rows) >= self.page and not beyond:
                # A full page of one millisecond, all counted already (an exchange paged by time
                # only): more than a page of trades in one ms. Move on (logged) rather than loop.
                log_event(
                    api_log, "trades of one millisecond skipped", service=self.kind, pair=pair, at=cursor
                )
                follow.edge_ids, follow.from_id = set(), None
                follow.cursor = cursor + 1
            else:
                follow.edge_ids, follow.from_id = set(), None
                follow.cursor = until + 1

    def _emit(self, request: FetchRequest, scope: str, follow: _Follow, bucket_ms: int) -> list[Observation]:
        out: list[Observation] = []
        lag_s = request.feed.lag_s if request.feed.model.lag else DEFAULT_LAG_S
        lag_ns = int(lag_s * 1_000_000_000)
        while follow.next_bucket + bucket_ms <= follow.cursor:
            start = follow.next_bucket
            totals = follow.pending.pop(start, BucketTotals())
            event = start * _MS
            available = (start + bucket_ms) * _MS + lag_ns
            for member, value in totals.values().items():
                if member in request.members:
                    out.append(
                        Observation(
                            series_for(request.feed, member, scope), event, available, value, self.kind
                        )
                    )
            follow.next_bucket += bucket_ms
        return out

    async def aclose(self) -> None:
        await self.clients.aclose()


def build(setup: SourceSetup) -> TradesSource:
    return TradesSource(clients_for(setup))
