"""Stored news for the web app: the recent items of a coin (the ``/news`` page and ``GET /news``) and the
sentiment a bot's rules saw at each candle of its chart (the panel under the bot chart).

News is untrusted input. Titles, sources and URLs are passed on as data: pages put them in text
nodes (Vue interpolation, never ``v-html``), and a link is only kept when it is an http(s) URL, so
a ``javascript:`` or ``data:`` URL in a feed never becomes a clickable ``href``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.feeds.join import decision_times
from engine.feeds.observations import NS_PER_SECOND, Observation, SeriesArrays, to_arrays
from engine.sentiment.events import EVENT_TYPES
from engine.sentiment.newsstore import recent_items
from engine.sentiment.series import count_within, decayed_score
from engine.store.models import FeedObservation
from engine.store.models import NewsItem as NewsRow

__all__ = [
    "COIN_SAMPLE",
    "NEWS_ROWS",
    "NewsLine",
    "SentimentTrack",
    "load_news",
    "load_sentiment_track",
    "news_coins",
    "news_line",
    "pair_coin",
    "safe_link",
    "sentiment_chart",
    "sentiment_settings",
    "stored_news",
]

NEWS_ROWS = 100
COIN_SAMPLE = 2000  # the coins offered on the page are those of this many newest items


def safe_link(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL with a host, else None (no link is made of it)."""
    if not url or len(url) > 2000 or any(ord(c) < 33 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def _utc(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / NS_PER_SECOND, UTC)


@dataclass(frozen=True, slots=True)
class NewsLine:
    id: int
    published: datetime
    known: datetime  # when a running bot could know it (available_at)
    source: str
    also_from: tuple[str, ...]
    title: str
    link: str | None  # http(s) only
    coins: tuple[str, ...]
    score: float  # the model's where it answered, else the local score
    scored_by: str  # local | model
    local_score: float
    model_score: float | None
    model_status: str
    events: tuple[str, ...]


def news_line(row: NewsRow) -> NewsLine:
    by_model = row.model_score is not None
    return NewsLine(
        id=row.id,
        published=_utc(row.published_at) or datetime.now(UTC),
        known=_utc(max(row.available_at, row.published_at)) or datetime.now(UTC),
        source=row.source,
        also_from=tuple(row.also_from),
        title=row.title,
        link=safe_link(row.url),
        coins=tuple(row.coins),
        score=float(row.model_score if by_model else row.local_score),
        scored_by="model" if by_model else "local",
        local_score=float(row.local_score),
        model_score=None if row.model_score is None else float(row.model_score),
        model_status=row.model_status,
        events=tuple(e for e in row.events if e in EVENT_TYPES),
    )


async def load_news(db: AsyncSession, coin: str | None = None, limit: int = NEWS_ROWS) -> list[NewsLine]:
    """The newest ``limit`` items (about ``coin`` when given), newest first."""
    rows = await recent_items(db, coin=coin or None, limit=limit)
    return [news_line(row) for row in rows]


async def news_coins(db: AsyncSession) -> list[str]:
    """The coins of the newest items, most mentioned first (the page's choice of coin)."""
    rows = await db.execute(select(NewsRow.coins).order_by(NewsRow.published_at.desc()).limit(COIN_SAMPLE))
    counts: dict[str, int] = {}
    for (coins,) in rows:
        for coin in coins:
            counts[coin] = counts.get(coin, 0) + 1
    return sorted(counts, key=lambda c: (-counts[c], c))


async def stored_news(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(NewsRow)) or 0)


def pair_coin(pair: str) -> str:
    """The coin a pair trades: ``ETH/BTC`` -> ``eth`` (its news is the bot's news)."""
    return pair.split("/")[0].split(":")[0].strip().lower()


def sentiment_settings(root: Path) -> tuple[bool, int, int]:
    """(the project has a sentiment.yaml, half-life s, max age s) as the rules use them; a broken file
    counts as configured with the defaults (``engine validate`` reports its errors)."""
    from dsl import DiagnosticError
    from engine.sentiment.config import SENTIMENT_FILE, SentimentConfig, load_sentiment_config

    configured = (root / SENTIMENT_FILE).is_file()
    try:
        config = load_sentiment_config(root)
    except DiagnosticError:
        config = SentimentConfig()
    return configured, config.seconds("half_life"), config.seconds("max_age")


@dataclass(frozen=True, slots=True)
class SentimentTrack:
    """Per candle of the chart: the decayed score the bot's rules saw at its close, the items and the
    events about the coin that became known during it."""

    coin: str
    labels: list[str]
    score: list[float | None]
    items: list[int]
    events: list[tuple[str, ...]]


