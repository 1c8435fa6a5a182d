"""Large transactions of an asset from Whale Alert (key required), as exchange flows per hour.

``GET /v1/transactions?api_key=&min_value=&start=UNIX[&cursor=]&currency=SYMBOL&limit=100``: each
transaction names its ``from`` and ``to`` owners with an ``owner_type``. A transaction into an
``exchange``-owned address from any other is an inflow, the reverse an outflow; exchange to exchange
counts in neither. ``transactions`` is absent when ``count`` is 0; a full page (``count`` = limit) is
followed by the next one with the answer's ``cursor``.

Per complete hour (quiet hours as zeros): ``inflow`` / ``outflow`` / ``netflow`` in units of the asset
(``amount``), ``large_transfers`` = exchange transactions (every one is at least ``min_value`` USD,
500,000 by default, the service's own floor on the free plan). ``event_time`` is the hour's start,
``available_at`` its end plus ``lag`` (2 minutes unless set). The free plan serves the last hour
only; a paid one 30 days (``history_days``).
"""

from __future__ import annotations

from typing import Any

from engine.feeds.http import BadResponse, FeedHttpClient, ServiceError
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._flows import HOUR_S, Flow, flow_observations, hourly_flows
from engine.feeds.sources.base import FetchRequest, SourceSetup
from engine.observability import category_logger, log_event

__all__ = ["BASE_URL", "CALLS_PER_MINUTE", "WhaleAlertSource", "build", "flows_of"]

BASE_URL = "https://api.whale-alert.io"
CALLS_PER_MINUTE = 10  # the free plan's limit
DEFAULT_MIN_VALUE = 500_000.0
DEFAULT_LAG_S = 120.0
LIMIT = 100
MAX_PAGES = 50

api_log = category_logger("api_calls")


def flows_of(transactions: list[Any], symbol: str) -> tuple[list[Flow], int]:
    """(exchange flows of ``symbol``, malformed transactions skipped)."""
    flows: list[Flow] = []
    skipped = 0
    for tx in transactions:
        try:
            if str(tx["symbol"]).lower() != symbol.lower():
                continue
            stamp = int(tx["timestamp"])
            amount = float(tx["amount"])
            into = (tx.get("to") or {}).get("owner_type") == "exchange"
            out_of = (tx.get("from") or {}).get("owner_type") == "exchange"
        except (KeyError, TypeError, ValueError, AttributeError):
            skipped += 1
            continue
        if not amount >= 0 or amount == float("inf"):
            skipped += 1
            continue
        if into != out_of:
            flows.append(Flow(stamp, amount, inflow=into))
    return flows, skipped


class WhaleAlertSource:
    kind = "whale_alert"

    def __init__(self, http: FeedHttpClient, key: str | None, limit: int = LIMIT):
        self.http = http
        self.key = key
        self.limit = limit

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        symbol = str(model.symbol or "")
        min_value = float(model.min_value or DEFAULT_MIN_VALUE)
        lag_s = request.feed.lag_s if model.lag else DEFAULT_LAG_S
        now_s = request.now_ns // NS_PER_SECOND
        end_s = (now_s - int(lag_s)) // HOUR_S * HOUR_S
        if request.since_ns is not None:
            start_s = request.since_ns // NS_PER_SECOND + HOUR_S
        else:
            start_s = end_s - (model.history_days * 86_400 if model.history_days else HOUR_S)
        start_s -= start_s % HOUR_S
        if start_s >= end_s:
            return []
        flows: list[Flow] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {
                "api_key": self.key or "",
                "min_value": int(min_value),
                "start": start_s,
                "currency": symbol.lower(),
                "limit": self.limit,
            }
            if cursor:
                params["cursor"] = cursor
            body = await self.http.get_json("/v1/transactions", params)
            transactions, cursor, count = _page(body)
            got, skipped = flows_of(transactions, symbol)
            if skipped:
                log_event(api_log, "malformed transactions skipped", service=self.kind, count=skipped)
            flows.extend(got)
            if count < self.limit or not cursor:
                break
        else:
            # Pages are in time order: the hours after the last transaction fetched are incomplete.
            last = max((f.time_s for f in flows), default=start_s)
            end_s = min(end_s, last - last % HOUR_S)
            log_event(api_log, "whale_alert pages cut", service=self.kind, pages=MAX_PAGES, until=end_s)
        hours = hourly_flows(flows, start_s, end_s, min_value=0.0)
        return flow_observations(request.feed, hours, request.members, lag_s, self.kind)

    async def aclose(self) -> None:
        """The HTTP client belongs to the FeedService."""


def _page(body: Any) -> tuple[list[Any], str | None, int]:
    if not isinstance(body, dict):
        raise BadResponse("whale_alert", "expected a JSON object")
    if body.get("result") != "success":
        raise ServiceError("whale_alert", str(body.get("message") or body.get("result") or "error")[:200])
    try:
        count = int(body.get("count", 0))
    except (TypeError, ValueError):
        raise BadResponse("whale_alert", f"count {body.get('count')!r} is not a number") from None
    transactions = body.get("transactions")
    if transactions is None:
        if count:
            raise BadResponse("whale_alert", f"count {count} but no transactions")
        transactions = []  # absent when count is 0
    if not isinstance(transactions, list):
        raise BadResponse("whale_alert", "transactions is not a list")
    cursor = body.get("cursor")
    return transactions, str(cursor) if cursor else None, count


def build(setup: SourceSetup) -> WhaleAlertSource:
    http = setup.http or FeedHttpClient(
        "whale_alert",
        setup.service.base_url or BASE_URL,
        per_minute=setup.service.calls_per_minute or CALLS_PER_MINUTE,
        secrets=(setup.key,) if setup.key else (),
    )
    return WhaleAlertSource(http, setup.key)
