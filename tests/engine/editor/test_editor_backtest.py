"""The editor's backtest button on synthetic stored data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsl import DiagnosticError
from engine.demo import write_demo_data
from engine.editor import backtest_for_editor

ROOT = Path(__file__).resolve().parents[3]
BOT = ROOT / "bots" / "eth_btc_trend.yaml"
STRATEGY = ROOT / "strategies" / "ema_rsi.yaml"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_data([BOT], tmp_path_factory.mktemp("editor-data"), days=6)


def test_backtest_returns_equity_and_trades(data_dir: Path) -> None:
    result = backtest_for_editor(BOT, data_dir=data_dir, max_points=200)
    assert 2 <= len(result.equity) <= 201
    assert result.equity[0][0] == result.start
    assert result.equity[-1][1] == pytest.approx(result.metrics["final_equity"])
    assert result.trades and set(result.trades[0]) >= {
        "pair",
        "side",
        "open_time",
        "close_time",
        "profit_abs",
    }
    assert result.metrics["trades"] == len(result.trades)
    json.dumps(result.to_json())  # plain data, ready for a chart


def test_backtest_with_edited_strategy_text(data_dir: Path) -> None:
    saved = STRATEGY.read_text()
    plain = backtest_for_editor(BOT, data_dir=data_dir)
    edited = saved.replace("take_profit: 6%", "take_profit: 0.5%")
    changed = backtest_for_editor(BOT, data_dir=data_dir, strategy_text=edited)
    assert STRATEGY.read_text() == saved
    reasons = {t["exit_reason"] for t in changed.trades}
    assert "take_profit" in reasons
    assert [t["exit_reason"] for t in changed.trades] != [t["exit_reason"] for t in plain.trades]


def test_backtest_of_invalid_text_names_the_strategy_file(data_dir: Path) -> None:
    broken = STRATEGY.read_text().replace("momentum < rsi_max", "momentum < rsi_mx")
    with pytest.raises(DiagnosticError) as caught:
        backtest_for_editor(BOT, data_dir=data_dir, strategy_text=broken)
    spans = [d.span for d in caught.value.diagnostics if d.span is not None]
    assert spans and all(s.file.endswith("strategies/ema_rsi.yaml") for s in spans)
