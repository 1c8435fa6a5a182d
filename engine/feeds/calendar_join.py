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
    epochs = np.unique(events.available_at)
    epoch_of = np.searchsorted(epochs, times, side="right") - 1
    order = np.argsort(epoch_of, kind="stable")
    sorted_epochs = epoch_of[order]
    # times[order[cuts[j]:cuts[j + 1]]] are the decision times that see schedule j.
    cuts = np.searchsorted(sorted_epochs, np.arange(len(epochs) + 1), side="left")
    row_cuts = [*np.searchsorted(events.available_at, epochs, side="left").tolist(), len(events)]
    state: dict[int, float] = {}
    for j in range(len(epochs)):
        new: dict[int, float] = {}
        for row in range(row_cuts[j], row_cuts[j + 1]):
            when = int(events.event_time[row])
            new[when] = max(new.get(when, 0.0), float(events.value[row]))
        state.update(new)
        picked = order[cuts[j] : cuts[j + 1]]
        if picked.size == 0:
            continue
        active = sorted((t, v) for t, v in state.items() if v > 0)
        if not active:
            continue
        when = np.fromiter((t for t, _ in active), np.int64, len(active))
        weight = np.fromiter((v for _, v in active), np.float64, len(active))
        at = times[picked]
        index = np.searchsorted(when, at, side="right")
        if member == "hours_since_last":
            has = index > 0
            out[picked[has]] = (at[has] - when[index[has] - 1]) / _HOUR_NS
        else:
            has = index < len(when)
            if member == "hours_to_next":
                out[picked[has]] = (when[index[has]] - at[has]) / _HOUR_NS
            else:
                out[picked[has]] = weight[index[has]]
    return out
