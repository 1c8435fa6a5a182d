"""Point-in-time observations: what an external series said, for which time, and from when it was known.

Times are int64 nanoseconds since the epoch (UTC), like candle open times everywhere in the engine.
``event_time`` is the time the value describes; ``available_at`` is the first moment a running bot could
have known it (publication plus the source's lag). Rules only ever see ``available_at <= decision time``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NS_PER_SECOND",
    "Observation",
    "SeriesArrays",
    "check_observation",
    "series_key",
    "to_arrays",
]

NS_PER_SECOND = 1_000_000_000
# 2009-01-03 (the first Bitcoin block) .. 2100: anything outside is a unit mistake (ms taken for s...).
_EARLIEST_NS = 1_230_940_800 * NS_PER_SECOND
_LATEST_NS = 4_102_444_800 * NS_PER_SECOND


@dataclass(frozen=True, slots=True)
class Observation:
    series: str
    event_time: int
    available_at: int
    value: float
    source: str


@dataclass(frozen=True, slots=True)
class SeriesArrays:
    """One series sorted by (available_at, event_time): what the as-of join reads."""

    event_time: np.ndarray  # int64 ns
    available_at: np.ndarray  # int64 ns
    value: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.value)

    @staticmethod
    def empty() -> SeriesArrays:
        return SeriesArrays(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))

    def until(self, available_at: int) -> SeriesArrays:
        """The observations known at ``available_at`` (inclusive)."""
        end = int(np.searchsorted(self.available_at, available_at, side="right"))
        return SeriesArrays(self.event_time[:end], self.available_at[:end], self.value[:end])


def series_key(feed: str, member: str, scope: str | None = None) -> str:
    """The stored name of a series: ``fear_greed.value``; pair-scoped ones add the scope,
    ``book.imbalance@binance:ETH/BTC``."""
    return f"{feed}.{member}" if scope is None else f"{feed}.{member}@{scope}"


def check_observation(obs: Observation) -> str | None:
    """Why ``obs`` must not be stored, or None. A malformed value is never stored."""
    if not isinstance(obs.value, float | int) or isinstance(obs.value, bool):
        return f"{obs.series}: value {obs.value!r} is not a number"
    if not math.isfinite(obs.value):
        return f"{obs.series}: value {obs.value!r} is not finite"
    for name in ("event_time", "available_at"):
        when = getattr(obs, name)
        if not isinstance(when, int) or not _EARLIEST_NS <= when <= _LATEST_NS:
            return f"{obs.series}: {name} {when!r} is not a time between 2009 and 2100 (ns)"
    if (
        obs.available_at < obs.event_time
        and obs.source != "calendar"
        and not obs.series.startswith("calendar")
    ):
        # Only a calendar announces the future; anything else known before it happened is a bug.
        return f"{obs.series}: available_at precedes event_time"
    return None


def to_arrays(observations: Iterable[Observation]) -> SeriesArrays:
    rows = sorted(observations, key=lambda o: (o.available_at, o.event_time))
    if not rows:
        return SeriesArrays.empty()
    return SeriesArrays(
        np.fromiter((o.event_time for o in rows), np.int64, len(rows)),
        np.fromiter((o.available_at for o in rows), np.int64, len(rows)),
        np.fromiter((o.value for o in rows), np.float64, len(rows)),
    )
