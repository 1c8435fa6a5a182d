from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.dsl.toy_registry import make_registry


@pytest.fixture(scope="session")
def registry():
    return make_registry()


def synthetic_candles(count: int = 600, timeframe_minutes: int = 5, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, count)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.002, count)) * close
    index = pd.date_range("2024-01-01", periods=count, freq=f"{timeframe_minutes}min", tz="UTC", name="date")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 10, count),
        },
        index=index,
    )


@pytest.fixture(scope="session")
def candles() -> pd.DataFrame:
    return synthetic_candles()
