"""Plan.evaluate_arrays: array-native functions get arrays, the others Series on a lazily built index,
feeds and other timeframes their frames; the values equal Plan.evaluate's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsl import BOOL, NUMBER, NUMBER_CONST, Param, Registry, compile_expression
from dsl.registry import FeedSpec
from tests.dsl.conftest import synthetic_candles


def _registry(seen: list[tuple[str, type]]) -> Registry:
    registry = Registry()
    length = Param("length", NUMBER_CONST, integer=True, min=1)

    @registry.function("double", [Param("source", NUMBER)], NUMBER, arrays=True)
    def double(source):
        seen.append(("double", type(source)))
        return source * 2

    @registry.function(
        "split", [Param("source", NUMBER)], {"up": NUMBER, "down": BOOL}, arrays=True, default_output="up"
    )
    def split(source):
        seen.append(("split", type(source)))
        return {"up": np.maximum(source, 0.0), "down": source < 0}

    @registry.function("mean", [Param("source", NUMBER), length], NUMBER, warmup=lambda a: a["length"] - 1)
    def mean(source, length):
        seen.append(("mean", type(source)))
        assert isinstance(source.index, pd.DatetimeIndex)
        return source.rolling(length).mean()

    @registry.function("broken", [Param("source", NUMBER)], NUMBER, arrays=True)
    def broken(source):
        return source[:-1]

    def feed(path, context):
        seen.append(("feed", type(context.candles)))
        return context.candles["close"] - context.candles["open"]

    registry.add_feed(FeedSpec("ext", resolve=lambda path: NUMBER, impl=feed))
    return registry


CANDLES = synthetic_candles(400)


def _arrays(candles: pd.DataFrame):
    return {c: candles[c].to_numpy() for c in candles.columns}, candles.index.as_unit("ns").asi8


@pytest.mark.parametrize(
    "expression",
    [
        "double(close) > 2 * open",
        "split(close - open).down and split(close - open) < 1",
        "mean(double(close), 5) > close",
        "double(close)@1h - mean(close, 3)@1h + hl2",
        "ext.diff > 0 and double(ext.diff) < 1",
        "(double(ohlc4)[2] + hlc3)@4h",
    ],
)
def test_arrays_equal_the_frame_evaluation(expression):
    seen: list = []
    plan = compile_expression(expression, _registry(seen), "5m")
    expected = plan.evaluate(CANDLES, arrays=False)["value"].to_numpy()
    np.testing.assert_array_equal(plan.evaluate(CANDLES)["value"].to_numpy(), expected, strict=True)
    actual = plan.evaluate_arrays(*_arrays(CANDLES))["value"]
    np.testing.assert_array_equal(actual, expected, strict=True)


def test_array_functions_get_arrays_and_the_others_series():
    seen: list = []
    plan = compile_expression("mean(double(close), 5) > split(close).up", _registry(seen), "5m")
    plan.evaluate_arrays(*_arrays(CANDLES))
    assert sorted(seen) == [("double", np.ndarray), ("mean", pd.Series), ("split", np.ndarray)]
    seen.clear()
    plan.evaluate(CANDLES, arrays=False)
    assert {kind for _, kind in seen} == {pd.Series}


def test_no_index_or_frame_is_built_for_an_array_only_plan(monkeypatch):
    seen: list = []
    plan = compile_expression("double(close) > split(open).up", _registry(seen), "5m")

    def fail(*args, **kwargs):
        raise AssertionError("a DatetimeIndex was built")

    monkeypatch.setattr(pd, "DatetimeIndex", fail)
    out = plan.evaluate_arrays(*_arrays(CANDLES))
    assert out["value"].dtype == bool and len(out["value"]) == len(CANDLES)


def test_feeds_get_the_frame_of_their_timeframe():
    seen: list = []
    plan = compile_expression("ext.diff@1h > 0", _registry(seen), "5m")
    plan.evaluate_arrays(*_arrays(CANDLES))
    assert seen == [("feed", pd.DataFrame)]


def test_a_function_returning_the_wrong_length_is_reported():
    plan = compile_expression("broken(close) > 0", _registry([]), "5m")
    with pytest.raises(ValueError, match=r"broken\(\) returned 399 rows for 400 candles"):
        plan.evaluate_arrays(*_arrays(CANDLES))


def test_constant_outputs_and_empty_windows():
    registry = _registry([])
    plan = compile_expression("1 + 2", registry, "5m")
    out = plan.evaluate_arrays(*_arrays(CANDLES.iloc[:3]))["value"]
    np.testing.assert_array_equal(out, np.full(3, 3.0))
    empty = compile_expression("double(close)@1h > open", registry, "5m").evaluate_arrays(
        *_arrays(CANDLES.iloc[:0])
    )
    assert empty["value"].dtype == bool and len(empty["value"]) == 0


def test_the_flag_is_recorded_on_the_spec():
    registry = _registry([])
    assert registry.functions["double"].arrays and not registry.functions["mean"].arrays
