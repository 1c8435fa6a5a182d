from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data.files import read_candle_file
from engine.data.resample import resample_candles, source_timeframe_for

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def test_matches_pandas_resample_on_real_candles(shared_data):
    candles, _ = read_candle_file(shared_data / "ETH_BTC-5m.csv")
    ours = resample_candles(candles, "5m", "1h")

    by_hand = candles.resample("1h").agg(AGG).dropna()
    # The data starts at 04:55 and ends at 04:50 + 5m: both edge hours are incomplete and dropped.
    assert candles.index[0] == pd.Timestamp("2018-01-10 04:55", tz="UTC")
    by_hand = by_hand.loc["2018-01-10 05:00":"2018-01-30 03:00"]
    pd.testing.assert_frame_equal(ours, by_hand, check_freq=False)
    assert ours.index[-1] == pd.Timestamp("2018-01-30 03:00", tz="UTC")


def test_gaps_inside_a_bucket_keep_it_empty_buckets_stay_gaps(shared_data):
    candles, _ = read_candle_file(shared_data / "TRX_BTC-5m.csv")  # has a few missing 5m candles
    hourly = resample_candles(candles, "5m", "1h")
    counts = candles["close"].resample("1h").count()
    short = counts[(counts > 0) & (counts < 12)].index
    assert len(short) > 0
    assert short.isin(hourly.index[1:-1]).any()  # hours with a missing 5m candle are still built

    one_day = candles.loc["2018-01-12"]
    holey = one_day.drop(one_day.loc["2018-01-12 10:00":"2018-01-12 11:55"].index)
    hourly = resample_candles(holey, "5m", "1h")
    assert pd.Timestamp("2018-01-12 10:00", tz="UTC") not in hourly.index
    assert pd.Timestamp("2018-01-12 12:00", tz="UTC") in hourly.index


def test_partial_edges_are_dropped():
    index = pd.date_range("2024-01-01 00:30", "2024-01-01 03:25", freq="5min", tz="UTC", name="date")
    candles = pd.DataFrame({c: np.ones(len(index)) for c in AGG}, index=index)
    hourly = resample_candles(candles, "5m", "1h")
    assert hourly.index.tolist() == [
        pd.Timestamp("2024-01-01 01:00", tz="UTC"),
        pd.Timestamp("2024-01-01 02:00", tz="UTC"),
    ]
    assert hourly["volume"].tolist() == [12.0, 12.0]
    # Ending exactly on a boundary keeps the last bucket.
    complete = resample_candles(candles.loc[:"2024-01-01 02:55"], "5m", "1h")
    assert complete.index[-1] == pd.Timestamp("2024-01-01 02:00", tz="UTC")


def test_weeks_start_on_monday():
    index = pd.date_range("2024-01-01", "2024-01-28 23:00", freq="D", tz="UTC", name="date")  # Mon .. Sun
    candles = pd.DataFrame({c: np.arange(len(index), dtype=float) + 1 for c in AGG}, index=index)
    weekly = resample_candles(candles, "1d", "1w")
    assert [ts.day_name() for ts in weekly.index] == ["Monday"] * 4
    assert weekly["open"].tolist() == [1.0, 8.0, 15.0, 22.0]
    assert weekly["close"].tolist() == [7.0, 14.0, 21.0, 28.0]


def test_source_timeframe_choice():
    assert source_timeframe_for("1h", ["5m", "15m", "4h"]) == "5m"
    assert source_timeframe_for("1w", ["3d", "1d"]) == "1d"
    assert source_timeframe_for("1w", ["3d"]) is None
    assert source_timeframe_for("5m", ["5m"]) is None
    assert source_timeframe_for("15m", ["3m", "5m"]) == "3m"


def test_incompatible_timeframes_raise():
    index = pd.date_range("2024", periods=3, freq="1h", tz="UTC", name="date")
    candles = pd.DataFrame({c: np.ones(3) for c in AGG}, index=index)
    with pytest.raises(ValueError, match="must divide"):
        resample_candles(candles, "1h", "30m")
