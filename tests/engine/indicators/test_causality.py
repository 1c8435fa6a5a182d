"""No function looks ahead, and after its warm-up no function depends on where its history starts.

1. Causality: computing on the first N candles gives the values of computing on all candles and cutting
   at N, for every registered function with its default arguments.
2. Warm-up: computing on candles[s:] gives, from candle s + warmup on, the values of computing on all
   candles (within 0.1% of the series' spread: recursive filters forget their seed gradually). This is
   what lets live trading recompute on the last `warmup` candles and match the backtest.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.indicators import default_registry
from engine.indicators._pandas_ta import TABLE
from tests.engine.indicators.helpers import agree, constants, default_kwargs, matrix, run

NAMES = sorted(default_registry().functions)

# Documented exceptions to (2), each for a reason of definition, not of implementation.
START_DEPENDENT = {
    "obv": "cumulative total",
    "bars_since": "unbounded memory: counts from the last event however old",
    "vwap": "session-anchored: needs the whole current UTC session, a timeframe-dependent count",
    "supertrend": "path state: two runs agree from their first common flip, not after a fixed count",
    **{name: "cumulative total" for name, entry in TABLE.items() if entry["cumulative"]},
}


@pytest.mark.parametrize("name", NAMES)
def test_no_look_ahead(registry, eth, name):
    spec = registry.lookup(name)
    candles = eth.iloc[:3500]
    full = matrix(run(spec, candles))
    for cut in (400, 1700, 3100):
        head = matrix(run(spec, candles.iloc[:cut]))
        same = agree(full[:cut], head, 1e-9)
        assert same.all(), (
            f"value at candle {int(np.argmin(same.all(axis=1)))} changed when later candles were added"
        )


@pytest.mark.parametrize("name", [n for n in NAMES if n not in START_DEPENDENT])
def test_values_after_warmup_do_not_depend_on_the_start(registry, eth, name):
    spec = registry.lookup(name)
    candles = eth.iloc[:4500]
    warmup = spec.warmup(constants(default_kwargs(spec, candles)))
    full = matrix(run(spec, candles))
    for start in (500, 1900):
        if start + warmup >= len(candles):
            pytest.skip(f"warm-up {warmup} longer than the test data")
        late = matrix(run(spec, candles.iloc[start:]))
        same = agree(full[start + warmup :], late[warmup:], 1e-3)
        assert same.all(), (
            f"started at {start}: differs {int(np.flatnonzero(~same.all(axis=1))[-1]) + 1} candles "
            f"after the warm-up of {warmup}"
        )


def test_supertrend_resynchronises_after_a_flip(registry, eth):
    spec = registry.lookup("supertrend")
    full = run(spec, eth)
    late = run(spec, eth.iloc[1000:])
    warmup = spec.warmup({})
    flips = np.flatnonzero(np.diff(full["direction"].to_numpy()[1000 + warmup :]) != 0)
    settled = 1000 + warmup + int(flips[0]) + 1
    np.testing.assert_allclose(late["trend"].to_numpy()[settled - 1000 :], full["trend"].to_numpy()[settled:])
