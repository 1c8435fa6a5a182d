"""The one as-of join between candles and point-in-time series, shared by backtests and live bots.

At a decision time ``t`` (a candle's close) a rule sees the last observation with ``available_at <= t``
and nothing newer; an observation whose ``event_time`` is more than ``max_age`` before ``t`` is stale and
reads as NaN, so a rule on it is false.

Candle closes arrive sorted, so the join is one merge pass over both arrays (compiled with numba, cached
on disk): linear in candles plus observations, about 10 ns a candle. Unsorted times take a NumPy path
with the same result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from engine.feeds.observations import SeriesArrays

__all__ = ["asof", "decision_times"]

_NO_MAX_AGE = np.iinfo(np.int64).max


def decision_times(open_times_ns: np.ndarray, timeframe_ns: int) -> np.ndarray:
    """Candle open times -> the moments their signals are decided (the close)."""
    return np.asarray(open_times_ns, dtype=np.int64) + np.int64(timeframe_ns)


def asof(times_ns: np.ndarray, series: SeriesArrays, max_age_ns: int | None) -> np.ndarray:
    """The value of ``series`` known at each of ``times_ns`` (sorted or not), NaN where none is.

    Among the observations known at ``t``, the one describing the latest ``event_time`` wins, and of
    several for that time (revisions) the one that became known last; a late revision of an older point
    never hides a newer point."""
    times = np.ascontiguousarray(times_ns, dtype=np.int64)
    if len(series) == 0 or times.size == 0:
        return np.full(times.shape, np.nan)
    limit = _NO_MAX_AGE if max_age_ns is None else int(max_age_ns)
    if times.size < 2 or bool(np.all(times[1:] >= times[:-1])):
        return _merge(
            times,
            np.ascontiguousarray(series.available_at, dtype=np.int64),
            np.ascontiguousarray(series.event_time, dtype=np.int64),
            np.ascontiguousarray(series.value, dtype=np.float64),
            limit,
        )
    return _search(times, series, limit)


def _merge(
    times: np.ndarray, available: np.ndarray, event: np.ndarray, value: np.ndarray, max_age: int
) -> np.ndarray:
    return _compiled_merge()(times, available, event, value, max_age)


@functools.cache
def _compiled_merge() -> Callable[..., np.ndarray]:
    # numba is imported on the first join, not with this module: compiling rules (every command that
    # loads a project registry) then skips its ~0.2 s import.
    from numba import njit

    return njit(cache=True, nogil=True)(_merge_loop)


def _merge_loop(
    times: np.ndarray, available: np.ndarray, event: np.ndarray, value: np.ndarray, max_age: int
) -> np.ndarray:
    out = np.empty(times.size)
    n = available.size
    j = 0
    best = -1
    for i in range(times.size):
        t = times[i]
        while j < n and available[j] <= t:
            # The latest event wins; at an equal event time the later row is a revision.
            if best < 0 or event[j] >= event[best]:
                best = j
            j += 1
        if best < 0 or t - event[best] > max_age:
            out[i] = np.nan
        else:
            out[i] = value[best]
    return out


def _search(times: np.ndarray, series: SeriesArrays, max_age_ns: int) -> np.ndarray:
    out = np.full(times.shape, np.nan)
    index = np.searchsorted(series.available_at, times, side="right") - 1
    known = index >= 0
    picked = _best_so_far(series.event_time)[np.where(known, index, 0)]
    out[known] = series.value[picked[known]]
    stale = known & (times - series.event_time[picked] > max_age_ns)
    out[stale] = np.nan
    return out


def _best_so_far(event_time: np.ndarray) -> np.ndarray:
    """For each prefix of the available_at-sorted observations, the index of the one with the latest
    event_time (ties: the later row, a revision)."""
    is_best = event_time >= np.maximum.accumulate(event_time)
    return np.maximum.accumulate(np.where(is_best, np.arange(len(event_time)), 0))
