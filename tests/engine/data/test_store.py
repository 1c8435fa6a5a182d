from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from engine.data.errors import DataError
from engine.data.ranges import merge_ranges, subtract_ranges
from engine.data.store import CandleStore, default_store_root
from tests.engine.data.conftest import make_candles

UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def test_round_trip_keeps_the_contract_and_values(store):
    candles = make_candles(periods=300)
    entry = store.save("binance", "ETH/BTC", "5m", candles, source="test")
    assert entry.path == store.root / "binance" / "ETH_BTC-5m.parquet"
    loaded = store.load("binance", "eth/btc", "5m")
    pd.testing.assert_frame_equal(loaded, candles, check_freq=False)
    assert str(loaded.index.dtype) == "datetime64[ns, UTC]"
    loaded.iloc[0, 0] = 1.0  # frames handed out are writable, independent copies
    assert store.load("binance", "ETH/BTC", "5m").iloc[0, 0] == candles.iloc[0, 0]


def test_futures_pairs_get_their_own_file(store):
    store.save("binance", "XRP/USDT:USDT", "5m", make_candles(), source="test")
    assert (store.root / "binance" / "XRP_USDT_USDT-5m-futures.parquet").is_file()
    [entry] = store.list()
    assert entry.pair == "XRP/USDT:USDT"


def test_metadata_lives_in_the_parquet_footer(store):
    candles = make_candles(periods=12)
    store.save("binance", "ETH/BTC", "5m", candles, source="synth seed=1", synthetic=True)
    meta = pq.read_metadata(store.path("binance", "ETH/BTC", "5m")).metadata
    doc = json.loads(meta[b"engine.candles"])
    assert doc["synthetic"] is True
    assert doc["source"] == "synth seed=1"
    assert doc["fetched"] == [[1704067200000, 1704067200000 + 12 * 300_000]]


def test_load_time_range_is_half_open(store):
    store.save("binance", "ETH/BTC", "5m", make_candles(periods=300), source="test")
    part = store.load("binance", "ETH/BTC", "5m", "2024-01-01 01:00", ts("2024-01-01 02:00"))
    assert part.index[0] == ts("2024-01-01 01:00")
    assert part.index[-1] == ts("2024-01-01 01:55")
    assert len(store.load("binance", "ETH/BTC", "5m", start="2030-01-01")) == 0


def test_range_reads_only_needed_row_groups(store, monkeypatch):
    import engine.data.store as module

    monkeypatch.setattr(module, "_ROW_GROUP", 100)
    store.save("binance", "ETH/BTC", "1m", make_candles(periods=1000, freq="1min"), source="test")
    handle = pq.ParquetFile(store.path("binance", "ETH/BTC", "1m"))
    assert handle.metadata.num_row_groups == 10
    assert module._row_groups(handle, ts("2024-01-01 05:00"), ts("2024-01-01 05:30")) == [3]
    part = store.load("binance", "ETH/BTC", "1m", "2024-01-01 05:00", "2024-01-01 05:30")
    assert len(part) == 30


def test_merge_new_candles_win_and_ranges_join(store):
    first = make_candles(periods=24)
    store.save("binance", "ETH/BTC", "5m", first, source="download")
    second = make_candles(start="2024-01-01 01:00", periods=24, seed=2)
    entry = store.save("binance", "ETH/BTC", "5m", second, source="download")
    merged = store.load("binance", "ETH/BTC", "5m")
    assert len(merged) == 36
    pd.testing.assert_frame_equal(merged.loc["2024-01-01 01:00":], second, check_freq=False)
    pd.testing.assert_frame_equal(merged.loc[:"2024-01-01 00:55"], first.iloc[:12], check_freq=False)
    assert entry.fetched == ((ts("2024-01-01"), ts("2024-01-01 03:00")),)
    assert entry.gaps == ()


def test_gaps_are_known_only_inside_fetched_ranges(store):
    store.save("binance", "ETH/BTC", "5m", make_candles(periods=12), source="a")
    later = make_candles(start="2024-01-01 02:00", periods=12)
    entry = store.save("binance", "ETH/BTC", "5m", later, source="a")
    assert entry.gaps == ()  # 01:00-02:00 was never asked for
    assert entry.fetched == (
        (ts("2024-01-01"), ts("2024-01-01 01:00")),
        (ts("2024-01-01 02:00"), ts("2024-01-01 03:00")),
    )

    holey = make_candles(start="2024-01-02", periods=12).drop(
        index=[ts("2024-01-02 00:20"), ts("2024-01-02 00:25")]
    )
    entry = store.save("binance", "BTC/USDT", "5m", holey, source="a")
    assert entry.gaps == ((ts("2024-01-02 00:20"), ts("2024-01-02 00:30")),)
    assert entry.missing_candles == 2
    coverage = store.coverage("binance", "BTC/USDT", "5m")
    assert coverage.missing == 2 and coverage.rows == 10
    assert store.coverage("binance", "BTC/USDT", "1h") is None


