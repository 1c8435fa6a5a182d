"""``feeds.yaml``: the external point-in-time series a project's rules may read, and their services.

Built-in feeds (``fear_greed``, ``btc``, ``eth``, ``spx``) need no file; a project's ``feeds.yaml``
adds feeds or replaces a built-in one of the same name. Checked in two layers like bots: structure
(pydantic, every error at its line), then meaning (known source kinds, the keys each kind takes, a key
for the services that need one).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, ValidationError

from dsl import Diagnostic, Span
from dsl.errors import did_you_mean
from dsl.timeframes import parse_duration
from engine.config._errors import validation_diagnostics
from engine.config._feed_kinds import COMMON_KEYS, FEED_KINDS, FeedKind
from engine.config._types import ConfigModel, Duration, Identifier, Int, Number, Pair, SecretRef
from engine.config._yaml import YamlDocument, YamlNode, read_yaml_file

__all__ = [
    "BUILTIN_FEEDS",
    "FEEDS_FILE",
    "Feed",
    "FeedsFile",
    "LoadedFeeds",
    "ResolvedFeed",
    "ServiceSettings",
    "load_feeds",
]

FEEDS_FILE = "feeds.yaml"


class ServiceSettings(ConfigModel):
    """Connection settings of one service (by source kind): key, base URL, rate limit, timeout."""

    key: SecretRef | None = None
    base_url: str | None = None
    # Calls per minute at most (the client spreads them); the kind's documented free limit by default.
    calls_per_minute: Number | None = Field(default=None, gt=0)
    timeout: Duration | None = None


class FeedAlerts(ConfigModel):
    # A source failing for longer than this is "down": an event and a notification.
    down_after: Duration = "30m"


class Feed(ConfigModel):
    """One feed: a namespace in rules (``NAME.member``) filled by one source kind or a fallback chain."""

    source: str | list[str]
    description: str | None = None
    refresh: Duration | None = None
    max_age: Duration | None = None
    lag: Duration | None = None
    history_days: Int | None = Field(default=None, ge=1)
    # Source parameters (which ones a kind takes: docs/feeds.md).
    coin: str | None = None
    coin_id: Int | None = None
    symbol: str | None = None
    vs: str | None = None
    pair: Pair | None = None
    exchange: str | None = None
    depth: Int | None = Field(default=None, ge=1, le=5000)
    band: Number | None = Field(default=None, gt=0, le=50)
    large_trade: Number | None = Field(default=None, gt=0)
    # trades: the bucket trades are summed over (the candle timeframe of the strategies reading it).
    bucket: Duration | None = None
    path: str | None = None
    events: list[str] | None = None
    token: str | None = None
    chain: Int | None = None
    min_value: Number | None = Field(default=None, gt=0)
    labels: str | None = None
    url: str | None = None
    items: str | None = None
    time: str | None = None
    time_unit: str | None = None
    values: dict[Identifier, str] | None = None
    columns: list[Identifier] | None = None
    query: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    key_param: str | None = None
    key_header: str | None = None
    # http_json: this feed's own key (several http_json feeds may call services with different keys);
    # the service's `services: {http_json: {key: ...}}` otherwise.
    key: SecretRef | None = None

    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else tuple(self.source)


class FeedsFile(ConfigModel):
    """The root of ``feeds.yaml``."""

    feeds: dict[Identifier, Feed] = Field(default_factory=dict)
    services: dict[str, ServiceSettings] = Field(default_factory=dict)
    alerts: FeedAlerts = Field(default_factory=FeedAlerts)


# Work with no configuration: keyless public services only.
BUILTIN_FEEDS: dict[str, Feed] = {
    "fear_greed": Feed(source="fear_greed", description="Crypto Fear & Greed Index (alternative.me)"),
    "btc": Feed(source=["coingecko", "cryptocompare"], coin="bitcoin", symbol="BTC", description="Bitcoin"),
    "eth": Feed(source=["coingecko", "cryptocompare"], coin="ethereum", symbol="ETH", description="Ether"),
    "spx": Feed(source="yahoo", symbol="^GSPC", description="S&P 500 index (Yahoo Finance)"),
}


class ResolvedFeed:
    """A feed with its defaults applied: what the sources, the scheduler and the rule language use."""

    def __init__(self, name: str, model: Feed):
        self.name = name
        self.model = model
        self.kinds: tuple[FeedKind, ...] = tuple(FEED_KINDS[s] for s in model.sources())
        first = self.kinds[0]
        self.refresh_s = float(parse_duration(model.refresh or first.refresh))
        self.max_age_s = float(parse_duration(model.max_age or first.max_age))
        lag = model.lag or first.lag
        self.lag_s = float(parse_duration(lag)) if lag else 0.0
        self.per_pair = first.per_pair

    @property
    def members(self) -> tuple[str, ...]:
        found: list[str] = []
        for kind in self.kinds:
            declared = kind.members
            if declared is None:
                declared = tuple(self.model.values or ()) or tuple(self.model.columns or ())
            found.extend(m for m in declared if m not in found)
        return tuple(found)

    def kinds_for(self, member: str) -> tuple[FeedKind, ...]:
        return tuple(
            k
            for k in self.kinds
            if member in (k.members or tuple(self.model.values or ()) or tuple(self.model.columns or ()))
        )


class LoadedFeeds:
    """Every feed of a project (built-ins, then its ``feeds.yaml``), with the file's diagnostics."""

    def __init__(
        self,
        feeds: Mapping[str, ResolvedFeed],
        services: Mapping[str, ServiceSettings],
        alerts: FeedAlerts,
        path: Path | None,
        diagnostics: list[Diagnostic],
    ):
        self.feeds = dict(feeds)
        self.services = dict(services)
        self.alerts = alerts
        self.path = path
        self.diagnostics = diagnostics

    def service(self, kind: str) -> ServiceSettings:
        return self.services.get(kind) or ServiceSettings()

    def key_of(self, feed: ResolvedFeed, kind: str) -> str | None:
        """The key reference a kind uses for this feed (its own ``key:``, else the service's), never the
        secret itself."""
        return feed.model.key or self.service(kind).key


