"""News sentiment, news counts and events as rule namespaces (provider listed in PROVIDER_MODULES):

    sentiment.btc.score        time-decayed mean score (half-life from sentiment.yaml, default 6h)
    sentiment.btc.score_1h     ... with a 1 h half-life (also score_24h)
    news.btc.count_1h          items that became known in the last hour (also count_24h)
    events.eth.hack_24h        1 if a hack/exploit on ETH became known in the last 24 h, else 0
                               (any type of the taxonomy; windows 1h, 24h, 7d; any_24h for any type)

``all`` is every item (``sentiment.all.score``). Values are joined at each candle's close from the
point-in-time store, so a backtest sees exactly what a live bot saw (engine/sentiment/series.py).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from dsl import DiagnosticError, FeedSpec, Registry
from dsl.timeframes import parse_duration, timeframe_seconds
from dsl.types import NUMBER, Type
from engine.config._project import Project
from engine.feeds.join import decision_times
from engine.feeds.observations import NS_PER_SECOND, SeriesArrays
from engine.sentiment.events import EVENT_TYPES
from engine.sentiment.series import count_within, decayed_score

__all__ = ["register"]

_COIN = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_WINDOWS = ("1h", "24h", "7d")
_EVENT_MEMBERS = tuple(f"{kind}_{w}" for kind in (*EVENT_TYPES, "any") for w in _WINDOWS)
_NEWS_MEMBERS = ("count_1h", "count_24h")
_SENTIMENT_MEMBERS = ("score", "score_1h", "score_24h")


def _times(ctx: Any) -> np.ndarray:
    index = ctx.candles.index
    # as_unit: pandas 3 builds microsecond indexes (date_range, to_datetime); the store is in ns.
    opens = (
        index.as_unit("ns").asi8 if isinstance(index, pd.DatetimeIndex) else np.asarray(index, dtype=np.int64)
    )
    return decision_times(opens, timeframe_seconds(ctx.timeframe) * NS_PER_SECOND)


def _resolver(members: tuple[str, ...], namespace: str):
    def resolve(path: tuple[str, ...]) -> Type:
        if len(path) != 2:
            raise KeyError(f"write {namespace}.<coin>.<member>, e.g. {namespace}.btc.{members[0]}")
        coin, member = path
        if not _COIN.match(coin):
            raise KeyError(f"'{coin}' is not a coin ticker in lower case (btc, eth, sol, all)")
        if member not in members:
            raise KeyError(f"unknown member '{member}' (has: {', '.join(members)})")
        return NUMBER

    return resolve


def _reader(ctx: Any):
    user = ctx.user
    return None if user is None else getattr(user, "reader", None)


def _merge(series: list[SeriesArrays]) -> SeriesArrays:
    parts = [s for s in series if len(s)]
    if not parts:
        return SeriesArrays.empty()
    event = np.concatenate([p.event_time for p in parts])
    available = np.concatenate([p.available_at for p in parts])
    value = np.concatenate([p.value for p in parts])
    order = np.lexsort((event, available))
    return SeriesArrays(event[order], available[order], value[order])


def _sentiment(half_life_s: int, max_age_s: int) -> FeedSpec:
    def impl(path: tuple[str, ...], ctx: Any) -> np.ndarray:
        reader = _reader(ctx)
        if reader is None:
            return np.full(len(ctx.candles), np.nan)
        coin, member = path
        half = {"score": half_life_s, "score_1h": 3600, "score_24h": 86400}[member]
        return decayed_score(
            _times(ctx),
            reader.series(f"news.{coin}.item"),
            reader.series(f"news.{coin}.revision"),
            half * NS_PER_SECOND,
            max_age_s * NS_PER_SECOND,
        )

    return FeedSpec(
        name="sentiment",
        resolve=_resolver(_SENTIMENT_MEMBERS, "sentiment"),
        impl=impl,
        members=lambda: tuple(f"<coin>.{m}" for m in _SENTIMENT_MEMBERS),
        doc="News sentiment per coin in [-1, 1]: time-decayed mean of item scores (local, or the model's "
        "from when it answered), NaN without recent news. See docs/sentiment.md.",
        example="sentiment.btc.score",
    )


def _news() -> FeedSpec:
    def impl(path: tuple[str, ...], ctx: Any) -> np.ndarray:
        reader = _reader(ctx)
        if reader is None:
            return np.full(len(ctx.candles), np.nan)
        coin, member = path
        window = parse_duration(member.split("_", 1)[1]) * NS_PER_SECOND
        return count_within(_times(ctx), reader.series(f"news.{coin}.item"), window)

    return FeedSpec(
        name="news",
        resolve=_resolver(_NEWS_MEMBERS, "news"),
        impl=impl,
        members=lambda: tuple(f"<coin>.{m}" for m in _NEWS_MEMBERS),
        doc="Number of news items about a coin that became known in the last hour / 24 hours.",
        example="news.btc.count_1h",
    )


def _events() -> FeedSpec:
    def impl(path: tuple[str, ...], ctx: Any) -> np.ndarray:
        reader = _reader(ctx)
        if reader is None:
            return np.full(len(ctx.candles), np.nan)
        coin, member = path
        kind, window = member.rsplit("_", 1)
        kinds = list(EVENT_TYPES) if kind == "any" else [kind]
        series = _merge([reader.series(f"events.{coin}.{k}") for k in kinds])
        counts = count_within(_times(ctx), series, parse_duration(window) * NS_PER_SECOND)
        return (counts > 0).astype(np.float64)

    return FeedSpec(
        name="events",
        resolve=_resolver(_EVENT_MEMBERS, "events"),
        impl=impl,
        members=lambda: tuple(f"<coin>.{m}" for m in _EVENT_MEMBERS),
        doc="1 when an event of the type (" + ", ".join(EVENT_TYPES) + ", or any) about the coin became "
        "known within the window (1h, 24h, 7d), else 0.",
        example="events.eth.hack_24h",
    )


def register(registry: Registry, project: Project) -> None:
    from engine.sentiment.config import load_sentiment_config

    try:
        config = load_sentiment_config(project.root)
    except DiagnosticError:
        # `engine validate` reports sentiment.yaml's errors; rules still compile with the defaults.
        from engine.sentiment.config import SentimentConfig

        config = SentimentConfig()
    specs = (_sentiment(config.seconds("half_life"), config.seconds("max_age")), _news(), _events())
    for spec in specs:
        if spec.name not in registry.feeds:
            registry.add_feed(spec)
