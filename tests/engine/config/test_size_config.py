"""A strategy's ``size:``: an expression checked like the stop expressions (a number, DSL errors with
file:line:col, a feature cannot take its column's name) and carried into the signals as ``size``."""

from __future__ import annotations

import pytest

from dsl import DiagnosticError
from engine.config import load_strategy

STRATEGY = """\
strategy: sized
timeframe: 5m
entry:
  long: close > open
size: {size}
"""


def _errors(write, text: str) -> dict[tuple[str, int, int], str]:
    with pytest.raises(DiagnosticError) as caught:
        load_strategy(write("bad.yaml", text))
    return {(d.code, d.span.line, d.span.col): d.message for d in caught.value.diagnostics}


def test_size_is_a_compiled_number_column(write):
    strategy = load_strategy(write("ok.yaml", STRATEGY.format(size="rsi(close, 14) / 100")))
    assert strategy.size_column() == "size" and "size" in strategy.plan.outputs
    plain = load_strategy(write("plain.yaml", STRATEGY.replace("size: {size}\n", "")))
    assert plain.size_column() is None and "size" not in plain.plan.outputs


def test_size_errors_point_at_the_expression(write):
    assert _errors(write, STRATEGY.format(size="close > 3")) == {
        ("DSL005", 5, 7): "'size' must be a number, got series of bool"
    }
    found = _errors(write, STRATEGY.format(size="rsii(close)"))
    assert list(found) == [("DSL002", 5, 7)] and "did you mean 'rsi'" in found[("DSL002", 5, 7)]
    clash = STRATEGY.format(size="0.5") + "features:\n  size: close\n"
    assert _errors(write, clash) == {
        ("CFG002", 7, 3): "feature name 'size' is reserved for a rule's column; choose another name"
    }
