"""Hand-checked small cases for the series helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def s(*values, dtype=np.float64) -> pd.Series:
    index = pd.date_range("2024-01-01", periods=len(values), freq="1h", tz="UTC", name="date")
    return pd.Series(np.asarray(values, dtype=dtype), index=index)


def call(registry, name, **kwargs):
    return registry.lookup(name).impl(**kwargs)


NAN = np.nan


def flags(values: pd.Series) -> str:
    """A bool series as a string: T for true, . for false."""
    return "".join("T" if v else "." for v in values)


def test_crosses_above_and_below(registry):
    a = s(1, 2, 3, 2, 1, 2, 2, 3)
    b = s(2, 2, 2, 2, 2, 2, 2, 2)
    assert flags(call(registry, "crosses_above", a=a, b=b)) == "..T....T"
    assert flags(call(registry, "crosses_below", a=a, b=b)) == "....T..."
    # touching the level and going back is not a cross; a crossing out of it is
    assert flags(call(registry, "crosses", a=a, b=b)) == "..T.T..T"


def test_crosses_is_false_around_undefined_values(registry):
    a = s(NAN, 3, 1, NAN, 3)
    b = s(2, 2, 2, 2, 2)
    assert not call(registry, "crosses_above", a=a, b=b).any()
    assert flags(call(registry, "crosses_below", a=a, b=b)) == "..T.."


def test_rising_and_falling_are_strict_over_n_candles(registry):
    x = s(1, 2, 3, 3, 4, 5, 6, 5)
    assert flags(call(registry, "rising", source=x, length=2)) == "..T..TT."
    assert flags(call(registry, "rising", source=x, length=1)) == ".TT.TTT."
    assert flags(call(registry, "falling", source=x, length=1)) == "." * 7 + "T"


def test_highest_lowest_include_the_current_candle(registry):
    x = s(3, 1, 4, 1, 5, 9, 2, 6)
    np.testing.assert_array_equal(call(registry, "highest", source=x, length=3), [NAN, NAN, 4, 4, 5, 9, 9, 9])
    np.testing.assert_array_equal(call(registry, "lowest", source=x, length=3), [NAN, NAN, 1, 1, 1, 1, 2, 2])


def test_change_and_pct_change(registry):
    x = s(100, 110, 99, 99)
    np.testing.assert_allclose(call(registry, "change", source=x, length=1), [NAN, 10, -11, 0])
    np.testing.assert_allclose(call(registry, "pct_change", source=x, length=2), [NAN, NAN, -0.01, -0.1])


def test_bars_since(registry):
    cond = s(False, True, False, False, True, True, False, dtype=bool)
    np.testing.assert_array_equal(call(registry, "bars_since", condition=cond), [NAN, 0, 1, 2, 0, 0, 1])


def test_count_between_abs_min_max(registry):
    cond = s(True, False, True, True, False, dtype=bool)
    np.testing.assert_array_equal(call(registry, "count", condition=cond, length=3), [NAN, NAN, 2, 2, 2])
    x = s(-1, 0, 1, 2, NAN)
    assert (
        flags(call(registry, "between", source=x, lower=s(0, 0, 0, 0, 0), upper=s(1, 1, 1, 1, 1))) == ".TT.."
    )
    np.testing.assert_array_equal(call(registry, "abs", source=x), [1, 0, 1, 2, NAN])
    y = s(0, 5, 0, 5, 5)
    np.testing.assert_array_equal(call(registry, "min", a=x, b=y), [-1, 0, 0, 2, NAN])
    np.testing.assert_array_equal(call(registry, "max", a=x, b=y), [0, 5, 1, 5, NAN])


def test_sum_stdev_zscore(registry):
    x = s(2, 4, 4, 4, 5, 5, 7, 9)
    assert call(registry, "sum", source=x, length=8).iloc[-1] == 40
    assert call(registry, "stdev", source=x, length=8).iloc[-1] == pytest.approx(2.0)  # population
    assert call(registry, "zscore", source=x, length=8).iloc[-1] == pytest.approx((9 - 5) / 2)
    flat = s(3, 3, 3, 3)
    assert call(registry, "zscore", source=flat, length=3).isna().all()
