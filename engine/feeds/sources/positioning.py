"""What the big traders and the crowd hold on Binance USD-M futures, per followed pair, through ccxt.

Members (series ``NAME.member@exchange:PAIR``), one value per ``bucket`` (the statistics' period, 5m by
default: 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h or 1d):

* ``top_position_ratio``: top traders' long/short *position* ratio (``/futures/data/topLongShortPositionRatio``);
* ``top_account_ratio``: top traders' long/short *account* ratio (``/futures/data/topLongShortAccountRatio``);
* ``global_account_ratio``: all accounts' long/short ratio (ccxt ``fetch_long_short_ratio_history``,
  ``/futures/data/globalLongShortAccountRatio``);
* ``taker_buy_sell_ratio``: taker buy volume / taker sell volume (``/futures/data/takerlongshortRatio``);
* ``open_interest`` / ``open_interest_value``: open interest in contracts and in quote (ccxt
  ``fetch_open_interest_history``, ``/futures/data/openInterestHist``);

The kind ``funding`` (member ``rate``) is the rate of each funding, every 8 hours (ccxt
``fetch_funding_rate_history``, ``/fapi/v1/fundingRate``): a kind of its own because it changes 96
times less often, so its staleness limit and its "nothing new yet" differ.

A spot pair (``BTC/USDT``) reads its linear perpetual (``BTC/USDT:USDT``); the series stay keyed on the
pair the bot trades, so its rules read them. Binance keeps about 30 days of these statistics: the
first fetch takes ``history_days`` (30 at most is useful), later ones continue from the last stored
row, so a project that follows a pair records its history going forward.

Point in time: a statistic stamped ``t`` covers the period from ``t``; it is taken as known at the end
of that period (``t + bucket``, or the moment it was fetched if earlier) plus ``lag``. A funding rate
is known at its funding time plus ``lag``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dsl.timeframes import parse_duration
from engine.feeds.http import BadResponse, FeedError
from engine.feeds.namespace import series_for
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._ccxt import CcxtClients, clients_for, scopes_of, split_scope
from engine.feeds.sources.base import FetchRequest, SourceSetup
from engine.observability import category_logger, log_event

__all__ = ["BASE_URL", "CALLS_PER_MINUTE", "MEMBERS", "PositioningSource", "build", "futures_symbol"]

BASE_URL = None
CALLS_PER_MINUTE = 600
PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
DEFAULT_PERIOD = "5m"
KEPT_DAYS = 30  # Binance serves about 30 days of /futures/data statistics
PAGE = 500  # Binance's maximum for /futures/data
FUNDING_PAGE = 1000
MAX_PAGES = 30
_MS = 1_000_000

# kind -> member -> (group fetched once per refresh, field of the raw row)
MEMBERS: dict[str, dict[str, tuple[str, str]]] = {
    "positioning": {
        "top_position_ratio": ("topLongShortPositionRatio", "longShortRatio"),
        "top_account_ratio": ("topLongShortAccountRatio", "longShortRatio"),
        "global_account_ratio": ("globalLongShortAccountRatio", "longShortRatio"),
        "taker_buy_sell_ratio": ("takerlongshortRatio", "buySellRatio"),
        "open_interest": ("openInterestHist", "openInterestAmount"),
        "open_interest_value": ("openInterestHist", "openInterestValue"),
    },
    "funding": {"rate": ("fundingRate", "fundingRate")},
}
_IMPLICIT = {
    "topLongShortPositionRatio": "fapiDataGetTopLongShortPositionRatio",
    "topLongShortAccountRatio": "fapiDataGetTopLongShortAccountRatio",
    "takerlongshortRatio": "fapiDataGetTakerlongshortRatio",
}

api_log = category_logger("api_calls")

Page = Callable[[int], Awaitable[list[tuple[int, dict[str, Any]]]]]


def futures_symbol(pair: str) -> str:
    """The linear perpetual a pair's positioning is read from: ``BTC/USDT`` -> ``BTC/USDT:USDT``."""
    if ":" in pair:
        return pair
    return f"{pair}:{pair.split('/')[-1]}"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _stamp(row: dict[str, Any], *names: str) -> int:
    for name in names:
        value = row.get(name)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                break
    raise BadResponse("positioning", f"a row without a usable {'/'.join(names)}: {str(row)[:120]}")


async def _pages(page: Page, since_ms: int, now_ms: int, step_ms: int, size: int) -> list[tuple[int, dict]]:
    """Every row from ``since_ms`` on, page by page (a page may come back short when the exchange no
    longer keeps its start; the cursor then jumps a page ahead)."""
    rows: list[tuple[int, dict]] = []
    cursor = since_ms
    for _ in range(MAX_PAGES):
        if cursor > now_ms:
            break
        got = await page(cursor)
        if not got:
            cursor += size * step_ms
            continue
        rows.extend(got)
        last = max(t for t, _ in got)
        if len(got) < size and last + 2 * step_ms > now_ms:
            break
        cursor = last + 1
    return rows


