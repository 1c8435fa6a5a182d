"""Array-native functions give, bit for bit, what their pandas formulas gave (same NaN positions, same
bools), on random candles with NaN gaps (TA-Lib restarts after each gap) and on real candles.

The references below are the pandas implementations these functions had before they were written on
arrays, kept here as the specification of their values."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import talib

from dsl.registry import Column
from dsl.types import Kind
from engine.indicators import default_registry


def _frame_with_gaps(count: int = 700, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, count))
    spread = np.abs(rng.normal(0, 0.004, count)) * close
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 100, count),
        },
        index=pd.date_range("2024-01-01", periods=count, freq="5min", tz="UTC", name="date"),
    )
    # Flat stretches (zero spread, equal closes) exercise divisions by zero and ties.
    frame.iloc[200:230] = frame.iloc[200].to_numpy()
    # Isolated NaN, a longer gap, a gap right at the start and a short run between two gaps.
    for column, rows in {
        "close": [0, 1, 120, 400, 401, 402, 405],
        "high": [300, 550],
        "low": [301, 560],
        "open": [450],
        "volume": [90, 91, 640],
    }.items():
        frame.iloc[rows, frame.columns.get_loc(column)] = np.nan
    return frame


GAPS = _frame_with_gaps()


def _runs(inputs: dict[str, pd.Series]):
    """(start, stop) of each run where every input is finite (a plain, independent segmentation)."""
    finite = np.logical_and.reduce([np.isfinite(s.to_numpy(dtype=np.float64)) for s in inputs.values()])
    position = 0
    for ok, group in itertools.groupby(finite):
        size = len(list(group))
        if ok:
            yield position, position + size
        position += size


def _talib_runs(name: str, inputs: dict[str, pd.Series], width: int | None = None, **params) -> np.ndarray:
    """TA-Lib on each finite run, NaN elsewhere, inf as NaN: the previous ``_talib`` / ``by_segments``."""
    size = len(next(iter(inputs.values())))
    out = np.full((size, width or 1), np.nan)
    for start, stop in _runs(inputs):
        result = getattr(talib, name)(
            *(s.to_numpy(dtype=np.float64)[start:stop] for s in inputs.values()), **params
        )
        out[start:stop] = np.column_stack(result) if width else np.asarray(result)[:, None]
    out[np.isinf(out)] = np.nan
    return out if width else out[:, 0]


def _clean(values) -> np.ndarray:
    array = np.array(values, dtype=np.float64, copy=True)
    array[np.isinf(array)] = np.nan
    return array


def _bools(values) -> np.ndarray:
    array = np.asarray(values)
    return array if array.dtype == bool else np.nan_to_num(array.astype(np.float64), nan=0.0) != 0


def _hlc(c):
    return {"high": c["high"], "low": c["low"], "close": c["close"]}


def _bbands(c):
    close = c["close"]
    upper, middle, lower = _talib_runs(
        "BBANDS", {"c": close}, 3, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0
    ).T
    upper, middle, lower = (pd.Series(v, index=close.index) for v in (upper, middle, lower))
    width = upper - lower
    return {
        "lower": lower,
        "middle": middle,
        "upper": upper,
        "bandwidth": _clean(width / middle),
        "percent": _clean((close - lower) / width),
    }


def _donchian(c):
    upper = c["high"].rolling(20, min_periods=20).max()
    lower = c["low"].rolling(20, min_periods=20).min()
    return {"lower": _clean(lower), "middle": _clean((upper + lower) / 2), "upper": _clean(upper)}


def _keltner(c):
    middle = _talib_runs("EMA", {"c": c["close"]}, timeperiod=20)
    band = 2.0 * _talib_runs("ATR", _hlc(c), timeperiod=10)
    return {"lower": middle - band, "middle": middle, "upper": middle + band}


def _zscore(source: pd.Series, length: int):
    window = source.rolling(length, min_periods=length)
    mean, spread = window.mean(), window.std(ddof=0)
    spread = spread.where(spread > 1e-12 * mean.abs().clip(lower=1e-300))
    return _clean((source - mean) / spread)


def _bars_since(condition: pd.Series):
    positions = np.arange(len(condition), dtype=np.float64)
    last = pd.Series(np.where(condition.to_numpy(), positions, np.nan)).ffill().to_numpy()
    return positions - last


def _pattern(c, name: str, direction: str):
    ohlc = {k: c[k] for k in ("open", "high", "low", "close")}
    size = len(c)
    values = np.full(size, np.nan)
    for start, stop in _runs(ohlc):
        fn = getattr(talib, f"CDL{name.upper()}")
        values[start:stop] = fn(*(s.to_numpy(dtype=np.float64)[start:stop] for s in ohlc.values()))
    if direction == "bullish":
        return values > 0
    if direction == "bearish":
        return values < 0
    return np.nan_to_num(values) != 0


def _ema(c, n):
    return pd.Series(_talib_runs("EMA", {"c": c["close"]}, timeperiod=n), index=c.index)


# (function, arguments beyond the candle-column defaults (callables take the candles), reference)
CASES = {
    "sma": (
        {"source": "close", "length": 30},
        lambda c: _talib_runs("SMA", {"s": c["close"]}, timeperiod=30),
    ),
    "ema": (
        {"source": "close", "length": 12},
        lambda c: _talib_runs("EMA", {"s": c["close"]}, timeperiod=12),
    ),
    "wma": (
        {"source": "close", "length": 20},
        lambda c: _talib_runs("WMA", {"s": c["close"]}, timeperiod=20),
    ),
    "rsi": ({"source": "close"}, lambda c: _talib_runs("RSI", {"s": c["close"]}, timeperiod=14)),
    "macd": (
        {"source": "close"},
        lambda c: dict(
            zip(
                ("macd", "signal", "hist"),
                _talib_runs("MACD", {"s": c["close"]}, 3, fastperiod=12, slowperiod=26, signalperiod=9).T,
                strict=True,
            )
        ),
    ),
    "stoch": (
        {},
        lambda c: dict(
            zip(
                ("k", "d"),
                _talib_runs(
                    "STOCH",
                    _hlc(c),
                    2,
                    fastk_period=14,
                    slowk_period=3,
                    slowk_matype=0,
                    slowd_period=3,
                    slowd_matype=0,
                ).T,
                strict=True,
            )
        ),
    ),
    "cci": ({}, lambda c: _talib_runs("CCI", _hlc(c), timeperiod=20)),
    "willr": ({}, lambda c: _talib_runs("WILLR", _hlc(c), timeperiod=14)),
    "mfi": ({}, lambda c: _talib_runs("MFI", {**_hlc(c), "volume": c["volume"]}, timeperiod=14)),
    "obv": ({}, lambda c: _talib_runs("OBV", {"close": c["close"], "volume": c["volume"]})),
    "atr": ({}, lambda c: _talib_runs("ATR", _hlc(c), timeperiod=14)),
    "bbands": ({"source": "close"}, _bbands),
    "donchian": ({}, _donchian),
    "keltner": ({}, _keltner),
    "adx": (
        {},
        lambda c: {
            "adx": _talib_runs("ADX", _hlc(c), timeperiod=14),
            "plus_di": _talib_runs("PLUS_DI", _hlc(c), timeperiod=14),
            "minus_di": _talib_runs("MINUS_DI", _hlc(c), timeperiod=14),
        },
    ),
    "crosses_above": (
        {"a": "close", "b": lambda c: _ema(c, 10)},
        lambda c: (c["close"] > _ema(c, 10)) & (c["close"].shift(1) <= _ema(c, 10).shift(1)),
    ),
    "crosses_below": (
        {"a": "close", "b": lambda c: _ema(c, 10)},
        lambda c: (c["close"] < _ema(c, 10)) & (c["close"].shift(1) >= _ema(c, 10).shift(1)),
    ),
    "crosses": (
        {"a": "close", "b": lambda c: _ema(c, 10)},
        lambda c: (
            ((c["close"] > _ema(c, 10)) & (c["close"].shift(1) <= _ema(c, 10).shift(1)))
            | ((c["close"] < _ema(c, 10)) & (c["close"].shift(1) >= _ema(c, 10).shift(1)))
        ),
    ),
    "rising": (
        {"source": "close", "length": 3},
        lambda c: (c["close"].diff() > 0).astype(np.float64).rolling(3, min_periods=3).sum() == 3,
    ),
    "falling": (
        {"source": "close", "length": 2},
        lambda c: (c["close"].diff() < 0).astype(np.float64).rolling(2, min_periods=2).sum() == 2,
    ),
    "highest": (
        {"source": "high", "length": 20},
        lambda c: _clean(c["high"].rolling(20, min_periods=20).max()),
    ),
    "lowest": ({"source": "low", "length": 7}, lambda c: _clean(c["low"].rolling(7, min_periods=7).min())),
    "change": ({"source": "close", "length": 5}, lambda c: _clean(c["close"] - c["close"].shift(5))),
    "pct_change": (
        {"source": "close", "length": 3},
        lambda c: _clean(c["close"] / c["close"].shift(3) - 1.0),
    ),
    "bars_since": (
        {"condition": lambda c: c["close"] > c["open"] * 1.01},
        lambda c: _bars_since(c["close"] > c["open"] * 1.01),
    ),
    "count": (
        {"condition": lambda c: c["close"] > c["open"], "length": 6},
        lambda c: (c["close"] > c["open"]).astype(np.float64).rolling(6, min_periods=6).sum(),
    ),
    "between": (
        {"source": "close", "lower": "low", "upper": lambda c: _ema(c, 5)},
        lambda c: (c["close"] >= c["low"]) & (c["close"] <= _ema(c, 5)),
    ),
    "abs": ({"source": lambda c: c["close"] - c["open"]}, lambda c: _clean(np.abs(c["close"] - c["open"]))),
    "min": ({"a": "open", "b": "close"}, lambda c: _clean(np.minimum(c["open"], c["close"]))),
    "max": ({"a": "open", "b": "close"}, lambda c: _clean(np.maximum(c["open"], c["close"]))),
    "sum": (
        {"source": "volume", "length": 12},
        lambda c: _clean(c["volume"].rolling(12, min_periods=12).sum()),
    ),
    "stdev": (
        {"source": "close", "length": 20},
        lambda c: _clean(c["close"].rolling(20, min_periods=20).std(ddof=0)),
    ),
    "zscore": ({"source": "volume", "length": 10}, lambda c: _zscore(c["volume"], 10)),
    "pattern": (
        {"name": "engulfing", "direction": "bullish"},
        lambda c: _pattern(c, "engulfing", "bullish"),
    ),
}


def _arguments(spec, candles: pd.DataFrame, given: dict) -> dict:
    """Arguments as the plan evaluator passes them to an array-native function: arrays and constants."""
    kwargs = {}
    for param in spec.params:
        value = given.get(param.name, param.default)
        if isinstance(value, Column):
            value = value.name
        if callable(value):
            value = value(candles)
        if isinstance(value, str) and param.type.series:
            value = candles[value]
        if isinstance(value, pd.Series):
            value = value.to_numpy(dtype=bool if param.type.kind is Kind.BOOL else np.float64)
        kwargs[param.name] = value
    return kwargs


def _check(name: str, candles: pd.DataFrame) -> None:
    spec = default_registry().lookup(name)
    given, reference = CASES[name]
    assert spec.arrays, f"{name} is not array-native"
    result = spec.impl(**_arguments(spec, candles, given))
    expected = reference(candles)
    if spec.outputs is None:
        results, expectations, kinds = {"value": result}, {"value": expected}, {"value": spec.returns.kind}
    else:
        assert isinstance(result, dict) and list(result) == list(spec.outputs)
        results, expectations = result, expected
        kinds = {k: t.kind for k, t in spec.outputs.items()}
    for member, values in results.items():
        assert isinstance(values, np.ndarray) and values.shape == (len(candles),), member
        if kinds[member] is Kind.BOOL:
            want = _bools(expectations[member])
            assert values.dtype == bool, member
        else:
            want = np.asarray(expectations[member], dtype=np.float64)
            assert values.dtype == np.float64, member
        np.testing.assert_array_equal(values, want, err_msg=f"{name}.{member}", strict=True)


# Written on arrays from the start (no earlier pandas formula to hold them to); their own tests check them.
NATIVE_CATEGORIES = {"chart", "divergence", "anomaly"}


def test_every_converted_function_is_covered():
    converted = {
        name
        for name, spec in default_registry().functions.items()
        if spec.arrays and spec.category not in NATIVE_CATEGORIES
    }
    assert converted == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_arrays_equal_the_pandas_formulas_with_gaps(name):
    _check(name, GAPS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_arrays_equal_the_pandas_formulas_on_real_candles(name, eth):
    _check(name, eth.iloc[:3000])


def test_the_gaps_do_restart_the_filters():
    """The fixture really has the gaps the comparisons are about (an EMA restarts after each)."""
    ema = default_registry().lookup("ema").impl(source=GAPS["close"].to_numpy(), length=5)
    assert np.isnan(ema[[0, 1, 120, 400]]).all() and np.isfinite(ema[130])
    assert np.isnan(ema[403]) and np.isfinite(ema[420])


def test_series_callers_still_get_series_on_their_index():
    spec = default_registry().lookup("macd")
    close = GAPS["close"]
    frame = spec.impl(source=close, fast=12, slow=26, signal=9)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["macd", "signal", "hist"]
    assert frame.index.equals(close.index)
    arrays = spec.impl(source=close.to_numpy(), fast=12, slow=26, signal=9)
    for member, values in arrays.items():
        np.testing.assert_array_equal(frame[member].to_numpy(), values)
    flags = default_registry().lookup("crosses_above").impl(a=close, b=close.shift(1))
    assert isinstance(flags, pd.Series) and flags.dtype == bool and flags.index.equals(close.index)


@pytest.mark.parametrize("length", [1, 2, 3, 5, 8, 13, 64, 129, 699, 700, 701, 2000])
def test_rolling_extremes_agree_across_window_sizes(length):
    """Windows of every shape (powers of two and not, longer than the data) against pandas."""
    registry = default_registry()
    for source in (GAPS["high"], GAPS["low"] - GAPS["close"]):
        highest = registry.lookup("highest").impl(source=source.to_numpy(), length=length)
        lowest = registry.lookup("lowest").impl(source=source.to_numpy(), length=length)
        np.testing.assert_array_equal(highest, _clean(source.rolling(length, min_periods=length).max()))
        np.testing.assert_array_equal(lowest, _clean(source.rolling(length, min_periods=length).min()))
