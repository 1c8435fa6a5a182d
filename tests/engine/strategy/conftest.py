from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import LoadedStrategy, load_strategy

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "strategies").glob("*.yaml"))

# Functions that are not array-native (supertrend: hand-written on Series; kama, hma: pandas-ta) next
# to converted ones, on two higher timeframes, so the array path meets the Series fallback and align.
MIXED = """\
strategy: mixed
timeframe: 5m
features:
  trend: supertrend(10, 3).direction
  smooth: kama(close, 10)
  hourly: hma(close, 9)@1h
  wide: atr(5)@1h
  slow: close@4h > close@4h[2]
entry:
  long: trend > 0 and close > smooth and close > hourly and rising(ema(close, 5), 2) or slow and crosses_above(close, smooth)
  short: trend < 0 and crosses_below(close, smooth)
exit:
  long: close < hourly or pattern("engulfing", "bearish")
  short: close > donchian(10).upper[1]
stops:
  stop_loss: 2 * wide
  take_profit: 3 * atr(14) - 100
"""


@pytest.fixture(scope="session")
def mixed_strategy(tmp_path_factory) -> LoadedStrategy:
    path = tmp_path_factory.mktemp("strategies") / "mixed.yaml"
    path.write_text(MIXED)
    return load_strategy(path)


def synthetic(count: int, seed: int = 11, gaps: bool = False) -> pd.DataFrame:
    """5m candles (a random walk); with ``gaps``, a few NaN values (a bad tick, a feed hole)."""
    rng = np.random.default_rng(seed)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.004, count)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.003, count)) * close
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(1, 50, count),
        },
        index=pd.date_range("2024-03-04 01:35", periods=count, freq="5min", tz="UTC", name="date").as_unit(
            "ns"
        ),
    )
    if gaps:
        for column in frame.columns:
            rows = rng.choice(count, max(1, count // 300), replace=False)
            frame.iloc[rows, frame.columns.get_loc(column)] = np.nan
    return frame
