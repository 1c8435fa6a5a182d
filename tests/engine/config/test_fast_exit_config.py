"""A strategy's ``fast_exit:``: checked like ``exit:`` (sides used, DSL with file:line:col) and carried
into the signals the backtest kernel fills pessimistically."""

from __future__ import annotations

import pandas as pd
import pytest

from dsl import DiagnosticError
from engine.config import load_strategy
from engine.strategy import compute_signals

STRATEGY = """\
strategy: fast
timeframe: 5m
entry:
  long: close > open
exit:
  long: close < open
fast_exit:
  long: close < open * 0.95
"""


def test_fast_exits_reach_the_signals(write):
    strategy = load_strategy(write("fast.yaml", STRATEGY))
    assert (
        strategy.fast_exit_column("long") == "fast_exit_long" and strategy.fast_exit_column("short") is None
    )
    index = pd.date_range("2024-01-01", periods=3, freq="5min", tz="UTC", name="date")
    candles = pd.DataFrame(
        {"open": [100.0, 100, 100], "high": 101.0, "low": 90.0, "close": [101.0, 99, 94], "volume": 1.0},
        index=index,
    )
    signals = compute_signals(strategy, candles)
    assert signals["fast_exit_long"].tolist() == [False, False, True]
    assert signals["exit_long"].tolist() == [False, True, True]
    assert not signals["fast_exit_short"].any()


def test_fast_exit_errors(write):
    bad = STRATEGY.replace("close < open * 0.95", "close < opn") + "  short: close > open\n"
    with pytest.raises(DiagnosticError) as caught:
        load_strategy(write("bad.yaml", bad))
    found = {(d.code, d.span.line, d.span.col): d.message for d in caught.value.diagnostics}
    assert any(code.startswith("DSL") and (line, col) == (8, 17) for code, line, col in found)
    assert found[("CFG002", 9, 3)] == "fast_exit.short is never used: there is no entry.short rule"
