"""CryptoCompare (min-api): hourly price and 24h volume of a coin, and daily social statistics.

Calls (key, when configured, as the header ``authorization: Apikey KEY``; the free tier allows short
bursts but about 100,000 calls a month, so the default limit is 20 calls/min):

* ``/data/v2/histohour?fsym=BTC&tsym=USD&limit=N&toTs=T`` pages backwards through hourly bars,
  2,000 a call, until the stored history is reached (``history_days``, 90 by default, on a first
  fetch). A bar is stamped at its open and is only known at its **close**: ``event_time`` is the
  close (open + 1 h), ``available_at`` the close plus the feed's ``lag``; the bar still in progress
  is left out. ``price`` is the close; ``volume_24h`` is the quote volume of the 24 bars ending there
  (only where all 24 are in the answer). Bars of zeros (before a coin was listed) are skipped.
* ``/data/social/coin/histo/day?coinId=1182&limit=N`` (needs a key; ``coin_id:`` or a built-in id for
  BTC/ETH): ``followers`` and ``posts`` per day, known at the end of the day (``time`` + 1 day + lag).
  Without a key these members are simply not fetched.

Errors come back as **HTTP 200** with ``"Response": "Error"``: ``Type: 99`` (over the quota) or a rate
limit message is RateLimited, anything else (unknown symbol, bad key) a ServiceError.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.feeds.http import BadResponse, FeedHttpClient, RateLimited, ServiceError
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._values import number
from engine.feeds.sources.base import FetchRequest, SourceSetup

__all__ = [
    "BASE_URL",
    "CALLS_PER_MINUTE",
    "CryptoCompareSource",
    "build",
    "check_answer",
    "parse_histo",
    "parse_social",
]

log = logging.getLogger("engine.feeds")

BASE_URL = "https://min-api.cryptocompare.com"
CALLS_PER_MINUTE = 20
SERVICE = "cryptocompare"
HOUR_S = 3600
DAY_S = 86_400
PAGE = 2000
DEFAULT_HISTORY_DAYS = 90
PRICE_MEMBERS = ("price", "volume_24h")
SOCIAL_MEMBERS = ("followers", "posts")
# CryptoCompare's numeric coin ids for its social endpoint; other coins need `coin_id:`.
COIN_IDS = {"BTC": 1182, "ETH": 7605}


def check_answer(body: Any, what: str) -> dict[str, Any]:
    """The answer as a dict, or the error its ``Response: Error`` shape reports."""
    if not isinstance(body, dict):
        raise BadResponse(SERVICE, f"{what}: expected a JSON object")
    if body.get("Response") == "Error":
        message = str(body.get("Message") or "error")[:200]
        if body.get("Type") == 99 or "rate limit" in message.lower():
            raise RateLimited(SERVICE, f"{what}: over the rate limit (Type {body.get('Type')}): {message}")
        raise ServiceError(SERVICE, f"{what}: {message} (Type {body.get('Type')})")
    return body


def parse_histo(
    body: Any, feed: str, members: tuple[str, ...], now_ns: int, lag_ns: int = 0, period_s: int = HOUR_S
) -> tuple[list[Observation], int | None]:
    """Observations of one ``histohour``/``histoday`` page, and the page's first bar time (seconds)
    for the next, older page (None when there is none: no bar, or the coin was listed in this page)."""
    data = check_answer(body, "histo").get("Data")
    bars = data.get("Data") if isinstance(data, dict) else None
    if not isinstance(bars, list):
        raise BadResponse(SERVICE, "histo: no Data.Data list in the answer")
    rows: list[tuple[int, float | None, float | None]] = []
    for bar in bars:
        if not isinstance(bar, dict):
            continue
        stamp = number(bar.get("time"))
        if stamp is None:
            continue
        close, volume = number(bar.get("close")), number(bar.get("volumeto"))
        rows.append((int(stamp), close if close and close > 0 else None, volume))
    rows.sort()
    # A page starting with bars of zeros holds the listing: nothing older exists, stop paging.
    first = rows[0][0] if rows and rows[0][1] is not None else None
    out: list[Observation] = []
    window = max(1, DAY_S // period_s)
    for index, (stamp, close, _volume) in enumerate(rows):
        event = (stamp + period_s) * NS_PER_SECOND
        available = event + lag_ns
        if available > now_ns or close is None:
            continue  # still in progress, or a bar of zeros before the listing
        if "price" in members:
            out.append(Observation(f"{feed}.price", event, available, close, SERVICE))
        if "volume_24h" in members and index + 1 >= window:
            last = rows[index + 1 - window : index + 1]
            contiguous = last[-1][0] - last[0][0] == (window - 1) * period_s
            volumes = [v for _s, _c, v in last if v is not None]
            if contiguous and len(volumes) == window:
                out.append(Observation(f"{feed}.volume_24h", event, available, sum(volumes), SERVICE))
    return out, first


def parse_social(
    body: Any, feed: str, members: tuple[str, ...], now_ns: int, lag_ns: int = 0
) -> list[Observation]:
    """Daily ``followers``/``posts`` from ``/data/social/coin/histo/day``, each known at the day's end."""
    rows = check_answer(body, "social").get("Data")
    if not isinstance(rows, list):
        raise BadResponse(SERVICE, "social: no Data list in the answer")
    out: list[Observation] = []
    for row in rows:
        stamp = number(row.get("time")) if isinstance(row, dict) else None
        if stamp is None:
            continue
        event = (int(stamp) + DAY_S) * NS_PER_SECOND
        if event + lag_ns > now_ns:
            continue
        for member in members:
            value = number(row.get(member))
            if value is not None and value >= 0:
                out.append(Observation(f"{feed}.{member}", event, event + lag_ns, value, SERVICE))
    return out


