"""The machinery every chart pattern shares: candidates built from confirmed pivots, and the breakout scan.

Each pattern is a *geometry*: a function of the latest alternating pivots (as known on the candle the
last of them is confirmed) that returns a :class:`Candidate` or None. Geometries are written for the
upward breakout only (double bottom, inverse head and shoulders, ascending triangle, falling wedge,
bull flag); the downward patterns run the same geometry on the mirrored candles (prices negated, highs
and lows swapped) and negate the price outputs back.

A candidate fires at most once, on the first candle t, at or after the last pivot's confirmation, whose
close is above the breakout line, provided the closes since the last pivot never went below the
invalidation, the close at t has not already reached the target, and t is within ``max_length`` candles
of the pattern's start. Every input of that decision is a candle <= t, so the signal never repaints and
never looks ahead; every look-back is bounded (see :func:`warmup`), so the values do not depend on
where the history starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dsl.registry import Param
from dsl.types import BOOL, NUMBER
from engine.indicators._core import SpecList, column, const, length, text
from engine.indicators._pivots import alternating_tail, find_pivots, typical_range

__all__ = ["CHART", "RANGE", "Candidate", "Settings", "detect", "register_pattern", "warmup"]

# Candles in the typical-range unit that sizes are measured in.
RANGE = 50


@dataclass(frozen=True, slots=True)
class Settings:
    """The constant arguments of a pattern function (flags add a pole)."""

    left: int
    right: int
    tolerance: float
    min_length: int
    max_length: int
    min_height: float
    pole: float = 0.0
    pole_length: int = 0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pattern waiting for its breakout, in upward orientation. Lines are ``level + slope * (t -
    origin)``: the breakout line (a close above it confirms) and the far line (the pattern's other
    side). ``invalidation`` NaN means the far line at the breakout candle; ``target`` NaN means the
    breakout line plus ``height`` at the breakout candle (the measured move)."""

    start: int
    last: int
    origin: int
    level: float
    slope: float
    far_level: float
    far_slope: float
    height: float
    invalidation: float = math.nan
    target: float = math.nan
    expiry: int = 0  # last candle a breakout may come on; 0: start + max_length
    body_start: int = -1  # first candle that must lie between the lines; -1: start

    def line(self, t: np.ndarray | int) -> np.ndarray | float:
        return self.level + self.slope * (np.asarray(t) - self.origin)

    def far(self, t: np.ndarray | int) -> np.ndarray | float:
        return self.far_level + self.far_slope * (np.asarray(t) - self.origin)


Geometry = Callable[[np.ndarray, np.ndarray, np.ndarray, float, Settings], Candidate | None]


def warmup(settings: Settings) -> int:
    """Candles a value looks back: pivots of the pattern lie within ``max_length`` of the breakout,
    the pivot window of the candle the candidate was formed on within ``max_length`` before that, plus
    the pivot widths and the typical-range window."""
    return 2 * settings.max_length + settings.left + settings.right + RANGE + 2


def _fire(cand: Candidate, close: np.ndarray, confirmed: int, tolerance: float) -> int:
    """The breakout candle of ``cand`` or -1 (see the module docstring)."""
    n = len(close)
    slack = tolerance * cand.height
    body = np.arange((cand.start if cand.body_start < 0 else cand.body_start) + 1, cand.last + 1)
    inside = close[body]
    if np.any(inside > cand.line(body) + slack) or np.any(inside < cand.far(body) - slack):
        return -1
    stop = min(n, cand.expiry + 1)
    if confirmed >= stop:
        return -1
    tail = np.arange(cand.last + 1, stop)
    if not len(tail):
        return -1
    c = close[tail]
    death = cand.invalidation if math.isfinite(cand.invalidation) else cand.far(tail)
    broke = c > cand.line(tail)
    died = c < death
    events = np.flatnonzero(broke | died)
    if not len(events):
        return -1
    first = int(events[0])
    if died[first]:
        return -1
    t = int(tail[first])
    if t < confirmed:
        # Broken out before the shape was known: it counts on the confirming candle if still out.
        span = slice(first, confirmed - cand.last)
        if np.any(died[span]) or not broke[confirmed - cand.last - 1]:
            return -1
        t = confirmed
    target = cand.target if math.isfinite(cand.target) else float(cand.line(t)) + cand.height
    if close[t] >= target:
        return -1
    return t


