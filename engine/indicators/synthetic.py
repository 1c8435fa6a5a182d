"""Generated candles with a known answer, for tests and benches of the pattern and anomaly detectors.

- :func:`random_walk`: a geometric random walk (no pattern by construction beyond chance): the false
  positive baseline.
- :func:`shape`: one chart pattern drawn through anchor points with noise, and the candle on which its
  breakout is expected (where the noiseless path first closes beyond the breakout line).
- :func:`pump_and_dump`: a random walk with one pump and dump of known start candles.

Everything takes a ``numpy.random.Generator`` so a seed reproduces a case exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SHAPES", "Episode", "Shape", "candles", "pump_and_dump", "random_walk", "shape"]

START = pd.Timestamp("2024-01-01", tz="UTC")


def candles(
    closes: np.ndarray,
    rng: np.random.Generator,
    *,
    wick: float,
    volume: np.ndarray | None = None,
    timeframe: str = "5m",
) -> pd.DataFrame:
    """OHLCV candles around a path of closes: open = previous close, wicks beyond the body of
    |N(0, wick)| each side, volume lognormal around 1000 unless given."""
    closes = np.asarray(closes, dtype=np.float64)
    n = len(closes)
    opens = np.concatenate(([closes[0]], closes[:-1]))
    top = np.maximum(opens, closes) + np.abs(rng.normal(0.0, wick, n))
    bottom = np.minimum(opens, closes) - np.abs(rng.normal(0.0, wick, n))
    if volume is None:
        volume = 1000.0 * rng.lognormal(0.0, 0.3, n)
    index = pd.date_range(START, periods=n, freq=pd.Timedelta(timeframe), name="date")
    return pd.DataFrame(
        {"open": opens, "high": top, "low": bottom, "close": closes, "volume": volume}, index=index
    )


def random_walk(
    n: int, rng: np.random.Generator, *, sigma: float = 0.002, price: float = 100.0
) -> pd.DataFrame:
    """``n`` candles of a driftless geometric random walk with ``sigma`` log-return per candle."""
    closes = price * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    return candles(closes, rng, wick=price * sigma * 0.5)


@dataclass(frozen=True, slots=True)
class Shape:
    """A pattern drawn through ``anchors`` ((candle, price) pairs, prices around 100) in its bullish
    form; ``line`` is two points of the breakout line, crossed upwards after the anchor ``after``;
    ``target`` and ``invalidation`` are the pattern's numbers worked out by hand from the anchors (the
    mirrored drawing's are 200 minus these)."""

    anchors: tuple[tuple[int, float], ...]
    line: tuple[tuple[int, float], tuple[int, float]]
    after: int
    target: float
    invalidation: float


def _path(anchors: tuple[tuple[int, float], ...]) -> np.ndarray:
    t, p = zip(*anchors, strict=True)
    return np.interp(np.arange(t[-1] + 1), t, p)


def shape(
    spec: Shape, rng: np.random.Generator, *, noise: float = 0.15, lead: int = 80, mirrored: bool = False
) -> tuple[pd.DataFrame, int]:
    """Candles of ``lead`` calm candles then the drawn pattern (mirrored for the bearish twin), and
    the candle index at which the noiseless path first closes beyond the breakout line."""
    path = _path(spec.anchors)
    (t0, p0), (t1, p1) = spec.line
    line = p0 + (p1 - p0) / (t1 - t0) * (np.arange(len(path)) - t0)
    after = spec.after
    beyond = np.flatnonzero(path[after + 1 :] > line[after + 1 :])
    expected = lead + after + 1 + int(beyond[0])
    calm = path[0] + rng.normal(0.0, noise, lead).cumsum() * 0.3
    calm += path[0] - calm[-1]  # joins the drawing without a jump
    closes = np.concatenate((calm, path + rng.normal(0.0, noise, len(path))))
    if mirrored:
        closes = 200.0 - closes
    return candles(closes, rng, wick=noise), expected


