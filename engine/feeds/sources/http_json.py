"""Any HTTP JSON API as a feed, declared in ``feeds.yaml`` without Python.

    feeds:
      funding:
        source: http_json
        url: https://api.example.com/v1/funding   # or a path under services.http_json.base_url
        query: {symbol: BTCUSDT, limit: "500"}
        items: data.rows                          # dotted path to the list ("" or absent: the answer)
        time: fundingTime                         # dotted field of each item
        time_unit: ms                             # s | ms | iso (guessed when absent)
        values: {rate: fundingRate, oi: stats.openInterest}
        key_param: apikey                         # or key_header: X-API-Key, or "{key}" in a value
        key: env:FUNDING_KEY                      # this feed's key (else services.http_json.key)
        lag: 5m

Each item is one moment: ``event_time`` is its ``time`` field, ``available_at`` that time plus the
feed's ``lag`` (declare the service's publication delay there). An item whose ``available_at`` is still
ahead of the fetch is left for a later fetch; a time a little ahead of our clock (up to 5 minutes,
clock skew) counts as now. Schema drift is handled value by value: a missing field, a null, text
that is not a number or a bool skips that one value (numbers inside strings are read), and the count of
skipped values goes to the ``api_calls`` log. A missing or non-list ``items`` path is a BadResponse
naming it. Each host gets its own rate limiter (``services.http_json.calls_per_minute``, 30 by
default). Keys, per feed or per service, are masked in every log and error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dsl import DiagnosticError
from engine.config._secrets import resolve_secret
from engine.feeds.http import BadResponse, ServiceError
from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.sources._origins import OriginClients
from engine.feeds.sources._values import MISSING, dotted, number, time_ns
from engine.feeds.sources.base import FetchRequest, SourceSetup
from engine.observability import category_logger, log_event

__all__ = ["CALLS_PER_MINUTE", "HttpJsonSource", "build", "parse_items"]

api_log = category_logger("api_calls")

# No BASE_URL: each feed names its own URL (relative ones need services.http_json.base_url).
CALLS_PER_MINUTE = 30
SERVICE = "http_json"
SKEW_NS = 5 * 60 * NS_PER_SECOND
TIME_UNITS = ("s", "ms", "iso")


def parse_items(
    body: Any,
    *,
    feed: str,
    items: str,
    time_field: str,
    time_unit: str | None,
    values: dict[str, str],
    members: tuple[str, ...],
    now_ns: int,
    lag_ns: int = 0,
) -> tuple[list[Observation], int]:
    """The observations in one answer and the number of values skipped (drift, not yet known)."""
    found = dotted(body, items)
    if found is MISSING:
        raise BadResponse(SERVICE, f"{feed}: no '{items}' in the answer ({_keys(body)})")
    rows = [found] if isinstance(found, dict) else found
    if not isinstance(rows, list):
        raise BadResponse(SERVICE, f"{feed}: '{items or '(the answer)'}' is not a list of items")
    out: list[Observation] = []
    skipped = 0
    wanted = [(m, values[m]) for m in members if m in values]
    for row in rows:
        event = time_ns(dotted(row, time_field), time_unit) if isinstance(row, dict) else None
        if event is not None and now_ns < event <= now_ns + SKEW_NS:
            event = now_ns
        if event is None or event + lag_ns > now_ns:
            skipped += len(wanted)
            continue
        for member, field in wanted:
            value = number(dotted(row, field))
            if value is None:
                skipped += 1
                continue
            out.append(Observation(f"{feed}.{member}", event, event + lag_ns, value, SERVICE))
    return out, skipped


def _keys(body: Any) -> str:
    if isinstance(body, dict):
        return "top-level keys: " + ", ".join(list(map(str, body))[:10])
    return f"the answer is a {type(body).__name__}"


class HttpJsonSource:
    kind = SERVICE

    def __init__(self, setup: SourceSetup, resolve: Callable[[str], str] | None = None):
        self.setup = setup
        self._resolve = resolve or (
            lambda ref: resolve_secret(ref, environ=os.environ, what="an http_json key")
        )
        self.clients = OriginClients(setup, CALLS_PER_MINUTE)

    def key_for(self, request: FetchRequest) -> str | None:
        ref = request.feed.model.key
        if ref is None:
            return self.setup.key
        try:
            return self._resolve(ref)
        except DiagnosticError as exc:
            # The message names the reference (env:NAME), never a value.
            raise ServiceError(SERVICE, f"feed {request.feed.name}: {exc}") from None

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        model = request.feed.model
        http, url = self.clients.client_for(str(model.url or ""))
        key = self.key_for(request)
        http.add_secret(key)
        params = {name: _fill(value, key) for name, value in (model.query or {}).items()}
        headers = {name: _fill(value, key) for name, value in (model.headers or {}).items()}
        if key and model.key_param:
            params[model.key_param] = key
        if key and model.key_header:
            headers[model.key_header] = key
        body = await http.get_json(url, params, headers)
        observations, skipped = parse_items(
            body,
            feed=request.feed.name,
            items=model.items or "",
            time_field=str(model.time or ""),
            time_unit=model.time_unit,
            values=dict(model.values or {}),
            members=request.members,
            now_ns=request.now_ns,
            lag_ns=int(request.feed.lag_s * NS_PER_SECOND),
        )
        if skipped:
            log_event(
                api_log,
                "feed values skipped",
                service=SERVICE,
                feed=request.feed.name,
                skipped=skipped,
                kept=len(observations),
            )
        return observations

    def take_calls(self) -> int:
        return self.clients.take_calls()

    def busiest(self) -> tuple[int, float] | None:
        return self.clients.busiest()

    async def aclose(self) -> None:
        await self.clients.aclose()


def _fill(value: str, key: str | None) -> str:
    if "{key}" in value and not key:
        raise ServiceError(SERVICE, "a '{key}' placeholder needs a key (key: or services.http_json.key)")
    return value.replace("{key}", key or "")


def build(setup: SourceSetup) -> HttpJsonSource:
    resolve = setup.options.get("resolve_key")
    return HttpJsonSource(setup, resolve if callable(resolve) else None)
