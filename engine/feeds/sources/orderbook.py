"""Order-book snapshots of each followed pair through ccxt (``fetch_order_book``; Binance
``GET /api/v3/depth``, weight 5 up to 100 levels).

Per snapshot and pair (series ``NAME.member@exchange:PAIR``):

* ``imbalance``: (bid amount - ask amount) / (bid amount + ask amount) over the top ``depth`` levels
  of each side (base units), from -1 (only asks) to +1 (only bids);
* ``spread_pct``: (best ask - best bid) / mid x 100;
* ``bid_depth`` / ``ask_depth``: quote value (price x amount) resting within ``band`` % of the mid, on
  each side, over the levels fetched (max(100, depth));
* ``mid``: (best bid + best ask) / 2.

Order books have no public history: a snapshot is known when it is taken (``event_time`` is the
exchange's timestamp when it sends one, else the local clock; ``available_at`` is the local clock
at the answer), so these series exist only from the moment something records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.feeds.http import FeedError
from engine.feeds.namespace import series_for
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._ccxt import CcxtClients, clients_for, scopes_of, split_scope
from engine.feeds.sources.base import FetchRequest, SourceSetup
from engine.observability import category_logger, log_event

__all__ = ["BASE_URL", "CALLS_PER_MINUTE", "BookMetrics", "OrderBookSource", "book_metrics", "build"]

# ccxt knows each exchange's hosts; a base URL is only set to move them (mirror, tests).
BASE_URL = None
CALLS_PER_MINUTE = 600  # ccxt spaces the calls itself (enableRateLimit)
DEFAULT_DEPTH = 10
DEFAULT_BAND_PCT = 1.0
_MIN_LEVELS = 100

api_log = category_logger("api_calls")


@dataclass(frozen=True, slots=True)
class BookMetrics:
    imbalance: float
    spread_pct: float
    bid_depth: float
    ask_depth: float
    mid: float

    def as_dict(self) -> dict[str, float]:
        return {
            "imbalance": self.imbalance,
            "spread_pct": self.spread_pct,
            "bid_depth": self.bid_depth,
            "ask_depth": self.ask_depth,
            "mid": self.mid,
        }


def _levels(side: Sequence[Sequence[object]], descending: bool) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for level in side:
        try:
            price, amount = float(level[0]), float(level[1])  # type: ignore[arg-type]
        except (TypeError, ValueError, IndexError):
            continue  # a malformed level is skipped, never summed
        if price > 0 and amount > 0 and price == price and amount == amount:
            out.append((price, amount))
    return sorted(out, key=lambda lv: -lv[0] if descending else lv[0])


def book_metrics(
    bids: Sequence[Sequence[object]], asks: Sequence[Sequence[object]], depth: int, band_pct: float
) -> BookMetrics | None:
    """The metrics of one snapshot; None when a side is empty or the book is crossed."""
    bid_levels = _levels(bids, descending=True)
    ask_levels = _levels(asks, descending=False)
    if not bid_levels or not ask_levels:
        return None
    best_bid, best_ask = bid_levels[0][0], ask_levels[0][0]
    if best_bid >= best_ask:
        return None  # crossed or locked: a broken snapshot, not a market state
    mid = (best_bid + best_ask) / 2
    bid_amount = sum(a for _, a in bid_levels[:depth])
    ask_amount = sum(a for _, a in ask_levels[:depth])
    low, high = mid * (1 - band_pct / 100), mid * (1 + band_pct / 100)
    return BookMetrics(
        imbalance=(bid_amount - ask_amount) / (bid_amount + ask_amount),
        spread_pct=(best_ask - best_bid) / mid * 100,
        bid_depth=sum(p * a for p, a in bid_levels if p >= low),
        ask_depth=sum(p * a for p, a in ask_levels if p <= high),
        mid=mid,
    )


class OrderBookSource:
    kind = "orderbook"

    def __init__(self, clients: CcxtClients):
        self.clients = clients

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        depth = int(model.depth or DEFAULT_DEPTH)
        band = float(model.band or DEFAULT_BAND_PCT)
        scopes = scopes_of(request.scopes, model.pair, model.exchange)
        out: list[Observation] = []
        errors: list[FeedError] = []
        for scope in scopes:
            exchange_id, pair = split_scope(scope)
            # The feed's exchange: fetches from there whatever exchange the bot trades on.
            client = self.clients.get(model.exchange or exchange_id, pair)
            try:
                book = await self.clients.call(client, client.fetch_order_book(pair, max(_MIN_LEVELS, depth)))
            except FeedError as exc:
                errors.append(exc)
                log_event(api_log, "order book failed", feed=request.feed.name, scope=scope, error=str(exc))
                continue
            metrics = book_metrics(book.get("bids") or [], book.get("asks") or [], depth, band)
            if metrics is None:
                log_event(api_log, "order book unusable", feed=request.feed.name, scope=scope)
                continue
            now = request.now_ns
            stamp = book.get("timestamp")
            event = min(now, int(stamp) * 1_000_000) if isinstance(stamp, int | float) and stamp else now
            available = now + int(request.feed.lag_s * NS_PER_SECOND)
            for member, value in metrics.as_dict().items():
                if member in request.members:
                    series = series_for(request.feed, member, scope)
                    out.append(Observation(series, event, available, float(value), self.kind))
        if errors and len(errors) == len(scopes):
            raise errors[0]  # every pair failed: the source is down, not one market
        return out

    async def aclose(self) -> None:
        await self.clients.aclose()


def build(setup: SourceSetup) -> OrderBookSource:
    return OrderBookSource(clients_for(setup))