def test_real_data_replaces_synthetic_and_synthetic_never_overwrites_real(store):
    store.save("binance", "ETH/BTC", "5m", make_candles(periods=24), source="synth", synthetic=True)
    real = make_candles(start="2024-01-01 01:00", periods=6, seed=3)
    entry = store.save("binance", "ETH/BTC", "5m", real, source="download")
    assert not entry.synthetic
    assert entry.rows == 6  # nothing synthetic is left mixed in
    with pytest.raises(DataError, match="refusing to overwrite"):
        store.save("binance", "ETH/BTC", "5m", make_candles(), source="synth", synthetic=True)
    entry = store.save(
        "binance", "ETH/BTC", "5m", make_candles(), source="synth", synthetic=True, replace=True
    )
    assert entry.synthetic and entry.rows == 48


def test_higher_timeframe_is_resampled_from_the_finest_divisor(store):
    candles = make_candles(periods=24 * 12 + 7)  # a day of 5m and a partial hour
    store.save("binance", "ETH/BTC", "5m", candles, source="test")
    store.save("binance", "ETH/BTC", "15m", make_candles(periods=10, freq="15min", seed=9), source="test")
    hourly = store.load("binance", "ETH/BTC", "1h")
    assert len(hourly) == 24
    first = candles.iloc[:12]
    assert hourly.iloc[0].tolist() == [
        first["open"].iloc[0],
        first["high"].max(),
        first["low"].min(),
        first["close"].iloc[-1],
        pytest.approx(first["volume"].sum()),
    ]
    # A start inside an hour still yields whole hours only.
    part = store.load("binance", "ETH/BTC", "1h", "2024-01-01 02:30", "2024-01-01 05:00")
    assert part.index.tolist() == [ts("2024-01-01 03:00"), ts("2024-01-01 04:00")]
    part = store.load("binance", "ETH/BTC", "1h", "2024-01-01 02:00", "2024-01-01 04:30")
    assert part.index.tolist() == [ts("2024-01-01 02:00"), ts("2024-01-01 03:00"), ts("2024-01-01 04:00")]


def test_missing_series_is_a_clear_error(store):
    with pytest.raises(DataError) as caught:
        store.load("binance", "ETH/BTC", "1h")
    [diag] = caught.value.diagnostics
    assert diag.code == "DATA016"
    assert "engine data download" in diag.message
    store.save("binance", "ETH/BTC", "1h", make_candles(freq="1h"), source="test")
    with pytest.raises(DataError, match="stored for this pair: 1h"):
        store.load("binance", "ETH/BTC", "30m")


def test_list_reports_every_series_sorted(store):
    store.save("kraken", "BTC/USD", "1h", make_candles(freq="1h"), source="test")
    store.save("binance", "ETH/BTC", "1h", make_candles(freq="1h"), source="test")
    store.save("binance", "ETH/BTC", "5m", make_candles(), source="synth", synthetic=True)
    (store.root / "binance" / "notes.parquet").write_text("not candles")
    entries = store.list()
    assert [(e.exchange, e.pair, e.timeframe, e.synthetic) for e in entries] == [
        ("binance", "ETH/BTC", "5m", True),
        ("binance", "ETH/BTC", "1h", False),
        ("kraken", "BTC/USD", "1h", False),
    ]
    assert entries[0].start == ts("2024-01-01") and entries[0].end == ts("2024-01-01 03:55")
    assert [e.exchange for e in store.list("kraken")] == ["kraken"]
    assert CandleStore(store.root / "nowhere").list() == []


def test_atomic_write_leaves_no_temp_file_and_keeps_old_file_on_failure(store, monkeypatch):
    store.save("binance", "ETH/BTC", "5m", make_candles(), source="test")
    path = store.path("binance", "ETH/BTC", "5m")
    before = path.read_bytes()

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        store.save("binance", "ETH/BTC", "5m", make_candles(seed=5), source="test")
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_save_rejects_frames_breaking_the_contract(store):
    candles = make_candles()
    with pytest.raises(DataError, match="sorted"):
        store.save("binance", "ETH/BTC", "5m", candles.iloc[::-1], source="test")
    with pytest.raises(DataError, match="boundaries"):
        store.save("binance", "ETH/BTC", "1h", candles, source="test")
    with pytest.raises(ValueError, match="invalid exchange"):
        store.save("Bin/ance", "ETH/BTC", "5m", candles, source="test")
    with pytest.raises(ValueError, match="invalid pair"):
        store.save("binance", "ETHBTC", "5m", candles, source="test")


def test_corrupt_file_is_a_data_error(store):
    path = store.path("binance", "ETH/BTC", "5m")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError, match="cannot read stored candles"):
        store.load("binance", "ETH/BTC", "5m")
    assert store.list() == []
    assert store.unreadable() == [path]


def test_default_root_follows_engine_home(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path))
    assert default_store_root() == tmp_path / "data"
    monkeypatch.delenv("ENGINE_HOME")
    assert str(default_store_root()) == "var/data"


def test_range_arithmetic():
    assert merge_ranges([(5, 8), (0, 2), (2, 4), (7, 10), (12, 12)]) == [(0, 4), (5, 10)]
    assert subtract_ranges((0, 20), [(2, 5), (4, 8), (15, 30)]) == [(0, 2), (8, 15)]
    assert subtract_ranges((0, 10), []) == [(0, 10)]
    assert subtract_ranges((3, 6), [(0, 10)]) == []
