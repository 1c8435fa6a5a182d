from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dsl.registry import Registry
from engine.indicators import default_registry
from tests.engine.indicators.helpers import load_candles


@pytest.fixture(scope="session")
def registry() -> Registry:
    return default_registry()


@pytest.fixture(scope="session")
def eth(shared_data: Path) -> pd.DataFrame:
    """ETH/BTC 5m candles, 5760 rows (20 days from 2018-01-10 04:55 UTC)."""
    return load_candles(shared_data, "ETH_BTC-5m.csv")


@pytest.fixture(scope="session")
def ada(shared_data: Path) -> pd.DataFrame:
    return load_candles(shared_data, "ADA_BTC-5m.csv")
