"""Inline SVG charts for the HTML report: equity with drawdown, and per-pair candles with trade markers
and the strategy's features. Plain strings, no plotting library, so the report needs nothing online.

Long series are reduced before drawing: candles are merged into at most ``max_bars`` bars (first open,
highest high, lowest low, last close), and line series keep each bucket's lowest and highest point
so that spikes and the deepest drawdown stay visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

__all__ = [
    "Marker",
    "aggregate_factor",
    "candle_chart",
    "envelope_indices",
    "equity_chart",
    "is_price_scale",
    "nice_ticks",
]

_LEFT, _RIGHT, _TOP, _AXIS = 8.0, 76.0, 10.0, 22.0


@dataclass(frozen=True, slots=True)
class Marker:
    """One trade entry or exit: where it happened and what its tooltip says."""

    time_ns: int
    price: float
    kind: str  # "entry" | "exit"
    side: str  # "long" | "short"
    win: bool
    label: str


def _f(value: float) -> str:
    return f"{value:.1f}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values inside [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0)), key=lambda s: abs(math.log(s / raw)))
    digits = max(0, 2 - math.floor(math.log10(step)))  # drops float noise such as 0.6000000000000001
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [round(k * step, digits) + 0.0 for k in range(first, last + 1)]


def _label(value: float) -> str:
    return f"{value:.6g}"


def envelope_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Indices that keep the shape of ``values`` in at most about ``max_points`` points: the lowest and
    the highest of each bucket in time order, plus the first and the last point."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    size = math.ceil(n / max(max_points // 2, 1))
    buckets = math.ceil(n / size)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    padded[~np.isfinite(padded)] = np.nan
    grid = padded.reshape(buckets, size)
    base = np.arange(buckets) * size
    # A gap (NaN) never wins; a bucket that is all gap keeps its first index.
    lows = np.where(np.isnan(grid), np.inf, grid).argmin(axis=1) + base
    highs = np.where(np.isnan(grid), -np.inf, grid).argmax(axis=1) + base
    keep = np.concatenate([[0, n - 1], lows, highs])
    return np.unique(keep[keep < n])


def aggregate_factor(count: int, max_bars: int) -> int:
    """How many candles merge into one bar so that at most ``max_bars`` bars are drawn."""
    return max(1, math.ceil(count / max(max_bars, 1)))


def _aggregate(candles: pd.DataFrame, factor: int) -> dict[str, np.ndarray]:
    o, h, lo, c = (candles[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    if factor == 1:
        return {"open": o, "high": h, "low": lo, "close": c}
    starts = np.arange(0, len(c), factor)
    ends = np.minimum(starts + factor, len(c)) - 1
    return {
        "open": o[starts],
        "high": np.maximum.reduceat(h, starts),
        "low": np.minimum.reduceat(lo, starts),
        "close": c[ends],
    }


def is_price_scale(values: np.ndarray, close: np.ndarray) -> bool:
    """Whether a feature lives on the price axis (a moving average, a band, a stop level) rather than on
    its own scale (an oscillator, a volume): its typical distance from the close is under 25%."""
    ok = np.isfinite(values) & np.isfinite(close) & (close != 0)
    if ok.sum() < max(2, len(values) // 10):
        return False
    return bool(np.median(np.abs(values[ok] / close[ok] - 1.0)) < 0.25)


def _line_path(xs: np.ndarray, ys: np.ndarray) -> str:
    """An SVG path through the finite points; a gap (NaN) lifts the pen."""
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    finite = np.isfinite(ys)
    if not finite.any():
        return ""
    starts = finite & ~np.concatenate([[False], finite[:-1]])
    commands = np.where(starts, "M", "L")[finite].tolist()
    return "".join(
        f"{c}{x:.1f} {y:.1f}"
        for c, x, y in zip(commands, xs[finite].tolist(), ys[finite].tolist(), strict=True)
    )


class _Scale:
    """Linear map of a value domain onto a pixel range (y grows downwards in SVG)."""

    def __init__(self, d0: float, d1: float, r0: float, r1: float):
        if not (math.isfinite(d0) and math.isfinite(d1)):
            d0, d1 = 0.0, 1.0
        if d1 == d0:
            pad = abs(d0) * 0.01 or 1.0
            d0, d1 = d0 - pad, d1 + pad
        self.d0, self.d1, self.r0, self.r1 = d0, d1, r0, r1
        self.k = (r1 - r0) / (d1 - d0)

    def __call__(self, values: np.ndarray | float) -> np.ndarray | float:
        return self.r0 + (np.asarray(values, dtype=np.float64) - self.d0) * self.k


def _domain(*arrays: np.ndarray) -> tuple[float, float]:
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if len(a)]
    if not finite:
        return 0.0, 1.0
    lo = min(float(a.min()) for a in finite)
    hi = max(float(a.max()) for a in finite)
    pad = (hi - lo) * 0.04
    return lo - pad, hi + pad


def _y_axis(scale: _Scale, x: float, fmt=_label, width: float = 0.0) -> str:
    """Horizontal grid lines across the plot and their labels at its right edge."""
    top, bottom = sorted((scale.r0, scale.r1))
    lo, hi = sorted((scale.d0, scale.d1))
    out = []
    for tick in nice_ticks(lo, hi, 4):
        y = float(scale(tick))
        if top - 0.5 <= y <= bottom + 0.5:
            out.append(f'<line class="grid" x1="{_f(_LEFT)}" x2="{_f(x)}" y1="{_f(y)}" y2="{_f(y)}"/>')
            out.append(f'<text class="ax" x="{_f(x + 4)}" y="{_f(y + 3)}">{escape(fmt(tick))}</text>')
    return "".join(out)


def _time_axis(times_ns: np.ndarray, xs: np.ndarray, y_top: float, y_bottom: float) -> str:
    """About six date labels under the plot, with vertical grid lines up to ``y_top``."""
    if len(times_ns) == 0:
        return ""
    count = min(6, len(times_ns))
    picks = np.unique(np.linspace(0, len(times_ns) - 1, count).round().astype(np.int64))
    span = int(times_ns[-1] - times_ns[0])
    fmt = "%Y-%m-%d" if span > 3 * 86_400 * 10**9 else "%m-%d %H:%M"
    out = []
    for i in picks.tolist():
        x = float(xs[i])
        label = pd.Timestamp(int(times_ns[i]), tz="UTC").strftime(fmt)
        out.append(f'<line class="grid" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(y_top)}" y2="{_f(y_bottom)}"/>')
        out.append(
            f'<text class="ax" x="{_f(x)}" y="{_f(y_bottom + 14)}" text-anchor="middle">{label}</text>'
        )
    return "".join(out)


def _percent(value: float) -> str:
    return f"{value:.0%}" if abs(value) >= 0.1 or value == 0 else f"{value:.1%}"


def equity_chart(equity: pd.Series, initial_capital: float, *, width: float = 1000.0) -> str:
    """Equity curve above its drawdown (share below the running peak), on one time axis."""
    if equity.empty:
        return '<p class="muted">no equity points</p>'
    values = equity.to_numpy(dtype=np.float64)
    times = equity.index.as_unit("ns").asi8
    peaks = np.maximum.accumulate(np.maximum(values, initial_capital))
    depth = values / peaks - 1.0
    eq_h, dd_h, gap = 240.0, 90.0, 16.0
    right = width - _RIGHT
    keep_eq = envelope_indices(values, 1400)
    keep_dd = envelope_indices(depth, 1400)
    t0 = int(times[0])
    t1 = max(int(times[-1]), t0 + 1)
    x_of = _Scale(t0, t1, _LEFT, right)
    lo, hi = _domain(values, np.array([initial_capital]))
    y_eq = _Scale(lo, hi, _TOP + eq_h, _TOP)
    dd_top = _TOP + eq_h + gap
    y_dd = _Scale(min(float(depth.min()), -1e-9) * 1.05, 0.0, dd_top + dd_h, dd_top)
    height = dd_top + dd_h + _AXIS
    xs_eq = x_of(times[keep_eq].astype(np.float64))
    xs_dd = x_of(times[keep_dd].astype(np.float64))
    dd_line = _line_path(xs_dd, y_dd(depth[keep_dd]))
    base = float(y_dd(0.0))
    area = f"{dd_line}L{_f(xs_dd[-1])} {_f(base)}L{_f(xs_dd[0])} {_f(base)}Z" if dd_line else ""
    initial_y = float(y_eq(initial_capital))
    parts = [
        f'<svg class="chart" viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
        'role="img" aria-label="equity and drawdown">',
        _y_axis(y_eq, right),
        _y_axis(y_dd, right, _percent),
        f'<line class="base" x1="{_f(_LEFT)}" x2="{_f(right)}" y1="{_f(initial_y)}" y2="{_f(initial_y)}"/>',
        f'<path class="equity" d="{_line_path(xs_eq, y_eq(values[keep_eq]))}"/>',
        f'<path class="dd" d="{area}"/>',
        f'<text class="panel" x="{_f(_LEFT + 4)}" y="{_f(_TOP + 12)}">equity</text>',
        f'<text class="panel" x="{_f(_LEFT + 4)}" y="{_f(dd_top + 12)}">drawdown</text>',
        _time_axis(times, x_of(times.astype(np.float64)), _TOP, dd_top + dd_h),
        "</svg>",
    ]
    return "".join(parts)


def _marker_path(x: float, y: float, marker: Marker) -> str:
    s = 5.0
    if marker.kind == "entry":
        if marker.side == "long":  # a triangle pointing up from below the fill
            return f"M{_f(x)} {_f(y)}l{_f(s)} {_f(s * 1.6)}h{_f(-2 * s)}z"
        return f"M{_f(x)} {_f(y)}l{_f(s)} {_f(-s * 1.6)}h{_f(-2 * s)}z"
    return f"M{_f(x)} {_f(y - s)}l{_f(s)} {_f(s)}l{_f(-s)} {_f(s)}l{_f(-s)} {_f(-s)}z"  # a diamond


def candle_chart(
    candles: pd.DataFrame,
    overlays: Sequence[tuple[str, np.ndarray]],
    panels: Sequence[tuple[str, np.ndarray]],
    markers: Sequence[Marker],
    *,
    max_bars: int = 1500,
    bar_width: float = 3.0,
    min_width: float = 1000.0,
) -> str:
    """Candles (merged to at most ``max_bars`` bars) with price-scale ``overlays`` drawn over them, one
    small panel per entry of ``panels`` below, and one marker per trade entry and exit."""
    n = len(candles)
    if n == 0:
        return '<p class="muted">no candles</p>'
    factor = aggregate_factor(n, max_bars)
    bars = _aggregate(candles, factor)
    count = len(bars["close"])
    times = candles.index.as_unit("ns").asi8
    bar_times = times[::factor]
    plot_w = max(count * bar_width, min_width - _LEFT - _RIGHT)
    width = plot_w + _LEFT + _RIGHT
    step = plot_w / count
    xs = _LEFT + (np.arange(count) + 0.5) * step
    right = _LEFT + plot_w

    def reduce(values: np.ndarray) -> np.ndarray:  # a feature's value at each bar's close
        values = np.asarray(values, dtype=np.float64)
        return values[np.minimum(np.arange(count) * factor + factor - 1, n - 1)]

    lines = [(name, reduce(values)) for name, values in overlays]
    price_h, panel_h, gap = 300.0, 64.0, 10.0
    lo, hi = _domain(bars["low"], bars["high"], *(v for _, v in lines))
    y = _Scale(lo, hi, _TOP + price_h, _TOP)
    height = _TOP + price_h + len(panels) * (panel_h + gap) + _AXIS
    out = [
        f'<svg class="chart" viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
        'role="img">',
        _y_axis(y, right),
    ]
    o, h, low, c = bars["open"], bars["high"], bars["low"], bars["close"]
    yo, yh, yl, yc = y(o), y(h), y(low), y(c)
    up = c >= o
    body_w = max(step * 0.7, 0.8)
    for cls, mask in (("up", up), ("down", ~up)):
        idx = np.flatnonzero(mask)
        wicks = "".join(
            f"M{x:.1f} {a:.1f}V{b:.1f}"
            for x, a, b in zip(xs[idx].tolist(), yh[idx].tolist(), yl[idx].tolist(), strict=True)
        )
        top = np.minimum(yo[idx], yc[idx])
        tall = np.maximum(np.abs(yo[idx] - yc[idx]), 0.6)
        w = f"{body_w:.1f}"
        bodies = "".join(
            f"M{x:.1f} {t:.1f}h{w}v{b:.1f}h-{w}z"
            for x, t, b in zip((xs[idx] - body_w / 2).tolist(), top.tolist(), tall.tolist(), strict=True)
        )
        out.append(f'<path class="wick {cls}" d="{wicks}"/><path class="body {cls}" d="{bodies}"/>')
    for i, (name, values) in enumerate(lines):
        out.append(
            f'<path class="ov ov{i % 6}" d="{_line_path(xs, y(values))}"><title>{escape(name)}</title></path>'
        )
    legend = "".join(
        f'<tspan class="ov{i % 6}">■ </tspan><tspan>{escape(name)}  </tspan>'
        for i, (name, _) in enumerate(lines)
    )
    if legend:
        out.append(f'<text class="legend" x="{_f(_LEFT + 4)}" y="{_f(_TOP + 12)}">{legend}</text>')
    # Markers sit on the bar that holds the candle in which the fill happened.
    if markers:
        marker_times = np.array([m.time_ns for m in markers], dtype=np.int64)
        rows = np.clip(np.searchsorted(times, marker_times, side="right") - 1, 0, n - 1) // factor
        for marker, row in zip(markers, rows.tolist(), strict=True):
            d = _marker_path(float(xs[row]), float(y(marker.price)), marker)
            tone = "win" if marker.win else "loss"
            cls = f"mk mk-{marker.kind} {marker.side} {tone}"
            out.append(f'<path class="{cls}" d="{d}"><title>{escape(marker.label)}</title></path>')
    top = _TOP + price_h + gap
    for name, values in panels:
        values = reduce(values)
        lo, hi = _domain(values)
        yp = _Scale(lo, hi, top + panel_h, top)
        out.append(
            f'<rect class="panel-bg" x="{_f(_LEFT)}" y="{_f(top)}" width="{_f(plot_w)}" height="{_f(panel_h)}"/>'
        )
        out.append(_y_axis(yp, right))
        out.append(f'<path class="ind" d="{_line_path(xs, yp(values))}"/>')
        out.append(f'<text class="panel" x="{_f(_LEFT + 4)}" y="{_f(top + 12)}">{escape(name)}</text>')
        top += panel_h + gap
    out.append(_time_axis(bar_times, xs, _TOP, top - gap if panels else _TOP + price_h))
    out.append("</svg>")
    return "".join(out)
