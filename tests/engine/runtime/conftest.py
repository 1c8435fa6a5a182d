"""Fixtures shared by the runtime tests. Each is defined once, here; the plain helpers they build on are in
``helpers.py``. All are function-scoped and synchronous (a test's fake servers are its own; the event loop
is pytest-asyncio's per-test one)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pandas as pd
import pytest

from engine.data.naming import candle_filename
from tests.engine.exchanges.fake import API_KEY, SECRET
from tests.engine.runtime.helpers import BOT, STRATEGY
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading

ROOT = Path(__file__).resolve().parents[3]


def make_workspace(root: Path, bots: list[str], days: int = 2) -> Path:
    """bots/ and strategies/ (copies of the examples) and synthetic candles for them under ``root``."""
    from engine.demo import write_demo_data

    (root / "bots").mkdir(parents=True)
    shutil.copytree(ROOT / "strategies", root / "strategies")
    for name in bots:
        shutil.copy(ROOT / "bots" / name, root / "bots" / name)
    write_demo_data(sorted((root / "bots").glob("*.yaml")), root / "data", days=days)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path, ["eth_btc_trend.yaml", "xrp_futures_breakout.yaml"], days=2)


# --- the live feed tests' fake Binance: ETH/BTC and LTC/BTC walks over 2024-01-01..04, 1m --------------


@pytest.fixture
def candles() -> pd.DataFrame:
    return walk_candles("2024-01-01", "2024-01-04")


@pytest.fixture
def server(candles: pd.DataFrame) -> Iterator[FakeBinance]:
    ltc = walk_candles("2024-01-01", "2024-01-04", seed=2, start_price=0.002)
    with FakeBinance([FakeMarket.spot("ETH/BTC", candles), FakeMarket.spot("LTC/BTC", ltc)]) as fake:
        yield fake


# --- a testnet bot on the signed fake Binance ------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, FakeBinance, FakeTrading]]:
    """``(root, server, trading)``: the testnet bot ``bots/eth.yaml`` (helpers.BOT: ETH/USDT 1m, keys in
    helpers.ENV) and its strategy under ``root``; replay candles in ``root/data`` closed by a minute ago;
    a signed fake Binance serving the same walk (up to an hour past now) with a 10000 USDT account, fee
    0.1%, whose market orders fill at the close of the wall clock's candle."""
    (tmp_path / "strategies").mkdir()
    (tmp_path / "bots").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "strategies" / "flip.yaml").write_text(STRATEGY)
    (tmp_path / "bots" / "eth.yaml").write_text(BOT)
    now = pd.Timestamp.now(tz="UTC").floor("min")
    candles = walk_candles(
        (now - pd.Timedelta(minutes=300)).isoformat(), (now + pd.Timedelta(minutes=60)).isoformat(),
        start_price=2000.0, seed=7,
    )  # fmt: skip
    candles[candles.index < now - pd.Timedelta(minutes=1)].to_parquet(
        tmp_path / "data" / candle_filename("ETH/USDT", "1m")
    )
    market = FakeMarket.spot("ETH/USDT", candles, tick_size="0.01", step_size="0.0001", min_notional="5")
    server = FakeBinance([market]).start()
    trading = FakeTrading.install(server, API_KEY, SECRET, {"USDT": "10000"})
    trading.fee_rate = D("0.001")
    try:
        yield tmp_path, server, trading
    finally:
        server.stop()