def load_feeds(root: Path | None, display: str | None = None) -> LoadedFeeds:
    """The feeds of the project at ``root`` (``root/feeds.yaml`` when it exists); never raises for
    bad input: a broken file's diagnostics are in ``.diagnostics`` and its feeds are left out."""
    path = None if root is None else root / FEEDS_FILE
    if path is None or not path.is_file():
        return _resolved(BUILTIN_FEEDS, {}, FeedAlerts(), None, [])
    document = read_yaml_file(path, display or str(path))
    return check_feeds_document(document, path)


def check_feeds_document(document: YamlDocument, path: Path | None = None) -> LoadedFeeds:
    diagnostics = list(document.diagnostics)
    root = document.root
    if root is None:
        return _resolved(BUILTIN_FEEDS, {}, FeedAlerts(), path, diagnostics)
    try:
        model = FeedsFile.model_validate(root.to_python())
    except ValidationError as exc:
        diagnostics.extend(validation_diagnostics(exc, root, document.path, FeedsFile))
        return _resolved(BUILTIN_FEEDS, {}, FeedAlerts(), path, diagnostics)
    diagnostics.extend(_check_meaning(model, root, document.path))
    if diagnostics:
        return _resolved(BUILTIN_FEEDS, {}, FeedAlerts(), path, diagnostics)
    return _resolved({**BUILTIN_FEEDS, **model.feeds}, model.services, model.alerts, path, [])


def _resolved(
    feeds: Mapping[str, Feed],
    services: Mapping[str, ServiceSettings],
    alerts: FeedAlerts,
    path: Path | None,
    diagnostics: list[Diagnostic],
) -> LoadedFeeds:
    return LoadedFeeds(
        {name: ResolvedFeed(name, feed) for name, feed in feeds.items()}, services, alerts, path, diagnostics
    )


def _span(node: YamlNode | None, file: str) -> Span:
    return node.span(file) if node is not None else Span.point(file, 1, 1)


