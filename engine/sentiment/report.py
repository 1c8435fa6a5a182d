"""News against prices: correlation of sentiment with forward returns at several horizons, and an event
study (forward returns after each event type, with counts and confidence intervals).

Everything is measured at candle closes with the same point-in-time join the rules use: the sentiment
at a close is what a bot could have known then, and an event counts from the first close at or after
it became known. The caveats that make these numbers weak evidence are part of the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.feeds.join import decision_times
from engine.feeds.observations import NS_PER_SECOND, SeriesArrays
from engine.sentiment.events import EVENT_TYPES
from engine.sentiment.series import decayed_score

__all__ = ["CAVEATS", "Correlation", "EventStat", "NewsReport", "analyse"]

CAVEATS = (
    "Few events: a type with fewer than about 30 occurrences gives a wide interval; read the counts.",
    "Overlapping windows: forward returns of neighbouring candles share most of their path, so they are "
    "not independent and the correlation's significance is overstated (no autocorrelation correction).",
    "Events cluster: several stories about one event count as several events unless they fall on the "
    "same candle.",
    "Many comparisons: with 9 event types and 4 horizons, a few intervals will exclude zero by chance.",
    "Correlation is not a strategy: costs, slippage and the time news takes to reach you are not in it.",
)


@dataclass(frozen=True, slots=True)
class Correlation:
    horizon: int  # candles ahead
    n: int
    pearson: float
    spearman: float


@dataclass(frozen=True, slots=True)
class EventStat:
    event: str
    horizon: int
    count: int
    mean: float
    median: float
    low: float  # 95% interval of the mean (t distribution)
    high: float


@dataclass
class NewsReport:
    coin: str
    timeframe: str
    candles: int
    items: int
    horizons: tuple[int, ...]
    correlations: list[Correlation]
    events: list[EventStat]
    baseline: dict[int, float]  # mean forward return over all closes, per horizon
    sentiment: np.ndarray = field(repr=False)
    event_times: dict[str, list[int]] = field(default_factory=dict, repr=False)
    generated: bool = False  # the series came from `engine sentiment synth`
    caveats: tuple[str, ...] = CAVEATS


def forward_returns(close: np.ndarray, horizon: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    if horizon < len(close):
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def _rank(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rank().to_numpy()


def _interval(values: np.ndarray) -> tuple[float, float]:
    if len(values) < 2:
        return (math.nan, math.nan)
    from scipy.stats import t

    half = float(t.ppf(0.975, len(values) - 1)) * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    mean = float(np.mean(values))
    return mean - half, mean + half


def analyse(
    candles: pd.DataFrame,
    timeframe: str,
    series: Mapping[str, SeriesArrays],
    *,
    coin: str,
    half_life_s: int,
    max_age_s: int,
    horizons: Sequence[int] = (1, 4, 12, 24),
    generated: bool = False,
) -> NewsReport:
    """``series``: the stored ``news.<coin>.item``, ``news.<coin>.revision`` and ``events.<coin>.<type>``."""
    from dsl.timeframes import timeframe_seconds

    opens = candles.index.as_unit("ns").asi8
    closes_at = decision_times(opens, timeframe_seconds(timeframe) * NS_PER_SECOND)
    close = candles["close"].to_numpy(dtype=np.float64)
    items = series.get(f"news.{coin}.item", SeriesArrays.empty())
    revisions = series.get(f"news.{coin}.revision", SeriesArrays.empty())
    score = decayed_score(closes_at, items, revisions, half_life_s * NS_PER_SECOND, max_age_s * NS_PER_SECOND)
    correlations: list[Correlation] = []
    baseline: dict[int, float] = {}
    for h in horizons:
        forward = forward_returns(close, h)
        both = np.isfinite(score) & np.isfinite(forward)
        baseline[h] = float(np.nanmean(forward)) if np.isfinite(forward).any() else math.nan
        n = int(both.sum())
        if n < 3 or np.std(score[both]) == 0 or np.std(forward[both]) == 0:
            correlations.append(Correlation(h, n, math.nan, math.nan))
            continue
        pearson = float(np.corrcoef(score[both], forward[both])[0, 1])
        spearman = float(np.corrcoef(_rank(score[both]), _rank(forward[both]))[0, 1])
        correlations.append(Correlation(h, n, pearson, spearman))
    events: list[EventStat] = []
    event_times: dict[str, list[int]] = {}
    for kind in EVENT_TYPES:
        known = series.get(f"events.{coin}.{kind}", SeriesArrays.empty()).available_at
        if not len(known):
            continue
        # The first close at or after the event became known; one count per candle.
        rows = np.unique(np.searchsorted(closes_at, known, side="left"))
        rows = rows[rows < len(close)]
        event_times[kind] = [int(closes_at[r]) for r in rows]
        for h in horizons:
            values = forward_returns(close, h)[rows]
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            low, high = _interval(values)
            events.append(
                EventStat(kind, h, len(values), float(np.mean(values)), float(np.median(values)), low, high)
            )
    return NewsReport(
        coin=coin,
        timeframe=timeframe,
        candles=len(candles),
        items=int(np.sum((items.available_at >= closes_at[0]) & (items.available_at <= closes_at[-1])))
        if len(items) and len(closes_at)
        else 0,
        horizons=tuple(horizons),
        correlations=correlations,
        events=events,
        baseline=baseline,
        sentiment=score,
        event_times=event_times,
        generated=generated,
    )
