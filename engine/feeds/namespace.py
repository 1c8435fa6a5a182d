"""The project's feeds as rule namespaces: ``fear_greed.value``, ``btc.dominance``, ``spx.close``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsl import FeedSpec, Registry
from dsl.timeframes import timeframe_seconds
from dsl.types import NUMBER, Type
from engine.config._feeds import ResolvedFeed
from engine.config._project import Project
from engine.feeds.calendar_join import CALENDAR_SERIES, calendar_values
from engine.feeds.join import asof, decision_times
from engine.feeds.observations import NS_PER_SECOND, series_key

__all__ = ["register", "series_for"]


def series_for(feed: ResolvedFeed, member: str, scope: str | None) -> str:
    if feed.kinds[0].name == "calendar":
        # Every calendar member is computed from the one stored schedule (engine/feeds/calendar_join.py).
        return series_key(feed.name, CALENDAR_SERIES)
    return series_key(feed.name, member, scope if feed.per_pair else None)


def _spec(feed: ResolvedFeed) -> FeedSpec:
    members = feed.members
    max_age_ns = int(feed.max_age_s * NS_PER_SECOND)
    calendar = feed.kinds[0].name == "calendar"

    def resolve(path: tuple[str, ...]) -> Type:
        if len(path) == 1 and path[0] in members:
            return NUMBER
        raise KeyError(f"unknown member (feed '{feed.name}' has: {', '.join(members)})")

    def impl(path: tuple[str, ...], ctx: Any) -> np.ndarray:
        candles: pd.DataFrame = ctx.candles
        user = ctx.user
        if user is None or getattr(user, "reader", None) is None:
            # Evaluated without a run's data (e.g. `engine eval`): nothing was known.
            return np.full(len(candles), np.nan)
        index = candles.index
        opens = (
            index.as_unit("ns").asi8
            if isinstance(index, pd.DatetimeIndex)
            else np.asarray(index, dtype=np.int64)
        )
        times = decision_times(opens, timeframe_seconds(ctx.timeframe) * NS_PER_SECOND)
        key = series_for(feed, path[0], user.scope)
        if calendar:
            return calendar_values(times, user.reader.series(key), path[0])
        return asof(times, user.reader.series(key), max_age_ns)

    sources = " / ".join(k.name for k in feed.kinds)
    return FeedSpec(
        name=feed.name,
        resolve=resolve,
        impl=impl,
        members=lambda: members,
        doc=f"{feed.model.description or feed.name}: from {sources}. {feed.kinds[0].doc}",
        example=f"{feed.name}.{members[0]}" if members else "",
    )


def register(registry: Registry, project: Project) -> None:
    for feed in project.feeds.feeds.values():
        if feed.name not in registry.feeds:
            registry.add_feed(_spec(feed))
