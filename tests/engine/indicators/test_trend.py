"""supertrend, ichimoku and vwap against independent computations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import talib


def reference_supertrend(high, low, close, length, multiplier):
    """TradingView's SuperTrend written out step by step (Pine v4 `supertrend()`)."""
    atr = talib.ATR(high, low, close, length)
    hl2 = (high + low) / 2
    trend = np.full(len(close), np.nan)
    direction = np.full(len(close), np.nan)
    up1 = dn1 = None
    d = 1
    for i in range(len(close)):
        if np.isnan(atr[i]):
            continue
        up = hl2[i] - multiplier * atr[i]
        dn = hl2[i] + multiplier * atr[i]
        if up1 is not None:
            up = max(up, up1) if close[i - 1] > up1 else up
            dn = min(dn, dn1) if close[i - 1] < dn1 else dn
            if d == -1 and close[i] > dn1:
                d = 1
            elif d == 1 and close[i] < up1:
                d = -1
        trend[i] = up if d == 1 else dn
        direction[i] = d
        up1, dn1 = up, dn
    return trend, direction


def test_supertrend_matches_the_reference(registry, eth):
    h, lo, c = (eth[k].to_numpy() for k in ("high", "low", "close"))
    out = registry.lookup("supertrend").impl(
        length=10, multiplier=3.0, high=eth.high, low=eth.low, close=eth.close
    )
    trend, direction = reference_supertrend(h, lo, c, 10, 3.0)
    np.testing.assert_allclose(out["trend"], trend, rtol=1e-12)
    np.testing.assert_array_equal(out["direction"], direction)
    long_side = direction > 0
    np.testing.assert_array_equal(out["long"].notna(), long_side)
    np.testing.assert_array_equal(out["short"].notna(), direction < 0)
    assert set(np.unique(direction[~np.isnan(direction)])) == {-1.0, 1.0}


def test_supertrend_flips_when_price_breaks_the_band(registry):
    index = pd.date_range("2024-01-01", periods=40, freq="1h", tz="UTC")
    close = pd.Series(np.r_[np.linspace(100, 120, 20), np.linspace(119, 80, 20)], index=index)
    out = registry.lookup("supertrend").impl(
        length=3, multiplier=1.0, high=close + 0.5, low=close - 0.5, close=close
    )
    direction = out["direction"].dropna()
    assert direction.iloc[0] == 1 and direction.iloc[-1] == -1
    assert (out["trend"] < close).loc[direction.index[direction > 0]].all()  # a stop below price when long


def test_ichimoku_matches_pandas_ta_without_chikou(registry, eth):
    from engine.indicators._pandas_ta import _pandas_ta

    ours = registry.lookup("ichimoku").impl(conversion=9, base=26, span=52, high=eth.high, low=eth.low)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, _ = _pandas_ta().ichimoku(eth.high, eth.low, eth.close, 9, 26, 52)
    pd.testing.assert_series_equal(ours["conversion"], theirs["ITS_9"], check_names=False)
    pd.testing.assert_series_equal(ours["base"], theirs["IKS_26"], check_names=False)
    pd.testing.assert_series_equal(ours["span_a"], theirs["ISA_9"], check_names=False)
    pd.testing.assert_series_equal(ours["span_b"], theirs["ISB_26"], check_names=False)
    assert "chikou" not in ours


def _hourly(start: str, periods: int) -> pd.DataFrame:
    index = pd.date_range(start, periods=periods, freq="12h", tz="UTC", name="date")
    price = np.arange(1.0, periods + 1.0)
    return pd.DataFrame(
        {"high": price + 1, "low": price - 1, "close": price, "volume": np.arange(periods, dtype=float) + 1},
        index=index,
    )


def _vwap(registry, frame, anchor="day"):
    cols = {c: frame[c] for c in ("high", "low", "close", "volume")}
    return registry.lookup("vwap").impl(anchor=anchor, **cols)


def test_vwap_restarts_each_utc_day(registry):
    frame = _hourly("2024-01-01 00:00", 4)  # two candles per day; typical price == close
    out = _vwap(registry, frame)
    expected = [1.0, (1 * 1 + 2 * 2) / 3, 3.0, (3 * 3 + 4 * 4) / 7]
    np.testing.assert_allclose(out, expected)


def test_vwap_hides_a_partial_first_session(registry):
    frame = _hourly("2024-01-01 12:00", 4)  # the data starts mid-day
    out = _vwap(registry, frame)
    assert np.isnan(out.iloc[0])
    np.testing.assert_allclose(out.iloc[1:], [2.0, (2 * 2 + 3 * 3) / 5, 4.0])


@pytest.mark.parametrize(("anchor", "first_complete"), [("week", "2024-01-08"), ("month", "2024-02-01")])
def test_vwap_week_and_month_anchors(registry, anchor, first_complete):
    index = pd.date_range("2024-01-03", "2024-03-01", freq="1D", tz="UTC", name="date")
    frame = pd.DataFrame({"high": 2.0, "low": 0.0, "close": 1.0, "volume": 1.0}, index=index)
    frame.loc[first_complete:, ["high", "close"]] = [4.0, 3.0]  # typical price jumps to 7/3
    out = _vwap(registry, frame, anchor)
    assert out.loc[: pd.Timestamp(first_complete, tz="UTC") - pd.Timedelta("1D")].isna().all()
    np.testing.assert_allclose(out.loc[first_complete:], 7 / 3)
