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

import numpy as np

from engine.feeds.observations import Observation, SeriesArrays
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
    available = max(answered_at, event_time)
    out = []
    for coin in _coins(row):
        delta = float(score) - float(row.local_score)
        out.append(Observation(f"news.{coin}.revision", event_time, available, delta, SOURCE))
        out.extend(
            Observation(f"events.{coin}.{kind}", event_time, available, 1.0, SOURCE) for kind in new_events
        )
    return out


def decayed_score(
    times: np.ndarray, items: SeriesArrays, revisions: SeriesArrays, half_life_ns: int, max_age_ns: int
) -> np.ndarray:
    """At each decision time (sorted int64 ns): the decayed mean described in the module docstring."""
    out = np.full(len(times), np.nan)
    if len(items) == 0 or len(times) == 0:
        return out
    # Weights relative to the first decision time keep the exponents small; the running sums are
    # rescaled whenever time advances, so nothing overflows over years of candles.
    rate = np.log(2.0) / float(half_life_ns)
    i = r = 0
    n_items, n_rev = len(items), len(revisions)
    num = den = 0.0
    last_time = int(times[0])
    newest_event = None
    for k in range(len(times)):
        t = int(times[k])
        if t != last_time:
            factor = np.exp(-rate * (t - last_time))
            num *= factor
            den *= factor
            last_time = t
        while i < n_items and items.available_at[i] <= t:
            w = np.exp(-rate * (t - int(items.event_time[i])))
            num += w * float(items.value[i])
            den += w
            e = int(items.event_time[i])
            newest_event = e if newest_event is None else max(newest_event, e)
            i += 1
        while r < n_rev and revisions.available_at[r] <= t:
            num += np.exp(-rate * (t - int(revisions.event_time[r]))) * float(revisions.value[r])
            r += 1
        if newest_event is not None and t - newest_event <= max_age_ns and den > 0:
            out[k] = max(-1.0, min(1.0, num / den))
    return out


def count_within(times: np.ndarray, series: SeriesArrays, window_ns: int) -> np.ndarray:
    """Observations that became known in (t - window, t] for each decision time t."""
    known = series.available_at
    upto = np.searchsorted(known, times, side="right")
    before = np.searchsorted(known, times - window_ns, side="right")
    return (upto - before).astype(np.float64)
