"""Triangles, wedges, flags and pennants: two trend lines through confirmed pivots and a breakout.

Triangles and wedges use the last five alternating pivots: the upper line joins the first and last pivot
high, the lower line the first and last pivot low, and the middle pivot of the side with three must lie
within ``tolerance`` x height of its line. Slopes are judged over the pattern: a line is *flat* when it
moves less than ``tolerance`` x height from the first pivot to the last, *rising* or *falling* when it
moves at least twice that. Geometries are written for the upward breakout; the others are mirrors.
"""

from __future__ import annotations

import math

import numpy as np

from engine.indicators._chart_scan import Candidate, Settings, register_pattern
from engine.indicators._core import SpecList
from engine.indicators._pivots import HIGH, LOW

SPECS = SpecList()

DEFAULTS = Settings(left=4, right=3, tolerance=0.15, min_length=15, max_length=150, min_height=3.0)
FLAG_DEFAULTS = Settings(
    left=3, right=2, tolerance=0.2, min_length=5, max_length=60, min_height=0.0, pole=5.0, pole_length=20
)


class _Lines:
    """Upper line through the first and last pivot high, lower through the first and last pivot low."""

    def __init__(self, i: np.ndarray, p: np.ndarray, k: np.ndarray) -> None:
        highs, lows = k == HIGH, k == LOW
        hi_i, hi_p, lo_i, lo_p = i[highs], p[highs], i[lows], p[lows]
        self.origin = int(i[0])
        self.span = int(i[-1] - i[0])
        self.upper_slope = (hi_p[-1] - hi_p[0]) / (hi_i[-1] - hi_i[0])
        self.lower_slope = (lo_p[-1] - lo_p[0]) / (lo_i[-1] - lo_i[0])
        self.upper0 = hi_p[0] - self.upper_slope * (hi_i[0] - self.origin)
        self.lower0 = lo_p[0] - self.lower_slope * (lo_i[0] - self.origin)
        self.height = self.upper0 - self.lower0
        # How far the middle pivot of each side strays from its line (0 with only two).
        self.stray = max(
            float(np.max(np.abs(hi_p - self.upper(hi_i)), initial=0.0)),
            float(np.max(np.abs(lo_p - self.lower(lo_i)), initial=0.0)),
        )

    def upper(self, t: np.ndarray | int) -> np.ndarray | float:
        return self.upper0 + self.upper_slope * (np.asarray(t) - self.origin)

    def lower(self, t: np.ndarray | int) -> np.ndarray | float:
        return self.lower0 + self.lower_slope * (np.asarray(t) - self.origin)

    def moves(self) -> tuple[float, float]:
        """Each line's move over the pattern, as a share of the starting height."""
        return self.upper_slope * self.span / self.height, self.lower_slope * self.span / self.height

    def apex(self) -> int:
        """Last candle before the lines meet (0 when they never do)."""
        closing = self.lower_slope - self.upper_slope
        return int(self.origin + math.floor(self.height / closing)) - 1 if closing > 0 else 0

    def candidate(self, last: int, **extra: float) -> Candidate:
        return Candidate(
            start=self.origin,
            last=last,
            origin=self.origin,
            level=self.upper0,
            slope=self.upper_slope,
            far_level=self.lower0,
            far_slope=self.lower_slope,
            height=self.height,
            expiry=self.apex(),
            **extra,
        )


def _lines(i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings) -> _Lines | None:
    lines = _Lines(i, p, k)
    if lines.height < max(s.min_height * unit, 1e-300) or lines.span < s.min_length:
        return None
    if lines.stray > s.tolerance * lines.height:
        return None
    end = lines.upper(i[-1]) - lines.lower(i[-1])
    return lines if end > 0 else None


def ascending_triangle_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    """Flat upper line, rising lower line; breakout up; target upper line + starting height."""
    lines = _lines(i, p, k, unit, s)
    if lines is None:
        return None
    up, down = lines.moves()
    if abs(up) > s.tolerance or down < 2 * s.tolerance:
        return None
    return lines.candidate(int(i[-1]))


