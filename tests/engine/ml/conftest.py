"""Candles the ML tests generate: seeded random walks and walks with a planted, learnable relation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import load_model

FIVE_MINUTES = pd.Timedelta(minutes=5)


def walk(seed: int, days: int, *, planted: float = 0.0, start: str = "2024-01-01") -> pd.DataFrame:
    """5m candles of a geometric random walk. With ``planted`` > 0 the volume of each candle tells
    the direction of the next one: log return = planted * (volume - 1) + noise."""
    rng = np.random.default_rng(seed)
    n = days * 288
    volume = rng.uniform(0.5, 1.5, n)
    noise = rng.normal(0.0, 0.002, n)
    steps = noise.copy()
    steps[1:] += planted * (volume[:-1] - 1.0)
    close = 100.0 * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.001, n))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    index = pd.date_range(start, periods=n, freq=FIVE_MINUTES, tz="UTC", name="date")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


MODEL = """\
model: {name}
timeframe: 5m
pairs: [{pairs}]
per_pair: {per_pair}
features:
{features}
label:
{label}
learner:
{learner}
windows:
  train: {train}
  step: 1d
  embargo: {embargo}
  min_train_rows: 100
seed: 7
"""

RANDOM_FEATURES = {
    "rsi14": "rsi(close, 14)",
    "roc6": "roc(close, 6)",
    "close_sma": "close / sma(close, 20)",
    "change": "close / close[1] - 1",
    "volume_ratio": "volume / sma(volume, 20)",
    "hour": "hour()",
}


def model_text(
    *,
    name: str = "m",
    pairs: tuple[str, ...] = ("AAA/BTC",),
    per_pair: bool = False,
    features: dict[str, str] | None = None,
    label: str = "  type: direction\n  horizon: 6",
    learner: str = "  type: lightgbm\n  trees: 40\n  leaves: 15",
    train: str = "3d",
    embargo: int = 0,
) -> str:
    features = features or RANDOM_FEATURES
    return MODEL.format(
        name=name,
        pairs=", ".join(pairs),
        per_pair=str(per_pair).lower(),
        features="\n".join(f"  {k}: {v}" for k, v in features.items()),
        label=label,
        learner=learner,
        train=train,
        embargo=embargo,
    )


@pytest.fixture
def write_model(tmp_path: Path):
    def write(**kwargs):
        path = tmp_path / "models" / f"{kwargs.get('name', 'm')}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(model_text(**kwargs))
        return load_model(path, relative_to=tmp_path)

    return write
