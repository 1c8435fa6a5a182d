from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data.store import CandleStore


def make_candles(
    start: str = "2024-01-01", periods: int = 48, freq: str = "5min", seed: int = 1
) -> pd.DataFrame:
    """Small contract frame with distinct values, for store and reader tests."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, periods)))
    open_ = np.r_[100.0, close[:-1]]
    index = pd.date_range(start, periods=periods, freq=freq, tz="UTC", name="date").as_unit("ns")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": rng.uniform(1, 100, periods),
        },
        index=index,
    )


@pytest.fixture
def store(tmp_path) -> CandleStore:
    return CandleStore(tmp_path / "data")


@pytest.fixture
def fake_binance():
    """A started fake Binance server factory: ``fake_binance(markets, now=...)``; all stopped at teardown."""
    from tests.fakes.binance_server import FakeBinance

    servers = []

    def start(markets, now: str | None = None) -> FakeBinance:
        now_ms = int(pd.Timestamp(now, tz="UTC").value // 1_000_000) if now else None
        server = FakeBinance(markets, now_ms=now_ms).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
