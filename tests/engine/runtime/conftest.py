"""Fixtures shared by the runtime tests. Each is defined once, here; the plain helpers they build on are in
``helpers.py``. All are function-scoped and synchronous (a test's fake servers are its own; the event loop
is pytest-asyncio's per-test one)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.engine.runtime.helpers import build_testnet_world
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
    server, trading = build_testnet_world(tmp_path)
    try:
        yield tmp_path, server, trading
    finally:
        server.stop()
