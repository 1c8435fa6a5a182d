"""alternative.me Crypto Fear & Greed Index (no key).

``GET /fng/?limit=N&format=json`` (``limit=0``: the whole history since 2018-02-01). Values and
unix-second timestamps arrive as strings; one value a day, stamped at 00:00 UTC of the day it describes
and published then, so ``available_at`` is the timestamp plus the feed's lag (10 minutes by default).
"""

from __future__ import annotations

from typing import Any

from engine.feeds.http import BadResponse, FeedHttpClient, ServiceError
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources.base import FetchRequest, SourceSetup

__all__ = ["BASE_URL", "FearGreedSource", "build", "parse_fng"]

BASE_URL = "https://api.alternative.me"
# The service documents no limit; stay polite.
CALLS_PER_MINUTE = 30


def parse_fng(body: Any, series: str, lag_s: float) -> list[Observation]:
    """The observations in one ``/fng/`` answer; raises BadResponse/ServiceError on other shapes."""
    if not isinstance(body, dict):
        raise BadResponse("fear_greed", "expected a JSON object")
    error = (body.get("metadata") or {}).get("error") if isinstance(body.get("metadata"), dict) else None
    if error:
        raise ServiceError("fear_greed", str(error)[:200])
    data = body.get("data")
    if not isinstance(data, list):
        raise BadResponse("fear_greed", "no 'data' list in the answer")
    out: list[Observation] = []
    for row in data:
        try:
            stamp = int(str(row["timestamp"]))
            value = float(str(row["value"]))
        except (KeyError, TypeError, ValueError):
            continue  # a malformed row is skipped, never stored
        if not 0 <= value <= 100:
            continue
        event = stamp * NS_PER_SECOND
        out.append(Observation(series, event, event + int(lag_s * NS_PER_SECOND), value, "fear_greed"))
    return out


class FearGreedSource:
    kind = "fear_greed"

    def __init__(self, http: FeedHttpClient):
        self.http = http

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        if request.since_ns is None:
            limit = 0 if request.feed.model.history_days is None else request.feed.model.history_days
        else:
            days = max(1, (request.now_ns - request.since_ns) // (86_400 * NS_PER_SECOND) + 2)
            limit = int(days)
        body = await self.http.get_json("/fng/", {"limit": limit, "format": "json"})
        series = f"{request.feed.name}.value"
        return parse_fng(body, series, request.feed.lag_s)

    async def aclose(self) -> None:
        """The HTTP client belongs to the FeedService (shared by every feed of the service)."""


def build(setup: SourceSetup) -> FearGreedSource:
    http = setup.http or FeedHttpClient(
        "fear_greed",
        setup.service.base_url or BASE_URL,
        per_minute=setup.service.calls_per_minute or CALLS_PER_MINUTE,
    )
    return FearGreedSource(http)