class CryptoCompareSource:
    kind = SERVICE

    def __init__(self, http: FeedHttpClient, key: str | None = None):
        self.http = http
        self.key = key
        self.headers = {"authorization": f"Apikey {key}"} if key else {}

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        out: list[Observation] = []
        prices = tuple(m for m in request.members if m in PRICE_MEMBERS)
        if prices:
            out.extend(await self._hourly(request, prices))
        social = tuple(m for m in request.members if m in SOCIAL_MEMBERS)
        if social and self.key:
            out.extend(await self._social(request, social))
        return out

    def _start_s(self, request: FetchRequest, extra_s: int) -> int:
        """The oldest time (seconds) this fetch needs: the stored history's end, else history_days."""
        now_s = request.now_ns // NS_PER_SECOND
        if request.since_ns is None:
            return now_s - int(request.feed.model.history_days or DEFAULT_HISTORY_DAYS) * DAY_S
        return request.since_ns // NS_PER_SECOND - extra_s

    async def _hourly(self, request: FetchRequest, members: tuple[str, ...]) -> list[Observation]:
        feed = request.feed
        symbol, vs = str(feed.model.symbol or "").upper(), str(feed.model.vs or "USD").upper()
        lag_ns = int(feed.lag_s * NS_PER_SECOND)
        # 24 bars before the first new one, so its rolling 24h volume can be summed.
        start = self._start_s(request, DAY_S + HOUR_S)
        to_ts = request.now_ns // NS_PER_SECOND
        found: dict[tuple[str, int], Observation] = {}
        while True:
            limit = min(PAGE, max(1, -(-(to_ts - start) // HOUR_S)))
            params = {"fsym": symbol, "tsym": vs, "limit": limit, "toTs": to_ts}
            body = await self.http.get_json("/data/v2/histohour", params, self.headers)
            page, first = parse_histo(body, feed.name, members, request.now_ns, lag_ns)
            for obs in page:
                found.setdefault((obs.series, obs.event_time), obs)
            if first is None or not page or first <= start:
                break  # done, or no older bars (before the listing, or the history ends there)
            # The next, older page ends 23 bars into this one: those bars lacked a full 24h window.
            older = first + (DAY_S - 2 * HOUR_S)
            if older >= to_ts:
                break
            to_ts = older
        return sorted(found.values(), key=lambda o: (o.series, o.event_time))

    async def _social(self, request: FetchRequest, members: tuple[str, ...]) -> list[Observation]:
        feed = request.feed
        coin_id = feed.model.coin_id or COIN_IDS.get(str(feed.model.symbol or "").upper())
        if coin_id is None:
            log.warning("feed %s: social statistics need `coin_id:` (CryptoCompare's coin id)", feed.name)
            return []
        days = max(1, (request.now_ns // NS_PER_SECOND - self._start_s(request, DAY_S)) // DAY_S + 1)
        params = {"coinId": coin_id, "limit": min(PAGE, days)}
        body = await self.http.get_json("/data/social/coin/histo/day", params, self.headers)
        return parse_social(body, feed.name, members, request.now_ns, int(feed.lag_s * NS_PER_SECOND))

    async def aclose(self) -> None:
        """The HTTP client belongs to the FeedService (shared by every feed of the service)."""


def build(setup: SourceSetup) -> CryptoCompareSource:
    http = setup.http or FeedHttpClient(
        SERVICE,
        setup.service.base_url or BASE_URL,
        per_minute=setup.service.calls_per_minute or CALLS_PER_MINUTE,
        secrets=(setup.key or "",),
    )
    return CryptoCompareSource(http, setup.key)
