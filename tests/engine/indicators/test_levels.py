"""Swing points, support/resistance, Fibonacci levels and the volume profile on hand-checked data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

NAN = np.nan


def s(*values) -> pd.Series:
    index = pd.date_range("2024-01-01", periods=len(values), freq="1h", tz="UTC", name="date")
    return pd.Series(np.asarray(values, dtype=np.float64), index=index)


def call(registry, name, **kwargs):
    return registry.lookup(name).impl(**kwargs)


def test_swing_high_appears_only_once_confirmed(registry):
    high = s(1, 2, 3, 4, 5, 4, 3, 2, 1, 2)
    level = call(registry, "swing_high", left=2, right=2, lookback=3, high=high)
    # the top at candle 4 is confirmed two candles later and forgotten after `lookback` candles
    np.testing.assert_array_equal(level, [NAN] * 6 + [5, 5, 5, NAN])


def test_flat_top_counts_once_and_swing_low_mirrors(registry):
    high = s(1, 3, 3, 1, 0, 0)
    level = call(registry, "swing_high", left=1, right=2, lookback=10, high=high)
    np.testing.assert_array_equal(level, [NAN, NAN, NAN, 3, 3, 3])  # the first of the two 3s, known at 3
    low = s(5, 4, 2, 4, 5, 6)
    np.testing.assert_array_equal(
        call(registry, "swing_low", left=2, right=2, lookback=10, low=low), [NAN] * 4 + [2, 2]
    )


def test_resistance_is_the_nearest_swing_high_above_close(registry):
    #            0   1   2  3  4  5  6   7  8  9
    high = s(5, 10, 5, 4, 8, 4, 3, 3, 3, 3)
    close = s(4, 9, 4, 3, 7, 3, 7, 9, 11, 2)
    out = call(registry, "resistance", left=1, right=1, lookback=20, high=high, close=close)
    # swing highs: 10 (candle 1, known at 2) and 8 (candle 4, known at 5)
    np.testing.assert_array_equal(out, [NAN, NAN, 10, 10, 10, 8, 8, 10, NAN, 8])


def test_support_is_the_nearest_swing_low_below_close(registry):
    low = s(5, 1, 5, 6, 3, 6, 7, 7, 7)
    close = s(6, 2, 6, 7, 4, 7, 2, 0.5, 5)
    out = call(registry, "support", left=1, right=1, lookback=20, low=low, close=close)
    np.testing.assert_array_equal(out, [NAN, NAN, 1, 1, 1, 3, 1, NAN, 3])


def test_support_forgets_points_older_than_lookback(registry):
    low = s(5, 1, 5, 6, 6, 6, 6)
    close = s(6, 2, 6, 7, 7, 7, 7)
    out = call(registry, "support", left=1, right=1, lookback=3, low=low, close=close)
    np.testing.assert_array_equal(out, [NAN, NAN, 1, 1, 1, NAN, NAN])


def test_fib_retraces_the_latest_swing(registry):
    up_high, up_low = s(12, 14, 16, 18, 20), s(10, 12, 14, 16, 18)
    level = call(registry, "fib", length=5, level=0.618, trend="auto", high=up_high, low=up_low)
    assert level.iloc[-1] == pytest.approx(20 - 0.618 * 10)
    down_high, down_low = s(20, 18, 16, 14, 12), s(18, 16, 14, 12, 10)
    level = call(registry, "fib", length=5, level=0.618, trend="auto", high=down_high, low=down_low)
    assert level.iloc[-1] == pytest.approx(10 + 0.618 * 10)
    assert level.iloc[:4].isna().all()
    forced = call(registry, "fib", length=5, level=0.382, trend="up", high=down_high, low=down_low)
    assert forced.iloc[-1] == pytest.approx(20 - 0.382 * 10)


def test_volume_profile_by_hand(registry):
    # window of 4 candles over 0..8: bins of 2; typical prices 1, 3, 3, 7 with volumes 1, 5, 2, 3
    high = s(2, 4, 4, 8)
    low = s(0, 2, 2, 6)
    close = s(1, 3, 3, 7)
    volume = s(1, 5, 2, 3)
    out = call(
        registry,
        "volume_profile",
        length=4,
        bins=4,
        value_area=0.7,
        high=high,
        low=low,
        close=close,
        volume=volume,
    )
    last = out.iloc[-1]
    assert last["poc"] == pytest.approx(3.0)  # bin [2, 4): 7 of 11
    # 7/11 = 64% < 70%: add the heavier neighbour, bin [0, 2) (1) vs bin [4, 6) (0) -> [0, 4)
    assert (last["val"], last["vah"]) == (pytest.approx(0.0), pytest.approx(4.0))
    assert out.iloc[:3].isna().all().all()


def test_volume_profile_on_real_candles_brackets_the_poc(registry, eth):
    spec = registry.lookup("volume_profile")
    out = spec.impl(
        length=200, bins=30, value_area=0.7, **{c: eth[c] for c in ("high", "low", "close", "volume")}
    ).dropna()
    assert len(out) == len(eth) - 199
    assert (out["val"] <= out["poc"]).all() and (out["poc"] <= out["vah"]).all()
    window_low = eth["low"].rolling(200).min().loc[out.index]
    window_high = eth["high"].rolling(200).max().loc[out.index]
    assert (out["val"] >= window_low - 1e-12).all() and (out["vah"] <= window_high + 1e-12).all()
