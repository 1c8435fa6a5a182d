"""Yahoo Finance's chart API (unofficial, no key): daily bars of any symbol (``^GSPC``, ``DX-Y.NYB``,
``GC=F``, ``^IXIC``).

``GET /v8/finance/chart/%5EGSPC?interval=1d&period1=UNIX&period2=UNIX`` gives ``timestamp`` (each
session's **open**) and ``indicators.quote[0]`` lists (``open``, ``high``, ``low``, ``close``,
``volume``), with ``null`` where a value is missing. A daily bar is only known at the session
**close**: ``event_time`` is the close, in the exchange's time zone from ``meta``
(``exchangeTimezoneName``, e.g. America/New_York) at the regular session's end time of day: the
later of ``meta.currentTradingPeriod.regular.end`` (which describes the day of the fetch only) and
the zone's usual close (16:00 in New York), so a fetch made on a half day does not make every past
bar known three hours early. ``available_at`` is the close plus the feed's ``lag`` (15 minutes by
default). The bar of a session still open is left out. Half days (13:00 closes) are treated as full
days: their bar becomes known three hours later than it could, never earlier. Weekends and holidays
have no bars: ``max_age`` (4 days) covers them; nothing is invented.

Values are read one by one: a ``null`` close skips that close only. Errors: an unknown symbol is a 404
with ``{"chart": {"error": {"code": "Not Found", "description": ...}}}`` (a BadResponse naming the
symbol); throttling is a 429 with a plain-text body (RateLimited); a ``chart.error`` in an HTTP 200
answer is a ServiceError.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.feeds.http import BadResponse, FeedHttpClient, ServiceError
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._values import number
from engine.feeds.sources.base import FetchRequest, SourceSetup

__all__ = ["BASE_URL", "CALLS_PER_MINUTE", "YahooSource", "build", "parse_chart", "session_close"]

BASE_URL = "https://query1.finance.yahoo.com"
# Unofficial and unannounced; users report throttling above about a call a second.
CALLS_PER_MINUTE = 30
SERVICE = "yahoo"
DAY_S = 86_400
DEFAULT_HISTORY_DAYS = 5 * 365
MEMBERS = ("open", "high", "low", "close", "volume")
# Yahoo answers scripts without a browser-like agent with 429s.
HEADERS = {"User-Agent": "Mozilla/5.0 (compatible; engine-feeds)", "Accept": "application/json"}


def _zone(meta: dict[str, Any]) -> ZoneInfo:
    name = meta.get("exchangeTimezoneName") or (
        (meta.get("currentTradingPeriod") or {}).get("regular") or {}
    ).get("timezone")
    try:
        return ZoneInfo(str(name)) if name else ZoneInfo("America/New_York")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadResponse(SERVICE, f"unknown exchange time zone {name!r} in the chart meta") from None


# The usual regular close of the main exchanges in each zone. ``currentTradingPeriod`` describes the
# day of the fetch only: fetched on a half day it says 13:00, which must not make every past bar
# known three hours early. The later of the two is used.
_USUAL_CLOSE = {
    "America/New_York": time(16, 0),
    "America/Chicago": time(15, 0),
    "America/Toronto": time(16, 0),
    "Europe/London": time(16, 30),
    "Europe/Berlin": time(17, 30),
    "Europe/Paris": time(17, 30),
    "Europe/Zurich": time(17, 30),
    "Asia/Tokyo": time(15, 30),
    "Asia/Hong_Kong": time(16, 10),
    "Asia/Shanghai": time(15, 0),
    "Australia/Sydney": time(16, 10),
}


def _close_time(meta: dict[str, Any], zone: ZoneInfo) -> time:
    """The regular session's end, as a local time of day: the later of today's
    (``currentTradingPeriod.regular.end``) and the zone's usual close (16:00 when neither is known)."""
    usual = _USUAL_CLOSE.get(str(zone.key))
    regular = (meta.get("currentTradingPeriod") or {}).get("regular") or {}
    end = number(regular.get("end"))
    if end is None:
        return usual or time(16, 0)
    today = datetime.fromtimestamp(end, zone).time().replace(second=0, microsecond=0)
    return max(today, usual) if usual is not None else today