def _check_meaning(model: FeedsFile, root: YamlNode, file: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    feeds_node = root.get("feeds")
    for kind_name in model.services:
        if kind_name not in FEED_KINDS:
            node = root.get("services")
            key_node = node.items[kind_name][0] if node is not None and node.kind == "map" else None
            out.append(
                Diagnostic(
                    "FEED001",
                    f"unknown service '{kind_name}'{did_you_mean(kind_name, FEED_KINDS)}",
                    _span(key_node, file),
                )
            )
    for name, feed in model.feeds.items():
        node = feeds_node.get(name) if feeds_node is not None else None
        out.extend(_check_feed(name, feed, node, model, file))
    return out


def _check_feed(
    name: str, feed: Feed, node: YamlNode | None, model: FeedsFile, file: str
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    source_node = node.get("source") if node is not None else None
    kinds: list[FeedKind] = []
    for kind_name in feed.sources():
        kind = FEED_KINDS.get(kind_name)
        if kind is None:
            out.append(
                Diagnostic(
                    "FEED001",
                    f"feed '{name}': unknown source '{kind_name}'{did_you_mean(kind_name, FEED_KINDS)} "
                    f"(sources: {', '.join(FEED_KINDS)})",
                    _span(source_node, file),
                )
            )
        else:
            kinds.append(kind)
    if not kinds:
        return out
    if len({k.per_pair for k in kinds}) > 1 or (len(kinds) > 1 and any(k.members is None for k in kinds)):
        out.append(
            Diagnostic(
                "FEED002",
                f"feed '{name}': these sources cannot back each other up (per-pair and global series, or "
                "sources with their own columns, do not mix in one fallback chain)",
                _span(source_node, file),
            )
        )
    given = {key for key, value in feed.model_dump(exclude_none=True).items() if key not in COMMON_KEYS}
    accepted = frozenset().union(*(k.params() for k in kinds))
    for key in sorted(given - accepted):
        key_node = node.items[key][0] if node is not None and key in node.items else None
        takes = ", ".join(sorted(accepted)) or "none"
        out.append(
            Diagnostic(
                "FEED003",
                f"feed '{name}': '{key}' is not used by {'/'.join(k.name for k in kinds)} (it takes: {takes})",
                _span(key_node, file),
            )
        )
    for kind in kinds:
        for key in sorted(kind.required - given):
            out.append(
                Diagnostic(
                    "FEED004",
                    f"feed '{name}': source {kind.name} needs '{key}' (see docs/feeds.md#{kind.name})",
                    _span(node, file),
                )
            )
        if kind.name == "http_json":
            out.extend(_check_key_use(name, feed, node, model, file))
            if feed.time_unit is not None and feed.time_unit not in ("s", "ms", "iso"):
                unit_node = (
                    node.items["time_unit"][1] if node is not None and "time_unit" in node.items else None
                )
                out.append(
                    Diagnostic(
                        "FEED007",
                        f"feed '{name}': time_unit '{feed.time_unit}' is not one of s, ms, iso "
                        "(leave it out to guess from the values)",
                        _span(unit_node, file),
                    )
                )
        if kind.key == "required" and (model.services.get(kind.name) or ServiceSettings()).key is None:
            out.append(
                Diagnostic(
                    "FEED005",
                    f"feed '{name}': source {kind.name} needs an API key: add services: {{{kind.name}: "
                    f"{{key: env:VARIABLE}}}} (or store:NAME)",
                    _span(source_node, file),
                )
            )
    return out


def _check_key_use(
    name: str, feed: Feed, node: YamlNode | None, model: FeedsFile, file: str
) -> list[Diagnostic]:
    """An http_json key must be sent somewhere, and where one is sent a key must exist."""
    placeholders = [v for v in (*(feed.query or {}).values(), *(feed.headers or {}).values()) if "{key}" in v]
    sends = bool(feed.key_param or feed.key_header or placeholders)
    has_key = feed.key is not None or (model.services.get("http_json") or ServiceSettings()).key is not None
    if feed.key is not None and not sends:
        key_node = node.items["key"][0] if node is not None and "key" in node.items else None
        return [
            Diagnostic(
                "FEED006",
                f"feed '{name}': 'key' is sent nowhere: add key_param: NAME (query), key_header: NAME, or "
                "{key} in a query/headers value",
                _span(key_node, file),
            )
        ]
    if sends and not has_key:
        return [
            Diagnostic(
                "FEED006",
                f"feed '{name}': it sends a key but none is set: add key: env:VARIABLE to the feed (or "
                "services: {http_json: {key: env:VARIABLE}})",
                _span(node, file),
            )
        ]
    return []


def feeds_document_kind(document: YamlDocument) -> bool:
    root = document.root
    return root is not None and root.kind == "map" and "feeds" in root.items
