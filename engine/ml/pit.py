"""Walk-forward predictions as point-in-time series: what a backtest's ``ml.<model>.<member>`` reads.

Each prediction is known at its candle's close (``available_at`` = close = ``event_time``). Series are
keyed by the model name *and* the first 12 hex digits of its spec hash, per exchange and pair, so a
changed model file never reads the predictions of its former self.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from engine.feeds.observations import Observation, series_key

__all__ = ["STORED_MEMBERS", "model_series", "prediction_observations"]

STORED_MEMBERS = ("p_sell", "p_hold", "p_buy")  # signal and confidence are derived at the join


def model_series(name: str, spec_hash: str, member: str, exchange: str, pair: str) -> str:
    return series_key(f"ml.{name}.{spec_hash[:12]}", member, f"{exchange}:{pair}")


def prediction_observations(
    predictions: pd.DataFrame, name: str, spec_hash: str, exchange: str, version: str
) -> Iterator[Observation]:
    """Observations of p_sell/p_hold/p_buy for every row of a predictions frame."""
    source = f"ml:{name}:{version}"
    for pair, rows in predictions.groupby("pair", sort=True, observed=True):
        closes = rows["available_at"].dt.as_unit("ns").astype("int64").to_numpy()
        for member in STORED_MEMBERS:
            key = model_series(name, spec_hash, member, exchange, str(pair))
            values = rows[member].to_numpy(dtype=np.float64)
            for t, v in zip(closes.tolist(), values.tolist(), strict=True):
                # float32 probabilities, rounded so reruns give equal values (deduplicated in the store)
                yield Observation(key, t, t, round(v, 7), source)