def session_close(open_s: int, zone: ZoneInfo, close: time) -> int:
    """The close (ns) of the session that opened at ``open_s``: its local date at ``close``."""
    local_day = datetime.fromtimestamp(open_s, zone).date()
    closing = datetime.combine(local_day, close, tzinfo=zone)
    if closing.timestamp() <= open_s:  # a session crossing midnight (futures): it closes the next day
        closing = datetime.combine(local_day + timedelta(days=1), close, tzinfo=zone)
    return int(closing.astimezone(UTC).timestamp()) * NS_PER_SECOND


def parse_chart(
    body: Any, feed: str, symbol: str, members: tuple[str, ...], now_ns: int, lag_ns: int = 0
) -> list[Observation]:
    """The closed sessions' values in one chart answer; malformed values skipped one by one."""
    chart = body.get("chart") if isinstance(body, dict) else None
    if not isinstance(chart, dict):
        raise BadResponse(SERVICE, f"{symbol}: no 'chart' object in the answer")
    error = chart.get("error")
    if error:
        detail = error.get("description") if isinstance(error, dict) else error
        raise ServiceError(SERVICE, f"{symbol}: {str(detail)[:200]}")
    results = chart.get("result")
    if not results:
        return []
    result = results[0] if isinstance(results, list) and isinstance(results[0], dict) else {}
    meta = result.get("meta") if isinstance(result.get("meta"), dict) else {}
    stamps = result.get("timestamp") or []
    quotes = (result.get("indicators") or {}).get("quote") or [{}]
    quote_lists = quotes[0] if isinstance(quotes, list) and isinstance(quotes[0], dict) else {}
    if not isinstance(stamps, list):
        raise BadResponse(SERVICE, f"{symbol}: 'timestamp' is not a list")
    zone = _zone(meta)
    close = _close_time(meta, zone)
    out: list[Observation] = []
    for index, stamp in enumerate(stamps):
        opened = number(stamp)
        if opened is None:
            continue
        event = session_close(int(opened), zone, close)
        available = event + lag_ns
        if available > now_ns:
            continue  # the session is still open: its "close" is the last trade, not the close
        for member in members:
            values = quote_lists.get(member)
            value = number(values[index]) if isinstance(values, list) and index < len(values) else None
            if value is None or value < 0 or (value == 0 and member != "volume"):
                continue
            out.append(Observation(f"{feed}.{member}", event, available, value, SERVICE))
    return out


class YahooSource:
    kind = SERVICE

    def __init__(self, http: FeedHttpClient):
        self.http = http

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        feed = request.feed
        symbol = str(feed.model.symbol or "")
        now_s = request.now_ns // NS_PER_SECOND
        if request.since_ns is None:
            start = now_s - int(feed.model.history_days or DEFAULT_HISTORY_DAYS) * DAY_S
        else:
            # A few days before the newest stored close: a bar known late (a holiday) is not missed.
            start = request.since_ns // NS_PER_SECOND - 5 * DAY_S
        params = {"interval": "1d", "period1": start, "period2": now_s, "includePrePost": "false"}
        path = f"/v8/finance/chart/{quote(symbol, safe='')}"
        try:
            body = await self.http.get_json(path, params, HEADERS)
        except BadResponse as exc:
            if exc.status == 404:
                raise BadResponse(SERVICE, f"unknown symbol '{symbol}' ({_description(exc.body)})") from None
            raise
        return parse_chart(
            body, feed.name, symbol, request.members, request.now_ns, int(feed.lag_s * NS_PER_SECOND)
        )

    async def aclose(self) -> None:
        """The HTTP client belongs to the FeedService (shared by every feed of the service)."""


def _description(body: str) -> str:
    """Yahoo's own words for a 404, from ``chart.error.description`` when the body is its JSON."""
    try:
        error = json.loads(body)["chart"]["error"]
        return str(error.get("description") or error.get("code"))[:200]
    except (ValueError, KeyError, TypeError, AttributeError):
        return "HTTP 404"


def build(setup: SourceSetup) -> YahooSource:
    http = setup.http or FeedHttpClient(
        SERVICE,
        setup.service.base_url or BASE_URL,
        per_minute=setup.service.calls_per_minute or CALLS_PER_MINUTE,
    )
    return YahooSource(http)
