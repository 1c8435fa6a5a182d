"""`engine backtest` and `engine demo` end to end: bot YAML -> candles -> DSL -> kernel -> outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli import _register, app

_register()
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[3]
EXPORT_COLUMNS = [
    "pair",
    "open_time",
    "close_time",
    "open_price",
    "close_price",
    "amount",
    "profit_ratio",
    "profit_abs",
    "exit_reason",
]
EXIT_REASONS = {"exit_signal", "stop_loss", "take_profit", "trailing_stop", "end_of_data", "daily_limit"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGINE_DATABASE_URL", raising=False)
    return tmp_path / "home"


def test_backtest_exports_trades_and_stores_the_run(home, tmp_path, shared_data):
    export = tmp_path / "trades.csv"
    result = runner.invoke(
        app,
        [
            "backtest",
            str(ROOT / "bots/eth_btc_trend.yaml"),
            "--data",
            str(shared_data),
            "--export",
            str(export),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "eth-btc-trend" in result.stdout and "stored as run #1" in result.stdout
    trades = pd.read_csv(export)
    assert list(trades.columns) == EXPORT_COLUMNS
    assert len(trades) > 10
    assert set(trades["exit_reason"]) <= EXIT_REASONS
    assert trades["open_time"].str.endswith("Z").all()
    assert (pd.to_datetime(trades["close_time"]) >= pd.to_datetime(trades["open_time"])).all()
    assert set(trades["pair"]) <= {"ETH/BTC", "LTC/BTC"}

    again = runner.invoke(
        app,
        [
            "backtest",
            str(ROOT / "bots/eth_btc_trend.yaml"),
            "--data",
            str(shared_data),
            "--from",
            "2018-01-20",
        ],
    )
    assert again.exit_code == 0, again.output
    compared = runner.invoke(app, ["backtest", "--compare"])
    assert compared.exit_code == 0, compared.output
    assert "#1 eth-btc-trend" in compared.stdout and "#2 eth-btc-trend" in compared.stdout
    assert "total return" in compared.stdout


def test_from_date_limits_trades_but_keeps_warmup(home, tmp_path, shared_data):
    export = tmp_path / "late.csv"
    result = runner.invoke(
        app,
        [
            "backtest",
            str(ROOT / "bots/eth_btc_trend.yaml"),
            "--data",
            str(shared_data),
            "--from",
            "2018-01-25",
            "--export",
            str(export),
            "--no-store",
        ],
    )
    assert result.exit_code == 0, result.output
    trades = pd.read_csv(export)
    assert len(trades) > 0
    assert (pd.to_datetime(trades["open_time"]) >= pd.Timestamp("2018-01-25", tz="UTC")).all()


def test_missing_data_is_reported_without_traceback(home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        app, ["backtest", str(ROOT / "bots/eth_btc_trend.yaml"), "--data", str(empty), "--no-store"]
    )
    assert result.exit_code == 1
    assert "DATA0" in result.stderr and "ETH/BTC" in result.stderr
    assert "Traceback" not in result.output


def test_invalid_bot_is_reported_at_its_position(home, tmp_path, shared_data):
    bot = tmp_path / "bot.yaml"
    bot.write_text(
        f"bot: x\nstrategy: {ROOT / 'strategies/ema_rsi.yaml'}\nexchange: {{name: binance, mode: paper}}\n"
        "pairs: [ETH/BTC]\ncapital: {initial: 1 BTC, max_per_trade: 10%}\nrisk: {max_exposur: 30%}\n"
    )
    result = runner.invoke(app, ["backtest", str(bot), "--data", str(shared_data), "--no-store"])
    assert result.exit_code == 1
    assert f"{bot}:6:8: error[CFG001]" in result.stderr
    assert "did you mean 'max_exposure'" in result.stderr


@pytest.mark.slow
def test_demo_runs_every_example_bot_on_synthetic_data(home):
    result = runner.invoke(
        app, ["demo", "--no-web", "--bots", str(ROOT / "bots"), "--strategies", str(ROOT / "strategies")]
    )
    assert result.exit_code == 0, result.output
    examples = len([*(ROOT / "bots").glob("*.yaml"), *(ROOT / "strategies").glob("*.yaml")])
    assert f"{examples} files OK" in result.stdout
    for name in (
        "eth-btc-trend",
        "alts-reversion",
        "dash-etc-mtf",
        "ltc-xlm-reversal",
        "xrp-futures-breakout",
    ):
        assert name in result.stdout
    assert (home / "demo-data" / "SYNTHETIC.txt").exists()
    reports = sorted((home / "reports").glob("*.html"))
    assert len(reports) == len(list((ROOT / "bots").glob("*.yaml")))
    assert "SYNTHETIC" in reports[0].read_text()


def test_detail_candles_resolve_stops_inside_candles(home, tmp_path, shared_data):
    """--detail 1m walks the 1m candles inside each 5m candle (bar magnifier) instead of the pessimistic rule."""
    strategy = tmp_path / "s.yaml"
    strategy.write_text(
        "strategy: tight\ntimeframe: 5m\nentry:\n  long: close > open\nexit:\n  long: close < open\n"
        "stops:\n  stop_loss: 0.1%\n  take_profit: 0.1%\n"
    )
    bot = tmp_path / "b.yaml"
    bot.write_text(
        "bot: tight\nstrategy: s.yaml\nexchange: {name: binance, mode: paper}\npairs: [XRP/ETH]\n"
        "capital: {initial: 10 ETH, max_per_trade: 50%}\n"
    )
    outputs = {}
    for name, extra in (("plain", []), ("detail", ["--detail", "1m"])):
        export = tmp_path / f"{name}.csv"
        result = runner.invoke(
            app,
            ["backtest", str(bot), "--data", str(shared_data), "--export", str(export), "--no-store", *extra],
        )
        assert result.exit_code == 0, result.output
        outputs[name] = pd.read_csv(export)
    plain, detail = outputs["plain"], outputs["detail"]
    assert len(plain) > 100 and len(detail) > 100
    # The pessimistic rule books every candle that touches both levels as a stop; walking the 1m candles
    # finds that the target came first in some of them.
    stops = {name: (frame["exit_reason"] == "stop_loss").sum() for name, frame in outputs.items()}
    targets = {name: (frame["exit_reason"] == "take_profit").sum() for name, frame in outputs.items()}
    assert stops["detail"] < stops["plain"]
    assert targets["detail"] > targets["plain"]
    bad = runner.invoke(
        app, ["backtest", str(bot), "--data", str(shared_data), "--no-store", "--detail", "15m"]
    )
    assert bad.exit_code == 1 and "must be a lower timeframe" in bad.stderr
