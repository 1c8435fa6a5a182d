"""``engine data ...`` through typer's CliRunner, with ENGINE_HOME in a temporary directory."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import engine.cli.cmd_data  # noqa: F401  (registers the commands)
from engine.cli import app
from engine.data.store import CandleStore
from tests.engine.data.conftest import make_candles
from tests.fakes.binance_market import FakeMarket, walk_candles


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path))
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(app, ["data", *args])


def test_synth_then_list(home):
    result = invoke(
        "synth",
        "--pairs",
        "BTC/USDT,ETH/BTC",
        "--timeframe",
        "1h",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-15",
    )
    assert result.exit_code == 0, result.output
    assert "binance BTC/USDT 1h: " in result.output
    store = CandleStore(home / "data")
    assert [e.synthetic for e in store.list()] == [True, True]
    listing = invoke("list")
    assert listing.exit_code == 0
    assert "SYNTHETIC" in listing.output and "BTC/USDT" in listing.output
    rows = json.loads(invoke("list", "--json").output)
    assert {(r["pair"], r["timeframe"], r["synthetic"]) for r in rows} == {
        ("BTC/USDT", "1h", True),
        ("ETH/BTC", "1h", True),
    }
    period = ("--start", "2024-01-01", "--end", "2024-01-15")
    before = store.load("binance", "BTC/USDT", "1h")
    assert invoke("synth", "--pairs", "BTC/USDT", "--timeframe", "1h", *period).exit_code == 0
    pd.testing.assert_frame_equal(store.load("binance", "BTC/USDT", "1h"), before)  # same seed, same candles
    assert invoke("synth", "--pairs", "BTC/USDT", "--timeframe", "1h", "--seed", "7", *period).exit_code == 0
    assert not store.load("binance", "BTC/USDT", "1h").equals(before)


def test_synth_refuses_to_overwrite_real_data(home):
    CandleStore(home / "data").save("binance", "BTC/USDT", "5m", make_candles(), source="download")
    result = invoke("synth", "--pairs", "BTC/USDT", "--timeframe", "5m")
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.output
    assert invoke("synth", "--pairs", "BTC/USDT", "--timeframe", "5m", "--force").exit_code == 0


def test_bad_options_are_clear(home):
    result = invoke("synth", "--timeframe", "7m")
    assert result.exit_code == 1 and "unsupported timeframe '7m'" in result.output
    result = invoke("synth", "--pairs", "BTCUSDT")
    assert result.exit_code == 1 and "invalid pair 'BTCUSDT'" in result.output
    result = invoke("synth", "--start", "yesterday-ish")
    assert result.exit_code == 1 and "--start 'yesterday-ish' is not a date" in result.output
    result = invoke("download", "--exchange", "binanse", "--pairs", "ETH/BTC", "--since", "2024-01-01")
    assert result.exit_code == 1 and "did you mean 'binance'" in result.output
    assert "Traceback" not in result.output


def test_empty_store_listing(home):
    result = invoke("list")
    assert result.exit_code == 0 and "no candles stored" in result.output


def test_import_files_and_report_problems(home, tmp_path, shared_data):
    result = invoke(
        "import", str(shared_data / "ETH_BTC-5m.csv"), str(shared_data / "XRP_USDT_USDT-1h-futures.csv")
    )
    assert result.exit_code == 0, result.output
    store = CandleStore(home / "data")
    assert [(e.pair, e.timeframe, e.rows) for e in store.list()] == [
        ("ETH/BTC", "5m", 5760),
        ("XRP/USDT:USDT", "1h", 100),
    ]
    assert store.entry("binance", "ETH/BTC", "5m").source == "import:ETH_BTC-5m.csv"

    broken = tmp_path / "LTC_BTC-5m.csv"
    broken.write_text("date,open,high,low,close\n2024-01-01T00:00:00Z,1,2,0.5,1.5\n")
    odd = tmp_path / "candles.csv"
    odd.write_text("date,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n")
    result = invoke("import", str(broken), str(odd), str(shared_data / "XRP_ETH-1m.csv"))
    assert result.exit_code == 1
    assert f"{broken}:1:1: error[DATA001]: missing column volume" in result.output
    assert "cannot tell the pair from the file name 'candles.csv'" in result.output
    assert "note[DATA010]" in result.output and "more gaps" in result.output  # gap notes summarised
    assert store.entry("binance", "XRP/ETH", "1m").rows == 2469  # the good file still went in


def test_import_with_explicit_pair_and_inferred_timeframe(home, tmp_path):
    candles = make_candles(periods=30, freq="15min")
    path = tmp_path / "export.parquet"
    candles.to_parquet(path)
    result = invoke("import", str(path), "--pair", "SOL/USDT", "--exchange", "kraken")
    assert result.exit_code == 0, result.output
    entry = CandleStore(home / "data").entry("kraken", "SOL/USDT", "15m")
    assert entry.rows == 30 and not entry.synthetic


def test_download_against_the_fake_exchange(home, fake_binance):
    server = fake_binance(
        [FakeMarket.spot("ETH/BTC", walk_candles("2024-01-01", "2024-01-03"))], now="2024-01-02 00:00:30"
    )
    args = [
        "download",
        "--pairs",
        "ETH/BTC",
        "--timeframe",
        "5m",
        "--since",
        "2024-01-01",
        "--api-url",
        server.url,
    ]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "binance ETH/BTC 5m: 288 new candles" in result.output
    again = invoke(*args)
    assert again.exit_code == 0 and "binance ETH/BTC 5m: up to date" in again.output
    server.faults.add("/api/v3/klines", status=429, retry_after=0.1)
    server.now_ms += 3_600_000
    third = invoke(*args)
    assert "retrying in" in third.output and "12 new candles" in third.output
    missing = invoke("download", "--pairs", "ETH/BTX", "--since", "2024-01-01", "--api-url", server.url)
    assert (
        missing.exit_code == 1 and "binance has no market ETH/BTX (did you mean 'ETH/BTC'?)" in missing.output
    )
