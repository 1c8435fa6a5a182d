"""CoinGecko v3: a coin's price, market cap, 24h volume and change, and its dominance.

Calls (``x-cg-demo-api-key`` header when a key is configured; about 30 calls/min with a demo key,
5 to 15 without one, so the default limit is 10/min and 30/min once a key is set):

* ``/simple/price`` gives the current ``price``, ``market_cap``, ``volume_24h`` and ``change_24h``.
  ``event_time`` is the service's ``last_updated_at``; ``available_at`` is the fetch time (a current
  value is known when we hold it, not earlier).
* ``/coins/{id}/market_chart?days=N`` gives history of price, market cap and 24h volume. The service
  picks the spacing from ``days``: 1 day gives 5-minute points, 2 to 90 days hourly points, more
  than 90 days one point a day at 00:00 UTC. ``available_at``:
  - 5-minute and hourly points: the point's time plus 5 minutes (the API's cache period);
  - daily points: 00:10 UTC of the next day (when CoinGecko says a day is final);
  - the **last** point of each list is live and off the grid: it is treated as a current value
    (``available_at`` = fetch time), never as history;
  - a point not yet final at the fetch time is left out; a later fetch stores it once final.
  The feed's ``lag`` is added on top of these. A first fetch asks for ``history_days`` (90 by default,
  the longest window with hourly points: more days give daily points only, then raise ``max_age``
  above a day; at most 365, the public and demo plans' reach). ``change_24h`` has no history here: it is recorded live.
* ``/global`` gives ``dominance``: the coin's share of the whole market's capitalisation
  (``market_cap_percentage``, which lists the ten largest coins by symbol; the symbol comes from a
  built-in table of coin ids, or the feed's ``symbol:`` when its chain also has CryptoCompare).
  ``event_time`` is its ``updated_at``, ``available_at`` the fetch time.

Dominance history: the public and demo tiers have no history of the total market capitalisation, and
adding up today's largest coins' histories would pick the coins with today's knowledge (survivorship)
and miss the thousands of others in CoinGecko's total. So dominance is **recorded live only**; import
your own series with the file source for backtests over earlier dates.

Errors: 429 with ``retry-after`` and ``{"status": {"error_code": 429, "error_message": ...}}`` is
RateLimited (the client waits and retries); a ``status.error_code`` inside an HTTP 200 answer is a
ServiceError (RateLimited for 429); an unknown coin id (404 or an empty answer) is a BadResponse.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.feeds.http import BadResponse, FeedError, FeedHttpClient, RateLimited, ServiceError
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._values import number
from engine.feeds.sources.base import FetchRequest, SourceSetup

__all__ = [
    "BASE_URL",
    "CALLS_PER_MINUTE",
    "CoinGeckoSource",
    "build",
    "parse_global",
    "parse_market_chart",
    "parse_simple_price",
]

log = logging.getLogger("engine.feeds")

BASE_URL = "https://api.coingecko.com/api/v3"
CALLS_PER_MINUTE = 10
CALLS_PER_MINUTE_WITH_KEY = 30
SERVICE = "coingecko"

MINUTE_NS = 60 * NS_PER_SECOND
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
# Intraday points reach the API's cache within its refresh period.
INTRADAY_DELAY_NS = 5 * MINUTE_NS
# A daily point stamped 00:00 UTC is final at 00:10 UTC the next day.
DAILY_FINAL_NS = DAY_NS + 10 * MINUTE_NS
DEFAULT_HISTORY_DAYS = 90
# The public and demo plans answer 401 (error 10012) for history beyond the past 365 days.
MAX_HISTORY_DAYS = 365
CURRENT_MEMBERS = ("price", "market_cap", "volume_24h", "change_24h")
HISTORY_LISTS = {"price": "prices", "market_cap": "market_caps", "volume_24h": "total_volumes"}
# /global keys its percentages by symbol; the coins users name most, when a feed gives no `symbol:`.
SYMBOLS = {
    "bitcoin": "btc",
    "ethereum": "eth",
    "tether": "usdt",
    "binancecoin": "bnb",
    "solana": "sol",
    "ripple": "xrp",
    "usd-coin": "usdc",
    "cardano": "ada",
    "dogecoin": "doge",
    "tron": "trx",
    "staked-ether": "steth",
}


def granularity_delay_ns(days: int) -> int:
    """How long after its time a history point of a ``days``-long answer becomes final."""
    return INTRADAY_DELAY_NS if days <= 90 else DAILY_FINAL_NS


def _status_error(body: Any) -> FeedError | None:
    """CoinGecko's ``{"status": {"error_code", "error_message"}}`` shape, when an answer is one."""
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, dict) or "error_code" not in status:
        return None
    message = str(status.get("error_message") or "error")[:200]
    if status.get("error_code") == 429:
        return RateLimited(SERVICE, f"rate limited: {message}")
    return ServiceError(SERVICE, f"error {status.get('error_code')}: {message}")


def parse_simple_price(
    body: Any, feed: str, coin: str, vs: str, members: tuple[str, ...], now_ns: int
) -> list[Observation]:
    """Current values from ``/simple/price``: known at ``now_ns``, describing ``last_updated_at``."""
    error = _status_error(body)
    if error is not None:
        raise error
    if not isinstance(body, dict):
        raise BadResponse(SERVICE, "/simple/price: expected a JSON object")
    row = body.get(coin)
    if not isinstance(row, dict) or not row:
        raise BadResponse(SERVICE, f"unknown coin id '{coin}' (/simple/price has no data for it)")
    updated = number(row.get("last_updated_at"))
    event = now_ns if updated is None else min(now_ns, int(updated) * NS_PER_SECOND)
    fields = {
        "price": vs,
        "market_cap": f"{vs}_market_cap",
        "volume_24h": f"{vs}_24h_vol",
        "change_24h": f"{vs}_24h_change",
    }
    out = []
    for member in members:
        value = number(row.get(fields[member])) if member in fields else None
        if value is not None:
            out.append(Observation(f"{feed}.{member}", event, now_ns, value, SERVICE))
    return out


