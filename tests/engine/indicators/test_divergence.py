"""Divergences: drawn cases with a known answer, the prefix property through the DSL, and ``@1h``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsl import compile_expression, resample_candles
from engine.indicators._divergence import divergence

N = 90


def _valleys(first: float, second: float, at=(20, 50)) -> np.ndarray:
    """A series with two V-shaped lows of the given depths at candles ``at`` (and level 0 elsewhere)."""
    t = np.arange(N, dtype=np.float64)
    out = np.zeros(N)
    for centre, depth in zip(at, (first, second), strict=True):
        out = np.minimum(out, -depth + np.abs(t - centre) * depth / 8)
    return out


def _run(osc, price, bullish, hidden, **kw):
    args = {"left": 5, "right": 5, "min_distance": 5, "max_distance": 60} | kw
    return divergence(osc, price, bullish=bullish, hidden=hidden, **args)


@pytest.mark.parametrize(
    ("price_depths", "osc_depths", "bullish", "hidden"),
    [
        ((2.0, 3.0), (3.0, 2.0), True, False),  # price lower low, oscillator higher low
        ((3.0, 2.0), (2.0, 3.0), True, True),  # price higher low, oscillator lower low
        ((2.0, 3.0), (3.0, 2.0), False, False),  # mirrored: price higher high, oscillator lower high
        ((3.0, 2.0), (2.0, 3.0), False, True),
    ],
)
def test_drawn_divergence_fires_right_candles_after_the_second_pivot(
    price_depths, osc_depths, bullish, hidden
):
    sign = 1.0 if bullish else -1.0
    price = 100 + sign * _valleys(*price_depths)
    osc = 50 + sign * _valleys(*osc_depths)
    fired = _run(osc, price, bullish, hidden)
    assert np.flatnonzero(fired).tolist() == [50 + 5]
    # The other kind and the other side stay silent on the same drawing.
    assert not _run(osc, price, bullish, not hidden).any()
    assert not _run(osc, price, not bullish, hidden).any()
    # Pivots 30 candles apart: outside [5, 20] and inside [31, 60] -> nothing; inside [5, 30] -> fires.
    assert not _run(osc, price, bullish, hidden, max_distance=20).any()
    assert not _run(osc, price, bullish, hidden, min_distance=31).any()
    assert _run(osc, price, bullish, hidden, max_distance=30).any()


def test_same_direction_is_no_divergence():
    price = 100 + _valleys(2.0, 3.0)
    osc = 50 + _valleys(2.0, 3.0)
    for hidden in (False, True):
        assert not _run(osc, price, True, hidden).any()


EXPRESSIONS = [
    "bullish_divergence(rsi(close, 14))",
    "bullish_divergence(rsi(close, 14), hidden=true)",
    "bearish_divergence(macd(close).hist, right=3)",
    "bearish_divergence(rsi(close, 14), hidden=true, left=3)",
    "bullish_divergence(rsi(close, 14))@1h",
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_values_on_data_cut_at_t_are_the_values_up_to_t(registry, eth, source):
    plan = compile_expression(source, registry, "5m")
    full = plan.evaluate(eth).iloc[:, 0].to_numpy()
    assert full.any(), "no divergence in 20 days of ETH/BTC: the test would prove nothing"
    for cut in (700, 2311, 4000):
        head = plan.evaluate(eth.iloc[:cut]).iloc[:, 0].to_numpy()
        np.testing.assert_array_equal(head, full[:cut])


def test_an_hourly_divergence_reaches_5m_candles_once_its_hour_has_closed(registry, eth):
    on_5m = compile_expression("bullish_divergence(rsi(close, 14))@1h", registry, "5m").evaluate(eth)
    hourly = resample_candles(eth, "1h")
    on_1h = compile_expression("bullish_divergence(rsi(close, 14))", registry, "1h").evaluate(hourly)
    events = on_1h.index[on_1h.iloc[:, 0].to_numpy()]
    assert len(events) >= 1
    flags = pd.Series(on_5m.iloc[:, 0].to_numpy(), index=eth.index)
    for hour in events:
        closed = hour + pd.Timedelta("1h")
        # The last 5m candle of the hour closes with it: true from there until the next hour closes.
        assert flags[closed - pd.Timedelta("5m") : closed + pd.Timedelta("50m")].all()
        assert not flags[hour : closed - pd.Timedelta("10m")].any()


def test_consensus_shift_marks_the_turn_of_the_large_traders_against_the_crowd():
    from engine.indicators._divergence import consensus_shift

    top = np.array([np.nan, 0.9, 0.95, 1.1, 1.2, 1.05, 0.9, 0.8, 1.3])
    crowd = np.array([0.8, 0.8, 0.8, 0.9, 0.9, 1.2, 1.2, 1.2, 1.1])
    out = consensus_shift(top, crowd, 1.0)
    # 1.1 at [3]: top turns long, crowd short -> +1; 0.9 at [6]: top turns short, crowd long -> -1;
    # 1.3 at [8]: top turns long but the crowd is long too -> 0.
    assert out.tolist() == [0, 0, 0, 1, 0, 0, -1, 0, 0]
