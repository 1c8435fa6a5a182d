"""Deterministic, realistic-looking sample candles for machines without market data.

The price is a geometric random walk whose drift and volatility switch between regimes:

* trend regimes (ranging, bull, bear) last from a few days to a few weeks, each with its own drift;
* volatility regimes (calm, normal, turbulent) switch independently, and a slowly varying noise on
  log-volatility adds volatility clusters inside each regime;
* innovations are Student-t (fat tails); rare "news" candles jump by 1-4 % and carry a burst of volume;
  volume otherwise follows volatility with lognormal noise;
* short exchange outages remove a few candles (gaps); the next candle opens where the price has moved to.

Everything is drawn from ``numpy.random`` streams seeded by (seed, pair), vectorised (no Python loop per
candle), and rounded to a price tick, so the same arguments give the same candles on every run and platform
with the locked numpy version. The series depends on (seed, pair, timeframe) and is prefix-stable: a longer
period from the same start begins with exactly the candles of a shorter one.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dsl.timeframes import timeframe_seconds
from engine.data.naming import normalize_pair
from engine.data.validate import CANDLE_COLUMNS, timeframe_origin_ns

__all__ = ["SynthParams", "synth_candles"]

_YEAR_S = 365 * 86_400
_NS = 1_000_000_000
_STREAMS = (
    "price", "knots", "vol_len", "vol_label", "trend_len", "trend_label", "shock", "news", "jump",
    "upper_wick", "lower_wick", "volume", "burst", "outage", "outage_len",
)  # fmt: skip
# Typical turnover per minute in the quote currency.
_QUOTE_TURNOVER = {"BTC": 5.0, "ETH": 80.0, "BNB": 500.0}
_KNOWN_PRICES = {
    "BTC/USDT": 30_000.0,
    "ETH/USDT": 2_000.0,
    "BNB/USDT": 300.0,
    "SOL/USDT": 100.0,
    "XRP/USDT": 0.5,
    "ADA/USDT": 0.4,
    "DOGE/USDT": 0.08,
    "LTC/USDT": 80.0,
    "ETH/BTC": 0.06,
    "BNB/BTC": 0.01,
    "XRP/BTC": 2e-5,
    "LTC/BTC": 0.003,
}


@dataclass(frozen=True, slots=True)
class SynthParams:
    """Shape of the generated market; the defaults look like a large-cap crypto pair."""

    annual_vol: float = 0.6
    trend_days: float = 9.0  # mean length of a trend regime
    vol_regime_days: float = 5.0  # mean length of a volatility regime
    trend_drift: float = 1.5  # annualised drift of a bull/bear regime (log terms)
    tail_df: float = 4.0  # Student-t degrees of freedom
    news_per_day: float = 0.3  # expected "news" jumps (1-4 % moves with a volume burst) per day
    outages_per_month: float = 1.0
    outage_minutes: tuple[float, float] = (5.0, 180.0)


def _seed(seed: int, pair: str) -> np.random.SeedSequence:
    # crc32, not hash(): Python salts str hashes per process.
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(pair.encode())])


def _start_price(pair: str, rng: np.random.Generator) -> float:
    if pair in _KNOWN_PRICES:
        return _KNOWN_PRICES[pair]
    quote = pair.split("/")[1].split(":")[0]
    if quote in ("BTC", "ETH", "BNB"):
        return float(10 ** rng.uniform(-6, -2))
    return float(10 ** rng.uniform(-2, 2))


def _regimes(
    lengths_rng: np.random.Generator,
    labels_rng: np.random.Generator,
    n: int,
    mean_len: float,
    levels: np.ndarray,
) -> np.ndarray:
    """A level per candle: segments of exponential length, each at a uniformly drawn one of ``levels``."""
    mean_len = max(mean_len, 1.0)
    count = int(n / mean_len * 2) + 16
    lengths = np.maximum(1, lengths_rng.exponential(mean_len, count).astype(np.int64))
    while lengths.sum() < n:  # vanishingly rare; keeps the draw valid for any n
        lengths = np.r_[lengths, np.maximum(1, lengths_rng.exponential(mean_len, count).astype(np.int64))]
    labels = labels_rng.integers(0, len(levels), len(lengths))
    return np.repeat(levels[labels], lengths)[:n]


def synth_candles(
    pair: str,
    timeframe: str,
    start: Any,
    end: Any = None,
    *,
    periods: int | None = None,
    seed: int = 42,
    start_price: float | None = None,
    params: SynthParams | None = None,
) -> pd.DataFrame:
    """Synthetic candles (frame contract) from ``start`` to ``end`` (exclusive) or for ``periods`` candles.

    ``start`` is rounded up to a ``timeframe`` boundary. Gaps are real gaps: the missing candles are absent.
    """
    pair = normalize_pair(pair)
    p = params or SynthParams()
    tf_s = timeframe_seconds(timeframe)
    step = tf_s * _NS
    origin = timeframe_origin_ns(timeframe)
    first = pd.Timestamp(start)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    first_ns = -((origin - first.as_unit("ns").value) // step) * step + origin
    if periods is None:
        if end is None:
            raise ValueError("synth_candles needs an end or a number of periods")
        stop = pd.Timestamp(end)
        stop = stop.tz_localize("UTC") if stop.tzinfo is None else stop.tz_convert("UTC")
        periods = max(0, -((first_ns - stop.as_unit("ns").value) // step))
    n = int(periods)
    if n <= 0:
        raise ValueError(f"empty period: no {timeframe} candle opens between {start} and {end}")

    # One independent stream per ingredient: each draws a prefix-stable sequence, so a longer period
    # extends a shorter one instead of reshuffling it.
    rng = dict(
        zip(_STREAMS, (np.random.default_rng(s) for s in _seed(seed, pair).spawn(len(_STREAMS))), strict=True)
    )
    p0 = start_price if start_price is not None else _start_price(pair, rng["price"])
    candles_per_day = 86_400 / tf_s
    sigma = p.annual_vol * np.sqrt(tf_s / _YEAR_S)
    # Buffers are updated in place: at millions of candles, fresh temporaries cost more than the maths.

    # Volatility: regime level times a smooth lognormal cluster factor, whose log is interpolated between
    # random knots about half a day apart (at most 720 candles).
    spacing = max(2.0, min(candles_per_day / 2, 720.0))
    knots = rng["knots"].standard_normal(int(n / spacing) + 2) * 0.5
    sig = np.interp(np.arange(n) / spacing, np.arange(len(knots)), knots)
    sig -= 0.125
    np.exp(sig, out=sig)
    vol_levels = np.array([0.55, 1.0, 1.9]) * sigma
    sig *= _regimes(rng["vol_len"], rng["vol_label"], n, p.vol_regime_days * candles_per_day, vol_levels)

    # Log returns: regime drift (ranging, bull, bear) plus fat-tailed shocks scaled by the volatility; no
    # volatility drag, so the median price neither grows nor decays outside trend regimes.
    per_year = tf_s / _YEAR_S
    returns = rng["shock"].standard_t(p.tail_df, n)
    returns *= np.sqrt((p.tail_df - 2) / p.tail_df)
    returns *= sig
    drifts = np.array([0.0, 1.0, -1.0]) * p.trend_drift * per_year
    returns += _regimes(rng["trend_len"], rng["trend_label"], n, p.trend_days * candles_per_day, drifts)
    # News: rare jumps of a few percent, whatever the timeframe, with a burst of volume.
    news = np.flatnonzero(
        rng["news"].random(n, dtype=np.float32) < min(1.0, p.news_per_day / candles_per_day)
    )
    direction = rng["jump"].uniform(-1.0, 1.0, len(news))
    returns[news] += np.sign(direction) * (0.01 + 0.03 * np.abs(direction))

    close = np.cumsum(returns, out=returns)
    close += np.log(p0)
    np.exp(close, out=close)
    open_ = np.empty(n)
    open_[0] = p0
    open_[1:] = close[:-1]
    # Wicks and noise terms use float32 draws: twice as fast, and precision does not matter there.
    high = rng["upper_wick"].standard_exponential(n, dtype=np.float32).astype(np.float64)
    high *= 0.5
    high *= sig
    np.exp(high, out=high)
    high *= np.maximum(open_, close)
    low = rng["lower_wick"].standard_exponential(n, dtype=np.float32).astype(np.float64)
    low *= -0.5
    low *= sig
    np.exp(low, out=low)
    low *= np.minimum(open_, close)

    # Volume in base units: a steady quote turnover per minute, more when volatile, bursts on news
    # (10-50 minutes' worth of turnover on top, so a spike stands out most on short timeframes).
    per_minute = _QUOTE_TURNOVER.get(pair.split("/")[1].split(":")[0], 2e5)
    volume = rng["volume"].standard_normal(n, dtype=np.float32).astype(np.float64)
    volume *= 0.5
    np.exp(volume, out=volume)
    intensity = sig / sigma
    volume *= intensity
    volume *= np.sqrt(intensity, out=intensity)
    volume *= per_minute * tf_s / 60
    volume[news] += per_minute * rng["burst"].uniform(10.0, 50.0, len(news))
    volume /= close

    # Six significant digits at the start price, like an exchange's tick size.
    decimals = int(5 - np.floor(np.log10(p0)))
    for prices in (open_, high, low, close):
        np.round(prices, decimals, out=prices)
    np.maximum(low, 10.0**-decimals, out=low)
    np.round(volume, 6, out=volume)

    keep = _outage_mask(rng["outage"], rng["outage_len"], n, tf_s, p)
    times = np.arange(n, dtype=np.int64)
    times *= step
    times += first_ns
    index = pd.DatetimeIndex(times[keep], tz="UTC", name="date").as_unit("ns")
    columns = dict(zip(CANDLE_COLUMNS, (open_, high, low, close, volume), strict=True))
    return pd.DataFrame({c: v[keep] for c, v in columns.items()}, index=index, copy=False)


def _outage_mask(
    starts_rng: np.random.Generator, lengths_rng: np.random.Generator, n: int, tf_s: int, p: SynthParams
) -> np.ndarray:
    """True for candles that exist; outages shorter than one candle leave no hole."""
    keep = np.ones(n, dtype=bool)
    starts = np.flatnonzero(
        starts_rng.random(n, dtype=np.float32) < p.outages_per_month * tf_s / (30 * 86_400)
    )
    low, high = np.log(p.outage_minutes[0]), np.log(p.outage_minutes[1])
    lengths = (np.exp(lengths_rng.uniform(low, high, len(starts))) * 60 // tf_s).astype(np.int64)
    for begin, length in zip(starts, lengths, strict=True):  # a handful per month of data
        keep[begin : begin + length] = False
    return keep
