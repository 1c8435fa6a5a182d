"""News items as point-in-time observations, and the per-candle aggregates rules read from them.

Stored per coin (and under ``all`` for every item), in the feeds' PitStore:
- ``news.<coin>.item``: the item's local score; event_time = published_at, available_at = the item's
  ``available_at`` (published + ingest lag, or the live fetch).
- ``news.<coin>.revision``: model score minus local score, available from the model's answer time.
- ``events.<coin>.<type>``: 1.0 per event; available with the item (keyword rules) or from the model's
  answer (types only the model found).
The item's id is added to event_time in nanoseconds so two items published in the same second stay two
observations (the store keeps one row per series, event_time and value).

Aggregates at a decision time t use only observations with available_at <= t (the as-of rule):
- ``score``: time-decayed mean of item scores (weights halve every ``half_life`` of age since
  publication), each item's model revision included once it was known; NaN without an item in ``max_age``;
- ``count_<w>``: items that became known in (t - w, t]; ``<type>_<w>``: 1.0 if such an event did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.feeds.observations import Observation, SeriesArrays

if TYPE_CHECKING:  # annotations only: rule compilation (the sentiment namespace) need not load the ORM
    from engine.store.models import NewsItem as NewsRow

__all__ = ["ALL", "count_within", "decayed_score", "item_observations", "model_observations"]

ALL = "all"
SOURCE = "sentiment"


def _coins(row: NewsRow) -> list[str]:
    return [*row.coins, ALL]


def item_observations(row: NewsRow) -> list[Observation]:
    event_time = row.published_at + row.id % 1_000_000
    available = max(row.available_at, event_time)
    out = []
    for coin in _coins(row):
        out.append(Observation(f"news.{coin}.item", event_time, available, float(row.local_score), SOURCE))
        out.extend(
            Observation(f"events.{coin}.{kind}", event_time, available, 1.0, SOURCE) for kind in row.events
        )
    return out


def model_observations(
    row: NewsRow, score: float, answered_at: int, new_events: Sequence[str]
) -> list[Observation]:
    event_time = row.published_at + row.id % 1_000_000
    # Never before the item itself: the model may answer before the ingest lag has passed.
    available = max(answered_at, row.available_at, event_time)
    out = []
    for coin in _coins(row):
        delta = float(score) - float(row.local_score)
        out.append(Observation(f"news.{coin}.revision", event_time, available, delta, SOURCE))
        out.extend(
            Observation(f"events.{coin}.{kind}", event_time, available, 1.0, SOURCE) for kind in new_events
        )
    return out


# Weights are powers of two of (event_time / half_life); within a segment of the data they are taken
# relative to the segment's newest item, and a segment spans at most this many half-lives, so no weight
# of an item that matters overflows or underflows.
_SEGMENT_HALF_LIVES = 200.0


def decayed_score(
    times: np.ndarray, items: SeriesArrays, revisions: SeriesArrays, half_life_ns: int, max_age_ns: int
) -> np.ndarray:
    """At each decision time (int64 ns): the decayed mean described in the module docstring.

    The weight of an item at time t is 2^-((t - e)/h); in the ratio the factor 2^-(t/h) cancels, so the
    mean only changes when an observation becomes known: cumulative sums over the observations in
    order of availability, read at each time with one binary search (vectorised, no loop over candles).
    """
    times = np.asarray(times, dtype=np.int64)
    out = np.full(len(times), np.nan)
    if len(items) == 0 or len(times) == 0:
        return out
    known = np.concatenate([items.available_at, revisions.available_at])
    event = np.concatenate([items.event_time, revisions.event_time])
    value = np.concatenate([items.value, revisions.value]).astype(np.float64)
    is_item = np.concatenate([np.ones(len(items)), np.zeros(len(revisions))])
    order = np.argsort(known, kind="stable")
    known, event, value, is_item = known[order], event[order], value[order], is_item[order]
    x = event.astype(np.float64) / float(half_life_ns)
    num = np.empty(len(x))
    den = np.empty(len(x))
    carry_num = carry_den = 0.0
    start, ref_prev = 0, None
    while start < len(x):
        # A segment: observations whose (running) newest time stays within the segment's span.
        newest = np.maximum.accumulate(x[start:])
        end = start + int(np.searchsorted(newest, newest[0] + _SEGMENT_HALF_LIVES, side="right"))
        ref = float(newest[end - start - 1])
        if ref_prev is not None:
            scale = float(np.exp2(ref_prev - ref))
            carry_num, carry_den = carry_num * scale, carry_den * scale
        weight = np.exp2(x[start:end] - ref)
        num[start:end] = carry_num + np.cumsum(weight * value[start:end])
        den[start:end] = carry_den + np.cumsum(weight * is_item[start:end])
        carry_num, carry_den, ref_prev, start = float(num[end - 1]), float(den[end - 1]), ref, end
    newest_item = np.maximum.accumulate(np.where(is_item > 0, event, np.iinfo(np.int64).min))
    k = np.searchsorted(known, times, side="right") - 1
    seen = k >= 0
    kk = k[seen]
    has_item = newest_item[kk] > np.iinfo(np.int64).min
    age = times[seen].astype(np.float64) - newest_item[kk].astype(np.float64)
    fresh = has_item & (age <= max_age_ns) & (den[kk] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(num[kk] / den[kk], -1.0, 1.0)
    out[np.flatnonzero(seen)[fresh]] = ratio[fresh]
    return out


def count_within(times: np.ndarray, series: SeriesArrays, window_ns: int) -> np.ndarray:
    """Observations that became known in (t - window, t] for each decision time t."""
    known = series.available_at
    upto = np.searchsorted(known, times, side="right")
    before = np.searchsorted(known, times - window_ns, side="right")
    return (upto - before).astype(np.float64)