# Bullish drawings (the bearish function finds the mirrored one). Heights are about 10, candle noise
# 0.15 by default: patterns of 25-70 typical candle ranges. The line is what the detector should break.
SHAPES: dict[str, tuple[str, Shape]] = {
    "double_bottom": (
        "double_top",
        Shape(
            ((0, 122), (30, 100), (50, 110), (72, 100.5), (110, 124)),
            ((50, 110), (72, 110)),
            72,
            120.0,
            100.0,
        ),
    ),
    "triple_bottom": (
        "triple_top",
        Shape(
            ((0, 122), (25, 100), (42, 109), (60, 100.6), (78, 109.5), (96, 100.2), (130, 124)),
            ((42, 109.5), (78, 109.5)),
            96,
            119.0,
            100.0,
        ),
    ),
    "inverse_head_shoulders": (
        "head_shoulders",
        Shape(
            ((0, 122), (22, 104), (38, 111), (58, 98), (78, 111.5), (96, 104.5), (130, 126)),
            ((38, 111), (78, 111.5)),
            96,
            124.9,
            104.5,
        ),
    ),
    "ascending_triangle": (
        "descending_triangle",
        Shape(
            ((0, 100), (20, 112), (38, 102), (56, 112), (72, 105), (88, 112), (100, 107.5), (125, 122)),
            ((20, 112), (88, 112)),
            100,
            122.0,
            108.0,
        ),
    ),
    "symmetric_triangle": (
        "symmetric_triangle",
        Shape(
            ((0, 100), (20, 116), (38, 101), (56, 113), (72, 104), (88, 110.5), (100, 106), (125, 122)),
            ((56, 113), (88, 110.5)),
            100,
            123.0,
            106.2,
        ),
    ),
    "falling_wedge": (
        "rising_wedge",
        Shape(
            ((0, 108), (18, 114), (34, 100), (52, 108), (68, 97), (84, 103), (98, 95.5), (125, 116)),
            ((52, 108), (84, 103)),
            98,
            110.8,
            95.0,
        ),
    ),
    "bull_flag": (
        "bear_flag",
        Shape(
            ((0, 102), (10, 99.5), (22, 115), (29, 111), (36, 113.3), (43, 109.5), (60, 127)),
            ((22, 115), (36, 113.3)),
            43,
            127.3,
            109.5,
        ),
    ),
    "bull_pennant": (
        "bear_pennant",
        Shape(
            ((0, 102), (10, 99.5), (22, 115), (30, 109), (38, 113.5), (46, 110.5), (60, 127)),
            ((22, 115), (38, 113.5)),
            46,
            128.3,
            109.0,
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class Episode:
    """A generated pump and dump: candles, the candle its pump starts on and the candle its dump starts on."""

    candles: pd.DataFrame
    pump_start: int
    dump_start: int


def pump_and_dump(
    n: int,
    start: int,
    rng: np.random.Generator,
    *,
    rise: float = 0.15,
    rise_candles: int = 4,
    top_candles: int = 3,
    fall: float = 0.2,
    fall_candles: int = 6,
    burst: float = 8.0,
    sigma: float = 0.002,
    price: float = 100.0,
) -> Episode:
    """A random walk (``sigma`` per candle, lognormal volume around 1000) with one pump and dump: from
    candle ``start`` the price climbs ``rise`` over ``rise_candles`` on volume ``burst`` times the usual,
    stays near the top for ``top_candles`` on half that burst, then falls ``fall`` over ``fall_candles``
    on half the burst, and walks on. The episode's moves carry the walk's own noise."""
    steps = rng.normal(0.0, sigma, n)
    volume = 1000.0 * rng.lognormal(0.0, 0.3, n)
    up = slice(start, start + rise_candles)
    top = slice(up.stop, up.stop + top_candles)
    down = slice(top.stop, top.stop + fall_candles)
    steps[up] += np.log1p(rise) / rise_candles
    steps[down] += np.log1p(-fall) / fall_candles
    volume[up] *= burst
    volume[top] *= burst / 2
    volume[down] *= burst / 2
    closes = price * np.exp(np.cumsum(steps))
    return Episode(candles(closes, rng, wick=price * sigma * 0.5, volume=volume), start, down.start)