class PositioningSource:
    """Serves the kinds ``positioning`` and ``funding``."""

    def __init__(self, clients: CcxtClients, kind: str = "positioning"):
        self.clients = clients
        self.kind = kind
        self.members = MEMBERS[kind]

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        period = model.bucket or DEFAULT_PERIOD
        if period not in PERIODS and self.kind == "positioning":
            raise BadResponse(
                self.kind, f"bucket {period} is not a Binance statistics period ({', '.join(PERIODS)})"
            )
        step_ms = int(parse_duration(period)) * 1000
        now_ms = request.now_ns // _MS
        if request.since_ns is None:
            days = min(model.history_days or KEPT_DAYS, KEPT_DAYS)
            since_ms = now_ms - days * 86_400_000
        else:
            since_ms = request.since_ns // _MS + 1
        lag_ns = int(request.feed.lag_s * NS_PER_SECOND)
        groups = {self.members[m][0] for m in request.members if m in self.members}
        scopes = scopes_of(request.scopes, model.pair, model.exchange)
        out: list[Observation] = []
        errors: list[FeedError] = []
        for scope in scopes:
            exchange_id, pair = split_scope(scope)
            client = self.clients.get(model.exchange or exchange_id)
            symbol = futures_symbol(pair)
            try:
                for group in sorted(groups):
                    rows = await self._group(client, group, symbol, period, since_ms, now_ms, step_ms)
                    out += self._observations(request, scope, group, rows, step_ms, now_ms, lag_ns)
            except FeedError as exc:
                errors.append(exc)
                log_event(api_log, "positioning failed", feed=request.feed.name, scope=scope, error=str(exc))
        if errors and len(errors) == len(scopes):
            raise errors[0]  # every pair failed: the source is down, not one market
        return out

    async def _group(
        self, client: Any, group: str, symbol: str, period: str, since_ms: int, now_ms: int, step_ms: int
    ) -> list[tuple[int, dict[str, Any]]]:
        call = self.clients.call
        if group == "fundingRate":

            async def funding(cursor: int) -> list[tuple[int, dict[str, Any]]]:
                rows = await call(client, client.fetch_funding_rate_history(symbol, cursor, FUNDING_PAGE))
                return [(_stamp(r, "timestamp"), {"fundingRate": r.get("fundingRate")}) for r in rows]

            return await _pages(funding, since_ms, now_ms, 8 * 3_600_000, FUNDING_PAGE)
        if group == "openInterestHist":

            async def interest(cursor: int) -> list[tuple[int, dict[str, Any]]]:
                rows = await call(client, client.fetch_open_interest_history(symbol, period, cursor, PAGE))
                return [(_stamp(r, "timestamp"), r) for r in rows]

            return await _pages(interest, since_ms, now_ms, step_ms, PAGE)
        if group == "globalLongShortAccountRatio":

            async def crowd(cursor: int) -> list[tuple[int, dict[str, Any]]]:
                rows = await call(client, client.fetch_long_short_ratio_history(symbol, period, cursor, PAGE))
                return [(_stamp(r, "timestamp"), r) for r in rows]

            return await _pages(crowd, since_ms, now_ms, step_ms, PAGE)
        method = getattr(client, _IMPLICIT[group])
        await call(client, client.load_markets())
        market_id = client.market(symbol)["id"]

        async def raw(cursor: int) -> list[tuple[int, dict[str, Any]]]:
            params = {"symbol": market_id, "period": period, "startTime": cursor, "limit": PAGE}
            rows = await call(client, method(params))
            if not isinstance(rows, list):
                raise BadResponse(self.kind, f"{group}: expected a list, got {type(rows).__name__}")
            return [(_stamp(r, "timestamp"), r) for r in rows if isinstance(r, dict)]

        return await _pages(raw, since_ms, now_ms, step_ms, PAGE)

    def _observations(
        self,
        request: FetchRequest,
        scope: str,
        group: str,
        rows: Sequence[tuple[int, dict[str, Any]]],
        step_ms: int,
        now_ms: int,
        lag_ns: int,
    ) -> list[Observation]:
        out: list[Observation] = []
        wanted = [(m, field) for m, (g, field) in self.members.items() if g == group and m in request.members]
        seen: set[int] = set()
        for stamp, row in sorted(rows, key=lambda r: r[0]):
            if stamp in seen or (request.since_ns is not None and stamp * _MS <= request.since_ns):
                continue
            seen.add(stamp)
            known = stamp if group == "fundingRate" else stamp + step_ms
            available = min(known, now_ms) * _MS + lag_ns
            for member, field in wanted:
                value = _number(row.get(field))
                if value is None:
                    continue  # a missing or unreadable number is skipped, never stored as 0
                series = series_for(request.feed, member, scope)
                out.append(Observation(series, stamp * _MS, available, value, self.kind))
        return out

    async def aclose(self) -> None:
        await self.clients.aclose()


def build(setup: SourceSetup) -> PositioningSource:
    return PositioningSource(clients_for(setup, futures=True), setup.kind)
