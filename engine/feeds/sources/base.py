"""What every feed source implements, and how a source is found for a kind."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

from engine.config._feeds import ResolvedFeed, ServiceSettings
from engine.feeds.http import FeedHttpClient
from engine.feeds.observations import Observation

__all__ = ["SOURCE_MODULES", "FetchRequest", "Source", "SourceSetup", "build_source"]

# Kind -> module (in engine/feeds/sources) whose ``build(setup)`` returns its Source.
SOURCE_MODULES: dict[str, str] = {
    "fear_greed": "engine.feeds.sources.fear_greed",
    "file": "engine.feeds.sources.file",
    "coingecko": "engine.feeds.sources.coingecko",
    "cryptocompare": "engine.feeds.sources.cryptocompare",
    "yahoo": "engine.feeds.sources.yahoo",
    "http_json": "engine.feeds.sources.http_json",
    "calendar": "engine.feeds.sources.calendar",
    "orderbook": "engine.feeds.sources.orderbook",
    "trades": "engine.feeds.sources.trades",
    "positioning": "engine.feeds.sources.positioning",
    "funding": "engine.feeds.sources.positioning",
    "exchange": "engine.feeds.sources.exchange",
    "etherscan": "engine.feeds.sources.etherscan",
    "whale_alert": "engine.feeds.sources.whale_alert",
}


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One refresh or backfill of one feed.

    ``since_ns``: the newest event_time already stored (None: nothing yet; fetch all the history the
    service gives, or ``history_days``). ``now_ns``: the wall clock at the call, which is the
    ``available_at`` of anything "current" the service returns. ``scopes``: for per-pair kinds, the
    ``exchange:PAIR`` scopes followed."""

    feed: ResolvedFeed
    members: tuple[str, ...]
    since_ns: int | None
    now_ns: int
    backfill: bool = False
    scopes: tuple[str, ...] = ()


class Source(Protocol):
    kind: str

    async def fetch(self, request: FetchRequest) -> list[Observation]:
        """Observations for the request's members; raises engine.feeds.http.FeedError subclasses."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class SourceSetup:
    """What a source is built from: its service settings, the resolved key (never logged), a shared
    HTTP client per service, and the project folder (for files and calendars)."""

    kind: str
    service: ServiceSettings
    key: str | None
    http: FeedHttpClient | None
    root: str
    options: dict[str, object] = field(default_factory=dict)


def build_source(setup: SourceSetup) -> Source:
    module = SOURCE_MODULES.get(setup.kind)
    if module is None:
        raise LookupError(f"no client for feed source '{setup.kind}' in this version of the engine")
    return importlib.import_module(module).build(setup)
