"""Arithmetic on half-open integer ranges [start, end): which parts of history are fetched or missing."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["merge_ranges", "subtract_ranges"]


def merge_ranges(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of [start, end) integer ranges, sorted, touching ranges joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract_ranges(want: tuple[int, int], have: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``want`` not covered by ``have`` (both [start, end))."""
    out: list[tuple[int, int]] = []
    cursor, stop = want
    for start, end in merge_ranges(have):
        if end <= cursor or start >= stop:
            continue
        if start > cursor:
            out.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < stop:
        out.append((cursor, stop))
    return out
