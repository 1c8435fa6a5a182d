"""Reversal chart patterns: double and triple tops and bottoms, head and shoulders and its inverse.

Geometries are written for the bullish pattern (a bottom, breaking out upwards); the tops are the same
rule on mirrored candles (see ``_chart_scan``). Pivots are alternating, merged swing points, oldest
first; ``unit`` is the typical candle range on the candle the last pivot was confirmed.
"""

from __future__ import annotations

import numpy as np

from engine.indicators._chart_scan import Candidate, Settings, register_pattern
from engine.indicators._core import SpecList
from engine.indicators._pivots import LOW

SPECS = SpecList()

DEFAULTS = Settings(left=5, right=3, tolerance=0.15, min_length=10, max_length=150, min_height=3.0)


def double_bottom_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    """Pivots high H0, low B1, high P, low B2 (the last)."""
    if k[-1] != LOW:
        return None
    h0, b1, peak, b2 = p
    floor = min(b1, b2)
    height = peak - floor
    if height < s.min_height * unit or height <= 0:
        return None
    if abs(b1 - b2) > s.tolerance * height or h0 <= peak or i[3] - i[1] < s.min_length:
        return None
    return Candidate(
        start=int(i[1]),
        last=int(i[3]),
        origin=int(i[1]),
        level=peak,
        slope=0.0,
        far_level=floor,
        far_slope=0.0,
        height=height,
        invalidation=floor,
    )


def triple_bottom_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    """Pivots high H0, low B1, high P1, low B2, high P2, low B3 (the last)."""
    if k[-1] != LOW:
        return None
    h0, b1, p1, b2, p2, b3 = p
    neck = max(p1, p2)
    floor = min(b1, b2, b3)
    height = neck - floor
    if height < s.min_height * unit or height <= 0:
        return None
    if max(b1, b2, b3) - floor > s.tolerance * height or h0 <= neck or i[5] - i[1] < s.min_length:
        return None
    return Candidate(
        start=int(i[1]),
        last=int(i[5]),
        origin=int(i[1]),
        level=neck,
        slope=0.0,
        far_level=floor,
        far_slope=0.0,
        height=height,
        invalidation=floor,
    )


def inverse_head_shoulders_shape(
    i: np.ndarray, p: np.ndarray, k: np.ndarray, unit: float, s: Settings
) -> Candidate | None:
    """Pivots high H0, low LS, high N1, low HD, high N2, low RS (the last); the neckline joins N1 and N2."""
    if k[-1] != LOW:
        return None
    h0, ls, n1, head, n2, rs = p
    slope = (n2 - n1) / (i[4] - i[2])

    def neck(t: int) -> float:
        return n1 + slope * (t - i[2])

    height = neck(i[3]) - head
    if height < s.min_height * unit or height <= 0 or i[5] - i[1] < s.min_length:
        return None
    tol = s.tolerance * height
    if min(ls, rs) - head < tol or abs(ls - rs) > 2 * tol:
        return None
    # Shoulders reach well below the neckline; the neckline is not steeper than half the height.
    if neck(i[1]) - ls < 0.3 * height or neck(i[5]) - rs < 0.3 * height or abs(n2 - n1) > 0.5 * height:
        return None
    left_span, right_span = i[3] - i[1], i[5] - i[3]
    if not (left_span <= 3 * right_span and right_span <= 3 * left_span) or h0 <= neck(i[0]):
        return None
    return Candidate(
        start=int(i[1]),
        last=int(i[5]),
        origin=int(i[2]),
        level=n1,
        slope=slope,
        far_level=head,
        far_slope=0.0,
        height=height,
        invalidation=rs,
    )


_TOPS = (
    "the bottoms within ``tolerance`` x height of each other, the high before the first bottom above the "
    "neckline (price fell into the pattern), at least ``min_length`` candles from the first bottom to the "
    "last, the height (neckline minus the lowest bottom) at least ``min_height`` typical candle ranges "
    "(mean high - low of the last 50 candles)"
)

register_pattern(
    SPECS,
    "double_bottom",
    double_bottom_shape,
    4,
    mirrored=False,
    defaults=DEFAULTS,
    doc=(
        "Double bottom (W): two confirmed pivot lows B1, B2 with the pivot high P between them, "
        f"{_TOPS}. Confirmed by the first close above P (the neckline). Target P + height; invalidation "
        "the lower bottom."
    ),
    example="double_bottom() and volume > sma(volume, 20)",
)
register_pattern(
    SPECS,
    "double_top",
    double_bottom_shape,
    4,
    mirrored=True,
    defaults=DEFAULTS,
    doc=(
        "Double top (M): the mirror of ``double_bottom``: two pivot highs within ``tolerance`` x height, "
        "the trough T between them the neckline, a rise into the pattern; confirmed by the first close "
        "below T. Target T - height; invalidation the higher top."
    ),
    example="double_top(tolerance=0.1)",
)
register_pattern(
    SPECS,
    "triple_bottom",
    triple_bottom_shape,
    6,
    mirrored=False,
    defaults=DEFAULTS,
    doc=(
        "Triple bottom: three pivot lows with two pivot highs between them, "
        f"{_TOPS.replace('the bottoms', 'all three bottoms')}; the neckline is the higher of the two "
        "highs. Confirmed by the first close above it. Target neckline + height; invalidation the lowest "
        "bottom."
    ),
    example="triple_bottom(max_length=300)",
)
register_pattern(
    SPECS,
    "triple_top",
    triple_bottom_shape,
    6,
    mirrored=True,
    defaults=DEFAULTS,
    doc=(
        "Triple top: the mirror of ``triple_bottom``: three pivot highs within ``tolerance`` x height, the "
        "neckline the lower of the two troughs, confirmed by the first close below it. Target neckline - "
        "height; invalidation the highest top."
    ),
    example="triple_top()",
)
register_pattern(
    SPECS,
    "inverse_head_shoulders",
    inverse_head_shoulders_shape,
    6,
    mirrored=False,
    defaults=DEFAULTS,
    doc=(
        "Inverse head and shoulders: pivot lows LS, HD, RS with pivot highs N1, N2 between them; the "
        "neckline is the line through N1 and N2. The head is below both shoulders by at least "
        "``tolerance`` x height (height = neckline at the head minus the head), the shoulders differ by "
        "at most 2 x ``tolerance`` x height and each reaches at least 0.3 x height below the neckline, "
        "the neckline rises or falls by at most half the height, neither half of the pattern is more than "
        "3 times longer than the other, and the high before LS is above the neckline. Confirmed by the "
        "first close above the neckline. Target neckline + height at the breakout; invalidation the "
        "right shoulder's low."
    ),
    example="inverse_head_shoulders() and rsi(close, 14) < 70",
)
register_pattern(
    SPECS,
    "head_shoulders",
    inverse_head_shoulders_shape,
    6,
    mirrored=True,
    defaults=DEFAULTS,
    doc=(
        "Head and shoulders: the mirror of ``inverse_head_shoulders``: pivot highs LS, HD, RS, the "
        "neckline through the two troughs between them, confirmed by the first close below the neckline. "
        "Target neckline - height; invalidation the right shoulder's high."
    ),
    example="head_shoulders().signal",
)