def parse_market_chart(
    body: Any, feed: str, members: tuple[str, ...], days: int, now_ns: int, lag_ns: int = 0
) -> list[Observation]:
    """History from ``/coins/{id}/market_chart``: final grid points, plus each list's live last point
    as a current value. Malformed points are skipped one by one."""
    error = _status_error(body)
    if error is not None:
        raise error
    if not isinstance(body, dict):
        raise BadResponse(SERVICE, "market_chart: expected a JSON object")
    delay = granularity_delay_ns(days)
    out: list[Observation] = []
    for member in members:
        points = body.get(HISTORY_LISTS.get(member, ""))
        if not isinstance(points, list):
            continue
        series = f"{feed}.{member}"
        for position, point in enumerate(points):
            if not isinstance(point, list | tuple) or len(point) < 2:
                continue
            stamp, value = number(point[0]), number(point[1])
            if stamp is None or value is None:
                continue
            event = int(stamp) * (NS_PER_SECOND // 1000)
            if position == len(points) - 1:
                # The live last point: what the service knows now, not a grid point.
                out.append(Observation(series, min(event, now_ns), now_ns, value, SERVICE))
                continue
            available = event + delay + lag_ns
            if available <= now_ns:
                out.append(Observation(series, event, available, value, SERVICE))
    return out


def parse_global(body: Any, feed: str, symbol: str, now_ns: int) -> list[Observation]:
    """``dominance`` (%) from ``/global``; empty when the coin is not among the listed percentages."""
    error = _status_error(body)
    if error is not None:
        raise error
    data = body.get("data") if isinstance(body, dict) else None
    shares = data.get("market_cap_percentage") if isinstance(data, dict) else None
    if not isinstance(shares, dict):
        raise BadResponse(SERVICE, "/global: no data.market_cap_percentage in the answer")
    value = number(shares.get(symbol))
    if value is None or not 0 <= value <= 100:
        return []
    updated = number(data.get("updated_at"))
    event = now_ns if updated is None else min(now_ns, int(updated) * NS_PER_SECOND)
    return [Observation(f"{feed}.dominance", event, now_ns, value, SERVICE)]


class CoinGeckoSource:
    kind = SERVICE

    def __init__(self, http: FeedHttpClient, key: str | None = None):
        self.http = http
        self.headers = {"x-cg-demo-api-key": key} if key else {}

    async def _get(self, path: str, params: dict[str, Any], coin: str) -> Any:
        try:
            return await self.http.get_json(path, params, self.headers)
        except BadResponse as exc:
            if exc.status == 404:
                raise BadResponse(SERVICE, f"unknown coin id '{coin}' ({path}: HTTP 404)") from None
            raise

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        feed = request.feed
        coin = str(feed.model.coin or "")
        vs = str(feed.model.vs or "usd").lower()
        name, now = feed.name, request.now_ns
        members = request.members
        out: list[Observation] = []
        current = tuple(m for m in members if m in CURRENT_MEMBERS)
        if current:
            params = {
                "ids": coin,
                "vs_currencies": vs,
                "include_market_cap": "true",
                "include_24hr_vol": "true",
                "include_24hr_change": "true",
                "include_last_updated_at": "true",
            }
            body = await self._get("/simple/price", params, coin)
            out.extend(parse_simple_price(body, name, coin, vs, current, now))
        history = tuple(m for m in members if m in HISTORY_LISTS)
        days = self._history_days(request)
        if history and days:
            params = {"vs_currency": vs, "days": days}
            body = await self._get(f"/coins/{coin}/market_chart", params, coin)
            out.extend(parse_market_chart(body, name, history, days, now, int(feed.lag_s * NS_PER_SECOND)))
        if "dominance" in members:
            symbol = (feed.model.symbol or SYMBOLS.get(coin, "")).lower()
            if symbol:
                out.extend(parse_global(await self._get("/global", {}, coin), name, symbol, now))
            else:
                log.warning("feed %s: no dominance for coin id %s (not among the largest coins)", name, coin)
        return out

    @staticmethod
    def _history_days(request: FetchRequest) -> int:
        """Days of history to ask for: everything wanted on a first fetch, the gap since the newest
        stored point otherwise, none when the current values alone keep the series up to date."""
        feed = request.feed
        if request.since_ns is None:
            return min(MAX_HISTORY_DAYS, int(feed.model.history_days or DEFAULT_HISTORY_DAYS))
        gap = request.now_ns - request.since_ns
        if not request.backfill and gap <= 2 * feed.refresh_s * NS_PER_SECOND:
            return 0
        return min(MAX_HISTORY_DAYS, max(1, -(-gap // DAY_NS)))

    async def aclose(self) -> None:
        """The HTTP client belongs to the FeedService (shared by every feed of the service)."""


def build(setup: SourceSetup) -> CoinGeckoSource:
    per_minute = setup.service.calls_per_minute or (
        CALLS_PER_MINUTE_WITH_KEY if setup.key else CALLS_PER_MINUTE
    )
    http = setup.http or FeedHttpClient(
        SERVICE, setup.service.base_url or BASE_URL, per_minute=per_minute, secrets=(setup.key or "",)
    )
    if setup.key and not setup.service.calls_per_minute:
        # A demo key raises the limit; the service's client was built before the key was seen.
        http.limiter.per_minute = CALLS_PER_MINUTE_WITH_KEY
    return CoinGeckoSource(http, setup.key)
