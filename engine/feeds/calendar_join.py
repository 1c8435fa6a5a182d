"""Calendar members at decision times: hours to the next scheduled event, hours since the last one,
and the next event's importance.

A calendar feed stores one observation per scheduled time in ``NAME.events``: ``event_time`` is the
scheduled time, ``available_at`` when the schedule became known (a calendar announces the future, so
it precedes the event), ``value`` its importance (0: cancelled). The hours are computed here at each
decision time ``t`` from the events known at ``t`` (``available_at <= t``; for a time listed more than
once, the row that became known last decides, so a cancellation or a changed importance applies from
when it was read). This is exact at every candle, whatever the timeframe, with one row per event.
"""

from __future__ import annotations

import bisect

import numpy as np

from engine.feeds.observations import NS_PER_SECOND, SeriesArrays

__all__ = ["CALENDAR_MEMBERS", "CALENDAR_SERIES", "calendar_values"]

CALENDAR_SERIES = "events"
CALENDAR_MEMBERS = ("hours_to_next", "hours_since_last", "importance_next")
_HOUR_NS = 3600 * NS_PER_SECOND


def calendar_values(times_ns: np.ndarray, events: SeriesArrays, member: str) -> np.ndarray:
    """``member`` at each of ``times_ns`` (sorted or not); NaN where no such event is known."""
    if member not in CALENDAR_MEMBERS:
        raise KeyError(member)
    times = np.asarray(times_ns, dtype=np.int64)
    out = np.full(times.shape, np.nan)
    if len(events) == 0 or times.size == 0:
        return out
    starts, next_at, last_at, next_weight = _segments(events)
    segment = np.searchsorted(starts, times, side="right") - 1
    seen = segment >= 0
    index = np.where(seen, segment, 0)
    if member == "hours_since_last":
        ok = seen & (last_at[index] >= 0)
        out[ok] = (times[ok] - last_at[index[ok]]) / _HOUR_NS
    elif member == "hours_to_next":
        ok = seen & (next_at[index] >= 0)
        out[ok] = (next_at[index[ok]] - times[ok]) / _HOUR_NS
    else:
        ok = seen & (next_at[index] >= 0)
        out[ok] = next_weight[index[ok]]
    return out


_CACHE: list[tuple[SeriesArrays, tuple[np.ndarray, ...]]] = []


def _segments(events: SeriesArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The calendar as a step function: between consecutive event and announcement times nothing
    changes, so for each such segment ``[start, next start)`` the next scheduled time after its start,
    the last one at or before it (-1: none) and the next one's importance. Computed once per series
    (a run evaluates three members on every pair from the same arrays)."""
    for cached, found in _CACHE:
        if cached is events:
            return found  # type: ignore[return-value]
    starts = np.unique(np.concatenate([events.event_time, events.available_at]))
    next_at = np.full(len(starts), -1, np.int64)
    last_at = np.full(len(starts), -1, np.int64)
    next_weight = np.zeros(len(starts))
    when: list[int] = []  # scheduled (not cancelled) times known so far, sorted
    weight: dict[int, float] = {}
    rows = sorted(
        zip(events.available_at.tolist(), events.event_time.tolist(), events.value.tolist(), strict=True)
    )
    row = 0
    for k, start in enumerate(starts.tolist()):
        batch: dict[int, float] = {}
        while row < len(rows) and rows[row][0] <= start:
            # Rows that became known together: for one time, the highest importance wins.
            _, at, value = rows[row]
            batch[at] = max(batch.get(at, 0.0), value)
            row += 1
        for at, value in batch.items():
            if value > 0:
                if at not in weight:
                    bisect.insort(when, at)
                weight[at] = value
            elif at in weight:  # cancelled
                del weight[at]
                when.remove(at)
        position = bisect.bisect_right(when, start)
        if position > 0:
            last_at[k] = when[position - 1]
        if position < len(when):
            next_at[k] = when[position]
            next_weight[k] = weight[when[position]]
    found = (starts, next_at, last_at, next_weight)
    _CACHE.insert(0, (events, found))
    del _CACHE[8:]
    return found