def symmetric_triangle_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    """Falling upper line, rising lower line, neither more than 3 times steeper than the other."""
    lines = _lines(i, p, k, unit, s)
    if lines is None:
        return None
    up, down = lines.moves()
    if up > -2 * s.tolerance or down < 2 * s.tolerance or not (-up <= 3 * down and down <= -3 * up):
        return None
    return lines.candidate(int(i[-1]))


def falling_wedge_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    """Both lines falling, the upper faster (they converge); breakout up; target the wedge's starting
    upper line (where it began)."""
    lines = _lines(i, p, k, unit, s)
    if lines is None:
        return None
    up, down = lines.moves()
    if down > -2 * s.tolerance or up >= down - s.tolerance:
        return None
    return lines.candidate(int(i[-1]), target=float(lines.upper0))


def bull_flag_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    return _flag(i, p, k, unit, s, pennant=False)


def bull_pennant_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    return _flag(i, p, k, unit, s, pennant=True)


def _flag(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings, pennant: bool
) -> Candidate | None:
    """Pivots low P0, high P1 (the flagpole), then low L1, high H2, low L2 (the last)."""
    if k[-1] != LOW:
        return None
    p0, p1, l1, h2, l2 = p
    pole = p1 - p0
    if pole < max(s.pole * unit, 1e-300) or i[1] - i[0] > s.pole_length or i[4] - i[1] < s.min_length:
        return None
    if p1 - min(l1, l2) > 0.5 * pole or h2 > p1:
        return None
    span = i[4] - i[1]
    upper_slope = (h2 - p1) / (i[3] - i[1])
    lower_slope = (l2 - l1) / (i[4] - i[2])
    lower_at_pole = l1 - lower_slope * (i[2] - i[1])
    start_width = p1 - lower_at_pole
    end_width = (p1 + upper_slope * span) - l2
    if start_width <= 0 or end_width <= 0:
        return None
    up, down = upper_slope * span / pole, lower_slope * span / pole
    if pennant:
        if up > -s.tolerance / 2 or down < s.tolerance / 2 or end_width > 0.6 * start_width:
            return None
    elif up > s.tolerance or down > s.tolerance or up < -0.5 or not 0.5 <= end_width / start_width <= 1.5:
        return None
    return Candidate(
        start=int(i[0]),
        last=int(i[4]),
        origin=int(i[1]),
        level=p1,
        slope=upper_slope,
        far_level=lower_at_pole,
        far_slope=lower_slope,
        height=pole,
        invalidation=min(l1, l2),
        body_start=int(i[1]),
    )


_LINES = (
    "The last five alternating confirmed pivots; the upper line joins the first and last pivot high, the "
    "lower line the first and last pivot low, the middle pivot of the side with three lies within "
    "``tolerance`` x height of its line; height (upper minus lower line at the first pivot) at least "
    "``min_height`` typical candle ranges, at least ``min_length`` candles from the first pivot to the "
    "last, the lines still apart at the last pivot; the breakout must come before they meet."
)
_FLAG = (
    "A flagpole from pivot low P0 to pivot high P1 of at least ``pole`` typical candle ranges (mean "
    "high - low of the last 50 candles) in at most ``pole_length`` candles, then pivots L1, H2, L2: the "
    "upper line joins P1 and H2 (H2 not above P1), the lower line L1 and L2, the consolidation retraces "
    "at most half the pole and lasts at least ``min_length`` candles."
)

