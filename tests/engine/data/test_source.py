from __future__ import annotations

import pytest

from engine.data.datadir import DataDirectory
from engine.data.source import CandleSource, StoreView, open_source
from engine.data.store import CandleStore
from engine.data.synth import synth_candles
from tests.engine.data.conftest import make_candles


def test_store_and_directory_share_one_interface(tmp_path, shared_data):
    store = CandleStore(tmp_path)
    store.save("binance", "ETH/BTC", "5m", make_candles(periods=24), source="test")
    store.save("binance", "BTC/USDT", "1h", make_candles(freq="1h"), source="synth", synthetic=True)
    view = open_source(store_root=tmp_path)
    directory = open_source(data_dir=shared_data)
    assert isinstance(view, StoreView) and isinstance(directory, DataDirectory)
    for source in (view, directory):
        assert isinstance(source, CandleSource)
        assert "ETH/BTC" in source.pairs()
        assert source.timeframes("ETH/BTC") == ["5m"]
        hourly = source.load("ETH/BTC", "1h")
        assert len(hourly) >= 2
        assert (hourly.index.minute == 0).all()
    assert view.pairs() == ["BTC/USDT", "ETH/BTC"]
    assert view.synthetic("BTC/USDT", "1h") and view.synthetic("BTC/USDT", "4h")
    assert not view.synthetic("ETH/BTC", "1h")
    assert not view.synthetic("LTC/BTC", "1h")


@pytest.mark.slow
def test_ten_years_of_minutes_round_trip_through_the_store(tmp_path):
    """The benchmark's volume (10 pairs x 525,600 1m candles) saves and loads back intact; its speed is
    measured by bench/backtest.py, not asserted here."""
    store = CandleStore(tmp_path)
    pairs = [f"C{i}/USDT" for i in range(10)]
    for i, pair in enumerate(pairs):
        store.save(
            "binance",
            pair,
            "1m",
            synth_candles(pair, "1m", "2023-01-01", periods=525_600, seed=i),
            source="bench",
        )
    frames = [store.load("binance", pair, "1m") for pair in pairs]
    assert sum(len(f) for f in frames) > 5_200_000
    assert all(str(f.index.dtype) == "datetime64[ns, UTC]" for f in frames)
    assert all(f.index.is_monotonic_increasing and f.index.is_unique for f in frames)
