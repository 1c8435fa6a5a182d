"""Walk-forward windows with purge and embargo (López de Prado, AFML ch. 7).

A row's label interval runs from its own candle to the candle ``horizon`` ahead. A training row is kept
for a test period only when its interval ends before the period starts minus the embargo (or, for
the two-sided case :func:`purge_mask` also covers, starts after it ends plus the embargo). Times are
int64 nanoseconds (candle open times); the same arithmetic works on candle indexes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ml.errors import MLError

__all__ = ["Window", "plan_windows", "purge_mask"]

_DAY_NS = 86_400 * 1_000_000_000


def purge_mask(
    label_start: np.ndarray, label_end: np.ndarray, test_start: int, test_end: int, embargo: int = 0
) -> np.ndarray:
    """True for rows that may train a model evaluated on ``[test_start, test_end]`` (inclusive):
    their label interval ``[label_start, label_end]`` ends before ``test_start - embargo`` or starts
    after ``test_end + embargo``. Everything overlapping, or too close to, the test period is purged."""
    return (label_end < test_start - embargo) | (label_start > test_end + embargo)


@dataclass(frozen=True, slots=True)
class Window:
    """One walk-forward step: train on rows with open time in [train_start, test_start) that survive
    the purge, predict rows with open time in [test_start, test_end)."""

    index: int
    train_start: int
    test_start: int
    test_end: int


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def plan_windows(
    first_ns: int,
    last_ns: int,
    *,
    train_ns: int,
    step_ns: int,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[Window]:
    """The test windows from the first time a full training window exists (aligned to ``step`` counted
    from the epoch, so daily steps start at 00:00 UTC) or ``start_ns``, to ``last_ns`` or ``end_ns``.

    The grid depends only on where the data starts, never on where it ends: cutting the data later
    leaves every earlier window, and so every earlier prediction, unchanged."""
    earliest = _ceil(first_ns + train_ns, step_ns)
    begin = earliest if start_ns is None else max(earliest, start_ns)
    if start_ns is not None and start_ns < earliest:
        raise MLError(
            "ML003",
            f"too little data before {_iso(start_ns)}: a {train_ns // 3_600_000_000_000}h training window "
            f"needs candles from {_iso(start_ns - train_ns)}, the data starts at {_iso(first_ns)}",
        )
    stop = last_ns + 1 if end_ns is None else min(end_ns, last_ns + 1)
    windows: list[Window] = []
    test_start = begin
    while test_start < stop:
        windows.append(
            Window(len(windows), test_start - train_ns, test_start, min(test_start + step_ns, stop))
        )
        test_start += step_ns
    if not windows:
        raise MLError(
            "ML003",
            f"too little data for the windows: the first prediction needs a full training window "
            f"({_iso(first_ns)} + training length = {_iso(earliest)}), the data ends at {_iso(last_ns)}",
        )
    return windows


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="m") + "Z"
