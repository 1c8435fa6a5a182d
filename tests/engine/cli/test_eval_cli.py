"""`engine eval` end to end on real candles, checked against TA-Lib."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import talib
from typer.testing import CliRunner

from engine.cli import _register, app

_register()
runner = CliRunner()


def _eval(*args: str) -> pd.DataFrame:
    result = runner.invoke(app, ["eval", *args])
    assert result.exit_code == 0, result.output
    return pd.read_csv(io.StringIO(result.stdout), parse_dates=["date"])


@pytest.mark.parametrize(
    ("expression", "reference"),
    [
        ("rsi(close, 14)", lambda f: talib.RSI(f.close.to_numpy(), 14)),
        (
            "ema(close, 12) - ema(close, 26)",
            lambda f: talib.EMA(f.close.to_numpy(), 12) - talib.EMA(f.close.to_numpy(), 26),
        ),
        ("atr(14)", lambda f: talib.ATR(f.high.to_numpy(), f.low.to_numpy(), f.close.to_numpy(), 14)),
        ("bbands(close, 20).upper", lambda f: talib.BBANDS(f.close.to_numpy(), 20, 2, 2)[0]),
        ("macd(close).signal", lambda f: talib.MACD(f.close.to_numpy(), 12, 26, 9)[1]),
    ],
)
def test_eval_matches_talib(shared_data, expression, reference):
    path = shared_data / "ETH_BTC-5m.csv"
    candles = pd.read_csv(path)
    out = _eval(expression, "--data", str(path))
    assert len(out) == len(candles)
    assert list(out.columns) == ["date", "value"]
    expected = reference(candles)
    valid = ~np.isnan(expected)
    valid[:100] = False  # past every warm-up
    np.testing.assert_allclose(out["value"].to_numpy()[valid], expected[valid], rtol=1e-9)


def test_eval_writes_a_file_with_one_row_per_candle(shared_data, tmp_path):
    path = shared_data / "XRP_ETH-5m.csv"
    target = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        ["eval", "crosses_above(ema(close, 5), ema(close, 20))", "--data", str(path), "--out", str(target)],
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(target)
    source = pd.read_csv(path)
    assert written["date"].tolist() == source["date"].tolist()
    assert set(written["value"].unique()) <= {True, False}
    assert written["value"].sum() > 0


def test_eval_inputs_and_errors(shared_data):
    path = str(shared_data / "ETH_BTC-5m.csv")
    ok = _eval("rsi(close, n) < limit", "--data", path, "-i", "n=14", "-i", "limit=70")
    assert ok["value"].dtype == bool
    bad = runner.invoke(app, ["eval", "rsi(close, 14) < rsi_mx", "--data", path, "-i", "rsi_max=70"])
    assert bad.exit_code == 1
    assert "<expr>:1:18: error[DSL003]: unknown name 'rsi_mx' (did you mean 'rsi_max'?)" in bad.stderr
    assert "^^^^^^" in bad.stderr
    missing = runner.invoke(app, ["eval", "close", "--data", "/no/such/file.csv"])
    assert missing.exit_code == 1 and "DATA014" in missing.stderr
    assert "Traceback" not in missing.output


def test_explain_shows_shared_nodes_and_warmup(shared_data):
    path = str(shared_data / "ETH_BTC-5m.csv")
    result = runner.invoke(
        app,
        ["eval", "ema(close, 12) > ema(close, 12)[1] and ema(close, 12) > 0", "--data", path, "--explain"],
    )
    assert result.exit_code == 0
    assert result.stdout.count("call@5m ema") == 1
    assert "warmup = " in result.stdout
