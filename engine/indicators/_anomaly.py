"""Pump-and-dump scoring from candles: volume and price-velocity anomalies against the pair's own history.

Each candle is compared with the ``length`` candles before its last ``fast`` ones (the baseline), with
robust statistics (median and interquartile range, so one earlier spike does not hide the next):

- *velocity*: the log return of the last ``fast`` candles, in units of the baseline's typical
  ``fast``-candle move (IQR / 1.349 of one-candle log returns x sqrt(fast));
- *volume*: the log of the mean volume of the last ``fast`` candles, in units of the baseline's spread
  of log volume, above its median.

``pump_score`` is the geometric mean of the positive parts of both (zero unless price rises *and*
volume swells); ``dump_risk`` takes the larger of a *crash* (price falling fast on swollen volume) and a
*fade* (a pump within the last ``memory`` candles whose price now slides from its peak). Every window
is computed on its own, so values never depend on where the history starts. Taker-buy bursts, order-book
imbalance and exchange inflows are feed series (docs/patterns.md, "Anomalies"): rules combine them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from dsl.types import NUMBER
from engine.indicators._core import SpecList, column, length, rolling_max

SPECS = SpecList()

ANOMALY = "anomaly"
IQR_SCALE = 1.349  # interquartile range of a normal sample / this = its standard deviation


def _median_spread(values: np.ndarray, length: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Per candle t, the median and the robust spread (interquartile range / 1.349: the standard
    deviation of a normal sample) of ``values[t - lag - length + 1 : t - lag + 1]``; NaN until full
    or when the window holds a NaN. Rolling quantiles sort each window's own values, so nothing
    carries over from where the history starts."""
    rolling = pd.Series(values).rolling(length, min_periods=length)
    median = rolling.median().to_numpy()
    spread = ((rolling.quantile(0.75) - rolling.quantile(0.25)) / IQR_SCALE).to_numpy()
    return _lagged(median, lag), _lagged(spread, lag)


def _lagged(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(len(values), np.nan)
    if lag < len(values):
        out[lag:] = values[: len(values) - lag]
    return out


def anomaly_z(
    close: np.ndarray, volume: np.ndarray, length: int, fast: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(velocity z, volume z, typical fast-move) per candle; see the module docstring."""
    close = np.asarray(close, dtype=np.float64)
    volume = np.asarray(volume, dtype=np.float64)
    n = len(close)
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(close)
        step = np.full(n, np.nan)
        step[1:] = np.diff(logc)
        move = np.full(n, np.nan)
        move[fast:] = logc[fast:] - logc[:-fast]
        _, step_spread = _median_spread(step, length, fast)
        typical = step_spread * np.sqrt(fast)
        velocity = move / typical
        logv = np.log(np.maximum(volume, 0.0) + 1e-12)
        recent = np.full(n, np.nan)
        if n >= fast:
            recent[fast - 1 :] = np.log(
                sliding_window_view(np.maximum(volume, 0.0), fast).mean(axis=1) + 1e-12
            )
        v_med, v_spread = _median_spread(logv, length, fast)
        swell = (recent - v_med) / v_spread
    velocity[~np.isfinite(velocity)] = np.nan
    swell[~np.isfinite(swell)] = np.nan
    return velocity, swell, typical


def _both(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geometric mean of the positive parts: zero unless both are positive."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.clip(a, 0.0, None) * np.clip(b, 0.0, None))


def _params(memory: bool) -> list:
    params = [
        length("length", 288, "baseline candles (288 = one day of 5m candles)", minimum=10, maximum=5000),
        length("fast", 3, "candles the burst is measured over", maximum=100),
    ]
    if memory:
        params.append(length("memory", 36, "how long a pump is remembered for the fade component"))
    return [*params, column("close"), column("volume")]


@SPECS.function(
    "pump_score",
    _params(False),
    {"score": NUMBER, "velocity": NUMBER, "volume": NUMBER},
    warmup=lambda a: a["length"] + a["fast"] + 1,
    category=ANOMALY,
    example="pump_score().score > 4",
    default_output="score",
    arrays=True,
)
def pump_score(length: int, fast: int, close: np.ndarray, volume: np.ndarray) -> dict[str, np.ndarray]:
    """Pump score of each candle: ``sqrt(max(velocity, 0) x max(volume, 0))``. ``velocity`` is the
    log return of the last ``fast`` candles over the pair's typical ``fast``-candle move (the
    interquartile range / 1.349 of one-candle log returns in the ``length`` candles before them,
    x sqrt(fast)); ``volume`` is the log of the last ``fast`` candles' mean volume minus the median log
    volume of those ``length`` candles, over their interquartile range / 1.349. Both are robust z-scores against the pair's own recent history,
    so 3 means "three typical deviations". The score is 0 unless price rises and volume swells
    together; on 2018 Binance 5m candles, scores above 4 are about one a day per pair (bench/pump.py)."""
    velocity, swell, _ = anomaly_z(close, volume, length, fast)
    return {"score": _both(velocity, swell), "velocity": velocity, "volume": swell}


@SPECS.function(
    "dump_risk",
    _params(True),
    {"score": NUMBER, "crash": NUMBER, "fade": NUMBER},
    warmup=lambda a: a["length"] + a["fast"] + a["memory"] + 1,
    category=ANOMALY,
    example="dump_risk().score > 3",
    default_output="score",
    arrays=True,
)
def dump_risk(
    length: int, fast: int, memory: int, close: np.ndarray, volume: np.ndarray
) -> dict[str, np.ndarray]:
    """Dump risk of each candle: the larger of ``crash`` and ``fade``. ``crash`` is
    ``sqrt(max(-velocity, 0) x max(volume, 0))`` with ``pump_score``'s velocity and volume z-scores (a
    fast fall on swollen volume). ``fade`` is ``sqrt(pump x giveback)``: ``pump`` the highest pump
    score of the last ``memory`` candles, ``giveback`` the fall of the close from the highest close of
    those candles in typical ``fast``-candle moves (0 when no pump was seen or price is at its peak):
    the dump after a pump, before its volume shows. Use it to leave: ``exit: dump_risk().score > 3``."""
    velocity, swell, typical = anomaly_z(close, volume, length, fast)
    pump = _both(velocity, swell)
    crash = _both(-velocity, swell)
    close = np.asarray(close, dtype=np.float64)
    recent_pump = rolling_max(np.nan_to_num(pump, nan=0.0), memory)
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = rolling_max(close, memory)
        giveback = np.log(peak / close) / typical
    fade = _both(recent_pump, giveback)
    score = np.fmax(crash, fade)
    score[~(np.isfinite(velocity) & np.isfinite(swell))] = np.nan
    return {"score": score, "crash": crash, "fade": fade}
