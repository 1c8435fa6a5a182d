"""A strategy's ``alerts:`` block: checked with file:line:col like every rule, compiled into the plan,
and sent in a backtest's signals at most once per ``every`` candles per pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsl import DiagnosticError
from engine.config import load_strategy
from engine.strategy import compute_signals
from engine.strategy.signals import rate_limited

STRATEGY = """\
strategy: alerting
timeframe: 5m
entry:
  long: close > open
alerts:
  jump:
    when: close > open * 1.01
    score: (close / open - 1) * 100
    message: a candle up more than 1%
    every: 3
"""


def test_rate_limited_keeps_one_alert_per_window():
    fired = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
    assert rate_limited(fired, 3).nonzero()[0].tolist() == [0, 4, 9]
    assert rate_limited(fired, 1).tolist() == fired.tolist()


def test_alerts_compile_and_are_rate_limited_in_the_signals(write):
    strategy = load_strategy(write("alerting.yaml", STRATEGY))
    assert strategy.alert_columns() == (("jump", "alert_jump", "alert_jump_score"),)
    closes = np.array([100, 102, 104, 106, 106, 106, 106, 108, 110, 110], dtype=float)
    opens = np.array([100, 100, 102, 104, 106, 106, 106, 106, 108, 110], dtype=float)
    index = pd.date_range("2024-01-01", periods=len(closes), freq="5min", tz="UTC", name="date")
    candles = pd.DataFrame(
        {"open": opens, "high": closes + 1, "low": opens - 1, "close": closes, "volume": 1.0}, index=index
    )
    signals = compute_signals(strategy, candles, features=True)
    # Up more than 1% on candles 1, 2, 3, 7, 8; sent on 1 (2 and 3 inside its 3 candles), 7.
    assert signals["alert:jump"].to_numpy().nonzero()[0].tolist() == [1, 7]
    assert signals["alert_score:jump"].iloc[1] == pytest.approx(2.0)


def test_alert_errors_carry_their_position(write):
    bad = STRATEGY.replace("close > open * 1.01", "clos > open").replace("every: 3", "every: 0")
    bad += "  jump_score:\n    when: close > 1\n    message: x\n"
    with pytest.raises(DiagnosticError) as caught:
        load_strategy(write("bad.yaml", bad))
    found = {(d.code, d.span.line, d.span.col) for d in caught.value.diagnostics}
    assert any(code.startswith("DSL") and (line, col) == (7, 11) for code, line, col in found)  # clos
    assert ("CFG002", 10, 12) in found  # every: must be >= 1
    assert ("CFG002", 11, 3) in found  # jump_score is the score column of jump
    messages = " ".join(d.message for d in caught.value.diagnostics)
    assert "alerts.jump.every" in messages and "reserved for the score of alert 'jump'" in messages


def test_a_message_is_required(write):
    with pytest.raises(DiagnosticError) as caught:
        load_strategy(write("nomsg.yaml", STRATEGY.replace("    message: a candle up more than 1%\n", "")))
    assert any("message" in d.message for d in caught.value.diagnostics)


def test_the_backtest_summary_counts_the_alerts_sent(write):
    from engine.backtest.summary import alert_counts

    frame = pd.DataFrame({"alert:jump": [True, False, True], "alert_score:jump": [1.0, 2.0, 3.0]})
    assert alert_counts({"A/B": frame, "C/B": frame.iloc[:1]}) == {"jump": 3}