def detect(
    geometry: Geometry,
    count: int,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    settings: Settings,
    mirrored: bool,
) -> dict[str, np.ndarray]:
    """Run one pattern over the candles: {signal, target, invalidation, size, duration} arrays."""
    high, low, close = (np.asarray(v, dtype=np.float64) for v in (high, low, close))
    if mirrored:
        high, low, close = -low, -high, -close
    n = len(close)
    signal = np.zeros(n, dtype=bool)
    values = np.full((4, n), np.nan)
    pivots = find_pivots(high, low, settings.left, settings.right, close)
    unit = typical_range(high, low, RANGE)
    confirmed = pivots.confirmed
    for k in range(len(pivots)):
        seen = int(confirmed[k])
        if seen >= n:
            break
        if not unit[seen] > 0:
            continue
        tail = alternating_tail(pivots, k, count, seen - settings.max_length)
        if tail is None:
            continue
        cand = geometry(*tail, float(unit[seen]), settings)
        if cand is None:
            continue
        limit = cand.start + settings.max_length
        if not cand.expiry or cand.expiry > limit:
            cand = replace(cand, expiry=limit)
        t = _fire(cand, close, seen, settings.tolerance)
        if t < 0:
            continue
        # Candidates come in the order they were formed: on a shared candle the latest one wins.
        signal[t] = True
        level = float(cand.line(t))
        values[0, t] = cand.target if math.isfinite(cand.target) else level + cand.height
        values[1, t] = cand.invalidation if math.isfinite(cand.invalidation) else float(cand.far(t))
        values[2, t] = cand.height
        values[3, t] = t - cand.start
    if mirrored:
        values[:2] = -values[:2]
    return {
        "signal": signal,
        "target": values[0],
        "invalidation": values[1],
        "size": values[2],
        "duration": values[3],
    }


# ----- registration ----------------------------------------------------------------------------------

CHART = "chart"
RETURNS = {"signal": BOOL, "target": NUMBER, "invalidation": NUMBER, "size": NUMBER, "duration": NUMBER}


def _params(defaults: Settings, flag: bool, directional: bool) -> list[Param]:
    params = [
        length("left", defaults.left, "pivot width: candles before a pivot that must be lower (higher)"),
        length("right", defaults.right, "candles after a pivot before it counts (its confirmation delay)"),
        const(
            "tolerance",
            defaults.tolerance,
            "how far levels that should match may differ, as a share of the pattern's height",
            minimum=0.0,
            maximum=1.0,
        ),
        length("min_length", defaults.min_length, "fewest candles from the first to the last pivot"),
        length(
            "max_length",
            defaults.max_length,
            "most candles from the pattern's start to its breakout",
            minimum=5,
            maximum=2000,
        ),
    ]
    if flag:
        params += [
            const("pole", defaults.pole, "smallest flagpole, in typical candle ranges", minimum=0.0),
            length("pole_length", defaults.pole_length, "most candles the flagpole may take"),
        ]
    else:
        params.append(
            const("min_height", defaults.min_height, "smallest height, in typical candle ranges", minimum=0.0)
        )
    if directional:
        params.append(text("direction", ("up", "down"), "up", "the breakout side that counts"))
    return [*params, column("high"), column("low"), column("close")]


def _settings(args: Mapping[str, Any]) -> Settings:
    return Settings(
        left=int(args["left"]),
        right=int(args["right"]),
        tolerance=float(args["tolerance"]),
        min_length=int(args["min_length"]),
        max_length=int(args["max_length"]),
        min_height=float(args.get("min_height", 0.0)),
        pole=float(args.get("pole", 0.0)),
        pole_length=int(args.get("pole_length", 0)),
    )


def register_pattern(
    specs: SpecList,
    name: str,
    geometry: Geometry,
    count: int,
    *,
    mirrored: bool,
    defaults: Settings,
    doc: str,
    example: str,
    flag: bool = False,
    directional: bool = False,
) -> Callable[..., Any]:
    """Add one pattern function to ``specs``: ``name(...)`` is true on its breakout candle and
    ``.target``, ``.invalidation``, ``.size``, ``.duration`` give its numbers there (NaN elsewhere)."""

    def impl(**args: Any) -> dict[str, np.ndarray]:
        settings = _settings(args)
        flip = mirrored != (args.get("direction", "up") == "down")
        return detect(geometry, count, args["high"], args["low"], args["close"], settings, flip)

    impl.__doc__ = doc + " " + _OUTPUT_DOC
    impl.__name__ = name
    return specs.function(
        name,
        _params(defaults, flag, directional),
        RETURNS,
        warmup=lambda a: warmup(_settings(a)),
        category=CHART,
        example=example,
        default_output="signal",
        arrays=True,
    )(impl)


_OUTPUT_DOC = (
    "Outputs, all on the breakout candle only (false / NaN elsewhere): ``signal`` (the default), "
    "``target`` (the measured-move price), ``invalidation`` (the price that proves the pattern wrong: "
    "a stop level), ``size`` (the height the target is measured with, in price) and ``duration`` "
    "(candles from the pattern's start to the breakout). In ``stops:`` use distances from the entry "
    "candle's close, e.g. ``take_profit: double_bottom().target - close``. Causal: built only from "
    "pivots confirmed ``right`` candles before, at or before the breakout candle; see docs/patterns.md."
)
