from __future__ import annotations

import gzip

import pandas as pd
import pytest

from engine.data.datadir import DataDirectory
from engine.data.errors import DataError
from engine.data.files import read_candle_file
from engine.data.naming import candle_filename, pair_key, parse_candle_filename
from tests.engine.data.conftest import make_candles


def write_csv(frame: pd.DataFrame, path) -> None:
    out = frame.copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index_label="date")


@pytest.mark.parametrize("ext", [".csv", ".csv.gz", ".feather", ".parquet"])
def test_every_format_reads_to_the_same_frame(tmp_path, ext):
    candles = make_candles(periods=50)
    path = tmp_path / f"ETH_BTC-5m{ext}"
    if ext == ".csv":
        write_csv(candles, path)
    elif ext == ".csv.gz":
        write_csv(candles, tmp_path / "plain.csv")
        path.write_bytes(gzip.compress((tmp_path / "plain.csv").read_bytes()))
    elif ext == ".feather":
        candles.reset_index().to_feather(path)  # freqtrade's layout: a 'date' column
    else:
        candles.to_parquet(path)  # the date as index
    loaded, found = read_candle_file(path)
    assert found == []
    pd.testing.assert_frame_equal(loaded, candles, check_freq=False)


def test_headerless_binance_dump_is_understood(tmp_path):
    candles = make_candles(periods=5)
    ms = candles.index.asi8 // 1_000_000
    lines = [
        f"{t},{r.open},{r.high},{r.low},{r.close},{r.volume},{t + 299_999},0,10,0,0,0"
        for t, r in zip(ms, candles.itertuples(), strict=True)
    ]
    path = tmp_path / "ETHBTC-5m-2024-01.csv"
    path.write_text("\n".join(lines) + "\n")
    loaded, _ = read_candle_file(path)
    pd.testing.assert_frame_equal(loaded, candles, check_freq=False)
    # Microsecond timestamps (Binance spot dumps since 2025) too.
    path.write_text(
        "\n".join(line.replace(f"{t},", f"{t * 1000},", 1) for t, line in zip(ms, lines, strict=True))
    )
    loaded, _ = read_candle_file(path)
    pd.testing.assert_frame_equal(loaded, candles, check_freq=False)


def test_malformed_csv_reports_file_and_line(tmp_path):
    path = tmp_path / "ETH_BTC-5m.csv"
    path.write_text(
        "date,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
        "2024-01-01T00:05:00Z,1.5,2,1,1.2,\n"
        "2024-01-01T00:10:00Z,1.2,1.3,1.1,1.25,3\n"
        "2024-01-01T00:10:00Z,1.2,1.3,1.1,1.30,3\n"
    )
    with pytest.raises(DataError) as caught:
        read_candle_file(path)
    text = str(caught.value)
    assert f"{path}:5:1: error[DATA004]: 1 timestamp appears more than once" in text
    assert f"{path}:3:1: warning[DATA007]" in text


def test_unreadable_or_unknown_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_candle_file(tmp_path / "missing.csv")
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(DataError, match="unsupported file type"):
        read_candle_file(tmp_path / "x.json")
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read parquet file"):
        read_candle_file(tmp_path / "x.parquet")
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(DataError, match="cannot read csv file"):
        read_candle_file(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="no header and 3 columns"):
        read_candle_file(tmp_path / "y.csv")


def test_file_names():
    assert pair_key("eth/btc") == "ETH_BTC"
    assert candle_filename("XRP/USDT:USDT", "5m", ".csv") == "XRP_USDT_USDT-5m-futures.csv"
    assert parse_candle_filename("XRP_USDT_USDT-5m-futures.csv").pair == "XRP/USDT:USDT"
    assert parse_candle_filename("BTC_USDT-1h-futures.feather").pair == "BTC/USDT:USDT"
    parsed = parse_candle_filename("ETH_BTC-1d.csv.gz")
    assert (parsed.pair, parsed.timeframe, parsed.ext) == ("ETH/BTC", "1d", ".csv.gz")
    assert parse_candle_filename("ETH_BTC-7m.csv") is None
    assert parse_candle_filename("XRP_USDT_USDT-5m.csv") is None  # three parts need -futures
    assert parse_candle_filename("ETHBTC-5m.csv") is None


def test_shared_directory_reader(shared_data):
    data = DataDirectory(shared_data)
    assert "ETH/BTC" in data.pairs() and "XRP/USDT:USDT" in data.pairs()
    assert data.timeframes("XRP/ETH") == ["1m", "5m"]
    eth = data.load("ETH/BTC", "5m")
    assert len(eth) == 5760 and eth.index.is_monotonic_increasing
    assert str(eth.index.dtype) == "datetime64[ns, UTC]"
    futures = data.load("XRP/USDT:USDT", "1h")
    assert len(futures) == 100  # the 1h file is used as it is, not resampled from 5m
    window = data.load("ETH/BTC", "1h", "2018-01-11", "2018-01-12")
    assert len(window) == 24 and window.index[0] == pd.Timestamp("2018-01-11", tz="UTC")
    assert data.load("ETH/BTC", "1d").index[0] == pd.Timestamp("2018-01-11", tz="UTC")  # first full day
    data.load("XRP/ETH", "1m")
    assert any(d.code == "DATA010" for d in data.diagnostics("XRP/ETH", "1m"))  # known gaps reported


def test_directory_errors_are_clear(tmp_path, shared_data):
    with pytest.raises(DataError, match="data directory not found"):
        DataDirectory(tmp_path / "nope")
    data = DataDirectory(shared_data)
    with pytest.raises(DataError, match=r"no 5m candles for ETH/BTX.*did you mean 'ETH/BTC'"):
        data.load("ETH/BTX", "5m")
    with pytest.raises(DataError, match="files exist for 5m, none of which divides 3m"):
        data.load("ETH/BTC", "3m")
    assert len(data.load("XRP/ETH", "3m")) > 0  # 1m divides 3m


def test_directory_prefers_fast_formats_and_lists_odd_names(tmp_path):
    candles = make_candles(periods=20)
    write_csv(candles, tmp_path / "ETH_BTC-5m.csv")
    candles.iloc[:10].to_parquet(tmp_path / "ETH_BTC-5m.parquet")
    (tmp_path / "futures").mkdir()
    write_csv(candles, tmp_path / "futures" / "BTC_USDT_USDT-5m-futures.csv")
    write_csv(candles, tmp_path / "eth-btc.csv")
    (tmp_path / "README.txt").write_text("x")
    data = DataDirectory(tmp_path)
    assert len(data.load("ETH/BTC", "5m")) == 10
    assert data.pairs() == ["BTC/USDT:USDT", "ETH/BTC"]
    assert [p.name for p in data.skipped] == ["eth-btc.csv"]


def test_byte_order_mark_and_time_zone_offsets(tmp_path):
    path = tmp_path / "ETH_BTC-1h.csv"
    path.write_text(
        "\ufeffDate,Open,High,Low,Close,Volume\n"
        "2024-01-01T01:00:00+01:00,1,2,0.5,1.5,3\n"
        "2024-01-01T02:00:00+01:00,1.5,2,1,1.2,4\n",
        encoding="utf-8",
    )
    loaded, _ = read_candle_file(path)
    assert loaded.index.tolist() == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 01:00", tz="UTC"),
    ]
