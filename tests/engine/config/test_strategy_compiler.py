"""StrategyCompiler: one file, many parameter sets, the same result as load_strategy each time."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import DiagnosticError
from engine.config import StrategyCompiler, load_strategy

ROOT = Path(__file__).resolve().parents[3]
STRATEGY = ROOT / "strategies" / "ema_rsi.yaml"


def test_compiles_like_load_strategy_for_each_params():
    compiler = StrategyCompiler(STRATEGY, max_plans=1)
    for fast in (5, 9, 12, 20):
        compiled = compiler.compile({"fast": fast})
        expected = load_strategy(STRATEGY, params={"fast": fast})
        assert compiled.inputs == expected.inputs
        assert compiled.plan.describe() == expected.plan.describe()


def test_bad_params_raise_like_load_strategy():
    with pytest.raises(DiagnosticError) as caught:
        StrategyCompiler(STRATEGY).compile({"fast": 1000})
    assert caught.value.diagnostics[0].code == "CFG008"
