"""Malformed backtest input is a clear error naming the pair, the column and the candle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from engine.backtest import BacktestInputError, PairInput, run_backtest
from engine.trading import TradingParams
from tests.engine.trading.scenario import flat, pair


def frame(n: int = 5) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC", name="date")
    return pd.DataFrame({"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}, index=index)


def check(data: PairInput, message: str) -> None:
    with pytest.raises(BacktestInputError, match=message):
        run_backtest({"ETH/BTC": data}, TradingParams())


def test_length_mismatch():
    p = pair(flat(5))
    check(
        dataclasses.replace(p, exit_long=np.zeros(4, dtype=bool)),
        r"ETH/BTC: 'exit_long' has 4 values but there are 5 candles",
    )
    check(dataclasses.replace(p, close=p.close[:3]), r"'close' has 3 values")


def test_nan_and_non_positive_prices():
    p = pair(flat(5))
    close = p.close.copy()
    close[3] = np.nan
    check(
        dataclasses.replace(p, close=close), r"ETH/BTC: candle close is nan at 2024-01-01T03:00:00Z \(row 3\)"
    )
    low = p.low.copy()
    low[1] = 0.0
    check(dataclasses.replace(p, low=low), r"candle low is 0.0 at 2024-01-01T01:00:00Z")


def test_inconsistent_candle():
    p = pair([*flat(2), (100, 99, 98, 100)])
    check(p, r"at 2024-01-01T02:00:00Z \(row 2\) is inconsistent: open=100.0 high=99.0")


def test_unsorted_or_duplicate_times():
    p = pair(flat(4))
    t = p.open_time.copy()
    t[2] = t[1]
    check(dataclasses.replace(p, open_time=t), "strictly increasing")


def test_empty_and_no_pairs():
    check(pair(flat(1)).__class__(*(np.empty(0),) * 5), "no candles")
    with pytest.raises(BacktestInputError, match="no pairs"):
        run_backtest({}, TradingParams())


def test_infinite_stop_distance():
    p = pair(flat(3), stop_distance=[1.0, np.inf, 1.0])
    check(p, "'stop_distance' is infinite")


def test_from_frames_checks_the_signal_index_and_reads_warmup_nan_as_false():
    candles = frame()
    signals = pd.DataFrame({"entry_long": [np.nan, 1.0, 0.0, 0.0, 0.0], "rsi": 50.0}, index=candles.index)
    data = PairInput.from_frames(candles, signals, timeframe="5m")
    assert data.entry_long.tolist() == [False, True, False, False, False]
    assert data.timeframe_ns == 300 * 10**9
    with pytest.raises(BacktestInputError, match="not on the candles' index"):
        PairInput.from_frames(candles, signals.iloc[1:])
    with pytest.raises(BacktestInputError, match="missing column"):
        PairInput.from_frames(candles.drop(columns="low"))


def test_bad_params_are_clear_errors():
    with pytest.raises(ValueError, match="stop_loss must be a ratio"):
        TradingParams(stop_loss=5)
    with pytest.raises(ValueError, match="market must be 'spot' or 'futures'"):
        TradingParams(market="margin")  # type: ignore[arg-type]
    from engine.trading import StoplossGuard

    with pytest.raises(ValueError, match=r"stoploss_guard\.lookback: invalid duration"):
        StoplossGuard(2, "1 day", "1h")


def test_datetime64_times_are_accepted_and_other_types_refused():
    p = pair(flat(4), entry_long=[0])
    as_dt = dataclasses.replace(p, open_time=p.open_time.astype("datetime64[ns]").astype("datetime64[s]"))
    ref = run_backtest({"X": p}, TradingParams()).trades
    pd.testing.assert_frame_equal(run_backtest({"X": as_dt}, TradingParams()).trades, ref)
    check(dataclasses.replace(p, open_time=p.open_time.astype(float)), "open_time must be int64 nanoseconds")


def test_nullable_signal_dtypes():
    candles = frame(4)
    signals = pd.DataFrame(
        {
            "entry_long": pd.array([pd.NA, True, False, False], dtype="boolean"),
            "stop_distance": pd.array([pd.NA, 0.1, 0.2, 0.3], dtype="Float64"),
        },
        index=candles.index,
    )
    data = PairInput.from_frames(candles, signals)
    assert data.entry_long.tolist() == [False, True, False, False]
    assert np.isnan(data.stop_distance[0]) and data.stop_distance[1] == 0.1