register_pattern(
    SPECS,
    "ascending_triangle",
    ascending_triangle_shape,
    5,
    mirrored=False,
    defaults=DEFAULTS,
    doc=(
        f"Ascending triangle. {_LINES} The upper line is flat (moves less than ``tolerance`` x height "
        "over the pattern), the lower one rises by at least twice that. Confirmed by the first close "
        "above the upper line. Target the breakout line + height; invalidation the lower line there."
    ),
    example="ascending_triangle() and volume > 1.5 * sma(volume, 20)",
)
register_pattern(
    SPECS,
    "descending_triangle",
    ascending_triangle_shape,
    5,
    mirrored=True,
    defaults=DEFAULTS,
    doc=(
        f"Descending triangle (the mirror of ``ascending_triangle``). {_LINES} The lower line is flat, "
        "the upper one falls by at least 2 x ``tolerance`` x height. Confirmed by the first close below "
        "the lower line. Target the breakout line - height; invalidation the upper line there."
    ),
    example="descending_triangle()",
)
register_pattern(
    SPECS,
    "symmetric_triangle",
    symmetric_triangle_shape,
    5,
    mirrored=False,
    defaults=DEFAULTS,
    directional=True,
    doc=(
        f"Symmetric triangle. {_LINES} The upper line falls and the lower one rises, each by at least "
        "2 x ``tolerance`` x height, neither more than 3 times steeper than the other. ``direction`` "
        'picks the breakout that counts: "up" (first close above the upper line, target + height) or '
        '"down" (first close below the lower line, target - height); invalidation the other line.'
    ),
    example='symmetric_triangle(direction="down")',
)
register_pattern(
    SPECS,
    "falling_wedge",
    falling_wedge_shape,
    5,
    mirrored=False,
    defaults=DEFAULTS,
    doc=(
        f"Falling wedge (bullish). {_LINES} Both lines fall, the lower one by at least 2 x "
        "``tolerance`` x height, the upper one faster than the lower by at least ``tolerance`` x height "
        "(they converge). Confirmed by the first close above the upper line. Target the wedge's start "
        "(the upper line at the first pivot); invalidation the lower line at the breakout."
    ),
    example="falling_wedge() and rsi(close, 14) > 40",
)
register_pattern(
    SPECS,
    "rising_wedge",
    falling_wedge_shape,
    5,
    mirrored=True,
    defaults=DEFAULTS,
    doc=(
        f"Rising wedge (bearish; the mirror of ``falling_wedge``). {_LINES} Both lines rise, the lower "
        "one faster. Confirmed by the first close below the lower line. Target the wedge's start (the "
        "lower line at the first pivot); invalidation the upper line at the breakout."
    ),
    example="rising_wedge()",
)
register_pattern(
    SPECS,
    "bull_flag",
    bull_flag_shape,
    5,
    mirrored=False,
    defaults=FLAG_DEFAULTS,
    flag=True,
    doc=(
        f"Bull flag. {_FLAG} Flag: neither line rises more than ``tolerance`` x pole over the "
        "consolidation, the upper one falls at most half the pole, and the channel's width at its end is "
        "0.5 to 1.5 times its width at P1 (nearly parallel). Confirmed by the first close above the upper "
        "line. Target the breakout line + the pole (the measured move); invalidation the flag's lowest "
        "pivot low."
    ),
    example="bull_flag() and close > ema(close, 50)",
)
register_pattern(
    SPECS,
    "bear_flag",
    bull_flag_shape,
    5,
    mirrored=True,
    defaults=FLAG_DEFAULTS,
    flag=True,
    doc=(
        "Bear flag (the mirror of ``bull_flag``): a falling flagpole, then a nearly parallel channel that "
        "drifts up or sideways and retraces at most half the pole. Confirmed by the first close below "
        "the lower line. Target the breakout line - the pole; invalidation the flag's highest pivot high."
    ),
    example="bear_flag(pole=10)",
)
register_pattern(
    SPECS,
    "bull_pennant",
    bull_pennant_shape,
    5,
    mirrored=False,
    defaults=FLAG_DEFAULTS,
    flag=True,
    doc=(
        f"Bull pennant. {_FLAG} Pennant: the upper line falls and the lower line rises, each by at least "
        "``tolerance`` / 2 x pole, and the width at the end is at most 0.6 times the width at P1. "
        "Confirmed by the first close above the upper line. Target the breakout line + the pole; "
        "invalidation the pennant's lowest pivot low."
    ),
    example="bull_pennant()",
)
register_pattern(
    SPECS,
    "bear_pennant",
    bull_pennant_shape,
    5,
    mirrored=True,
    defaults=FLAG_DEFAULTS,
    flag=True,
    doc=(
        "Bear pennant (the mirror of ``bull_pennant``): a falling flagpole, then converging lines. "
        "Confirmed by the first close below the lower line. Target the breakout line - the pole; "
        "invalidation the pennant's highest pivot high."
    ),
    example="bear_pennant()",
)
