"""Every registered function: well-formed spec, runs on real candles, declared outputs and dtypes,
pure, warm-up at least the leading NaN run, and its example compiles and evaluates through the DSL."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from dsl import compile_expression
from dsl.registry import Column
from dsl.types import Kind
from engine.indicators import build_registry, default_registry
from engine.indicators._pandas_ta import SKIPPED, TABLE
from tests.engine.indicators.helpers import constants, default_kwargs, leading_nan

NAMES = sorted(default_registry().functions)

# Functions whose leading NaN run depends on the data, not on their arguments.
DATA_DEPENDENT_START = {
    "bars_since": "undefined until the condition is first true",
    "vwap": "undefined for the first, partial UTC session",
}

# Chart patterns whose numbers exist only on breakout candles, and which the default settings may not
# find in 20 days of these two pairs (tests/engine/indicators/test_chart_patterns.py shows them firing).
RARE_EVENTS = {"bull_flag", "bear_flag", "bull_pennant", "bear_pennant", "symmetric_triangle"}


def test_registry_has_the_required_functions(registry):
    required = [
        "sma",
        "ema",
        "wma",
        "rsi",
        "macd",
        "bbands",
        "atr",
        "adx",
        "stoch",
        "obv",
        "vwap",
        "mfi",
        "cci",
        "willr",
        "supertrend",
        "ichimoku",
        "donchian",
        "keltner",
        "crosses_above",
        "crosses_below",
        "rising",
        "falling",
        "highest",
        "lowest",
        "change",
        "pct_change",
        "bars_since",
        "abs",
        "min",
        "max",
        "pattern",
        "support",
        "resistance",
        "fib",
        "volume_profile",
        "sum",
        "stdev",
        "zscore",
        "between",
    ]
    assert not [n for n in required if n not in registry.functions]
    # and the rest of pandas-ta, registered by introspection
    assert len(registry.functions) > 150
    assert {"zlma", "aroon", "psar", "kst", "vortex", "squeeze", "ha"} <= set(registry.functions)


def test_every_pandas_ta_function_is_registered_or_skipped_with_a_reason(registry):
    from engine.indicators._pandas_ta import _pandas_ta

    for names in _pandas_ta().Category.values():
        for name in names:
            assert name in registry.functions or SKIPPED.get(name), name
    assert "looks ahead" in SKIPPED["zigzag"]
    assert set(TABLE).isdisjoint(SKIPPED)


def test_build_is_fresh_and_default_is_cached():
    first = build_registry()
    assert build_registry() is not first
    assert default_registry() is default_registry()


@pytest.mark.parametrize("name", NAMES)
def test_spec_is_well_formed(registry, name):
    spec = registry.lookup(name)
    assert name.isidentifier() and spec.category and spec.doc and spec.example
    seen_keyword_only = False
    for p in spec.params:
        assert p.name.isidentifier()
        if p.keyword_only:
            seen_keyword_only = True
        else:
            assert not seen_keyword_only, "positional parameter after a keyword-only one"
        if isinstance(p.default, Column):
            assert p.keyword_only and p.type.series
        if p.integer and "length" in p.name:
            assert p.min is not None and p.min >= 1
        if p.choices is not None and not p.required:
            assert p.default in p.choices
    if spec.outputs is not None:
        assert len(spec.outputs) > 1 and all(o.isidentifier() for o in spec.outputs)
        assert spec.default_output in spec.outputs
    required = {p.name: 14 for p in spec.params if p.required and not p.type.series and p.integer}
    required |= {p.name: p.choices[0] for p in spec.params if p.required and p.choices}
    defaults = {p.name: p.default for p in spec.params if not p.type.series and not p.required}
    assert spec.warmup(required | defaults) >= 0
    assert spec.warmup(required) == spec.warmup(required | defaults), "warm-up must fill in defaults"


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_real_candles_with_declared_outputs(registry, eth, ada, name):
    spec = registry.lookup(name)
    for candles in (eth.iloc[:3000], ada):
        kwargs = default_kwargs(spec, candles)
        before = {k: v.to_numpy().copy() for k, v in kwargs.items() if isinstance(v, pd.Series)}
        result = spec.impl(**kwargs)
        for key, original in before.items():
            assert np.array_equal(kwargs[key].to_numpy(), original, equal_nan=True), f"{key} was modified"
        if spec.outputs is None:
            assert isinstance(result, pd.Series)
            frame = result.to_frame("value")
            declared = {"value": spec.returns}
        else:
            assert isinstance(result, pd.DataFrame)
            assert list(result.columns) == list(spec.outputs)
            frame, declared = result, dict(spec.outputs)
        assert frame.index.equals(candles.index)
        warmup = spec.warmup(constants(kwargs))
        for column, type_ in declared.items():
            values = frame[column]
            if type_.kind is Kind.BOOL:
                assert values.dtype == bool, column
                continue
            assert values.dtype == np.float64, column
            array = values.to_numpy()
            assert not np.isinf(array).any(), column
            if name in RARE_EVENTS and np.isnan(array).all():
                continue
            assert not np.isnan(array).all(), f"{column} is all NaN"
            lead = leading_nan(array)
            if lead is not None and name not in DATA_DEPENDENT_START:
                assert warmup >= lead, f"{column}: warm-up {warmup} < {lead} leading NaN"


@pytest.mark.parametrize("name", NAMES)
def test_example_compiles_and_evaluates(registry, eth, name):
    spec = registry.lookup(name)
    plan = compile_expression(spec.example, registry, "5m")
    values = plan.evaluate(eth.iloc[:1500])
    assert len(values) == 1500


def test_warmup_scales_with_the_arguments(registry):
    ema = registry.lookup("ema")
    assert ema.warmup({"length": 50}) > ema.warmup({"length": 10})
    zlma = registry.lookup("zlma")
    assert zlma.warmup({"length": 40}) >= 4 * zlma.warmup({"length": 10}) - 4
    # a slower smoothing mode costs more warm-up than the default
    assert registry.lookup("bias").warmup({"mamode": "rma"}) > registry.lookup("bias").warmup({})
    pattern = registry.lookup("pattern")
    assert pattern.warmup({"name": "engulfing"}) < pattern.warmup({"name": "breakaway"})


@pytest.mark.parametrize("name", NAMES)
def test_short_histories_give_undefined_values_not_errors(registry, eth, name):
    """Live recomputation and fresh markets hand functions fewer candles than their windows."""
    spec = registry.lookup(name)
    for size in (0, 1, 2, 5, 30, 100, 256):
        candles = eth.iloc[:size]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = spec.impl(**default_kwargs(spec, candles))
        assert len(result) == size and result.index.equals(candles.index)


def test_through_the_dsl_on_another_timeframe(registry, eth):
    plan = compile_expression("atr(14, high=high@1h, low=low@1h, close=close@1h) > atr(14)", registry, "5m")
    assert plan.warmup > registry.lookup("atr").warmup({"length": 14}) * 12  # counted in 5m candles
    values = plan.evaluate(eth)["value"]
    assert values.dtype == bool and values.iloc[plan.warmup :].any()
    rsi = compile_expression("rsi(close, 14)", registry, "5m")
    assert rsi.warmup == registry.lookup("rsi").warmup({"length": 14})