async def _coin_series(db: AsyncSession, coin: str, until: int) -> dict[str, SeriesArrays]:
    """The coin's item, revision and event series known by ``until``, in one query."""
    names = [f"news.{coin}.item", f"news.{coin}.revision", *(f"events.{coin}.{k}" for k in EVENT_TYPES)]
    obs = FeedObservation
    rows = await db.execute(
        select(obs.series, obs.event_time, obs.available_at, obs.value).where(
            obs.series.in_(names), obs.available_at <= until
        )
    )
    found: dict[str, list[Observation]] = {}
    for series, event_time, available, value in rows.all():
        found.setdefault(series, []).append(
            Observation(series, int(event_time), int(available), float(value), "")
        )
    return {name: to_arrays(found.get(name, ())) for name in names}


async def load_sentiment_track(
    db: AsyncSession, coin: str, labels: list[str], half_life_s: int, max_age_s: int
) -> SentimentTrack | None:
    """The track for the chart's candles (``labels``: open times ``%Y-%m-%d %H:%M`` UTC, as the bot
    chart writes them); None when nothing about the coin is stored up to the last candle."""
    if len(labels) < 2:
        return None
    opens = np.array([np.datetime64(label.replace(" ", "T"), "ns") for label in labels]).astype(np.int64)
    step = int(np.median(np.diff(opens)))
    closes = decision_times(opens, step)
    until = int(closes[-1])
    series = await _coin_series(db, coin, until)
    items, revisions = series[f"news.{coin}.item"], series[f"news.{coin}.revision"]
    if len(items) == 0:
        return None
    kinds = {kind: series[f"events.{coin}.{kind}"] for kind in EVENT_TYPES}
    # The arithmetic over the coin's whole history runs in a worker thread, off the page's event loop.
    return await asyncio.to_thread(
        _track, coin, labels, closes, step, items, revisions, kinds, half_life_s, max_age_s
    )


def _track(
    coin: str,
    labels: list[str],
    closes: np.ndarray,
    step: int,
    items: SeriesArrays,
    revisions: SeriesArrays,
    kinds: dict[str, SeriesArrays],
    half_life_s: int,
    max_age_s: int,
) -> SentimentTrack:
    score = decayed_score(closes, items, revisions, half_life_s * NS_PER_SECOND, max_age_s * NS_PER_SECOND)
    per_candle = count_within(closes, items, step).astype(int)
    seen = {kind: count_within(closes, arrays, step) for kind, arrays in kinds.items() if len(arrays)}
    events = [tuple(kind for kind, counts in seen.items() if counts[i] > 0) for i in range(len(closes))]
    return SentimentTrack(
        coin,
        labels,
        [None if np.isnan(v) else round(float(v), 4) for v in score],
        [int(n) for n in per_candle],
        events,
    )


def sentiment_chart(track: SentimentTrack) -> dict[str, Any]:
    """ECharts options: the score line in [-1, 1] and a marker on each candle during which news about
    the coin became known (bigger with more items; named by the events among them). Only numbers and
    the taxonomy's event names go into the chart: no headline reaches a tooltip."""
    news, events = [], []
    for i, label in enumerate(track.labels):
        if track.items[i]:
            y = track.score[i] if track.score[i] is not None else 0.0
            point = {
                "name": f"{track.items[i]} item{'s' if track.items[i] > 1 else ''}",
                "value": [label, y],
                "symbolSize": min(6 + 2 * track.items[i], 18),
            }
            news.append(point)
            if track.events[i]:
                events.append({"name": ", ".join(track.events[i]), "value": [label, y]})
    return {
        "animation": False,
        "title": {"text": f"News sentiment · {track.coin.upper()}", "left": 0, "textStyle": {"fontSize": 13}},
        "legend": {"top": 0, "left": 190, "data": ["sentiment", "news", "events"]},
        "tooltip": {"trigger": "item"},
        "grid": {"left": 70, "right": 30, "top": 35, "bottom": 30},
        "xAxis": {"type": "category", "data": track.labels},
        "yAxis": {"type": "value", "min": -1, "max": 1},
        "dataZoom": [{"type": "inside"}],
        "series": [
            {
                "type": "line",
                "name": "sentiment",
                "showSymbol": False,
                "connectNulls": False,
                "data": track.score,
                "markLine": {"silent": True, "symbol": "none", "data": [{"yAxis": 0}]},
            },
            {"type": "scatter", "name": "news", "symbol": "circle", "data": news},
            {"type": "scatter", "name": "events", "symbol": "pin", "symbolSize": 22, "data": events},
        ],
    }
