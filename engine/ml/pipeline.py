"""From a model file and candles to walk-forward predictions and their metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import LoadedModel
from engine.data.errors import DataError
from engine.ml.errors import MLError
from engine.ml.feature_store import FeatureStore
from engine.ml.features import feature_matrix
from engine.ml.labels import BUY, CLASSES, UNKNOWN, make_labels
from engine.ml.metrics import Metrics, PolicyResult, classification_metrics, policy_result
from engine.ml.walkforward import PairData, WalkForward, run_walkforward

__all__ = [
    "Evaluation",
    "evaluate",
    "load_pairs",
    "pair_data",
    "predictions_frame",
    "source_label",
    "walkforward",
]


def pair_data(
    loaded: LoadedModel,
    pair: str,
    candles: pd.DataFrame,
    context: Any = None,
    *,
    store: FeatureStore | None = None,
    source: str = "",
) -> PairData:
    """Features and labels of one pair's candles (open-time index, UTC). With ``store``, the features
    come from the feature store where it holds them (``source`` names the candles' origin in its key);
    a ``context`` (data beyond the candles) always computes them."""
    if len(candles) == 0:
        raise MLError("ML003", f"{pair}: no candles")
    if store is not None and context is None:
        x = store.matrix(loaded.plan, loaded.feature_names, candles, pair=pair, source=source).x
    else:
        x = feature_matrix(loaded.plan, loaded.feature_names, candles, context)
    close = candles["close"].to_numpy(dtype=np.float64)
    high = candles["high"].to_numpy(dtype=np.float64)
    low = candles["low"].to_numpy(dtype=np.float64)
    y = make_labels(loaded.model.label, close, high, low)
    index = candles.index
    times = (index.as_unit("ns") if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)).asi8
    # Rows before every feature is defined are warm-up: never trained on (their NaNs say nothing).
    complete = np.flatnonzero(np.isfinite(x).all(axis=1))
    warmup = int(complete[0]) if len(complete) else len(candles)
    return PairData(pair, times, x, y, close, warmup=warmup, candles=candles)


def load_pairs(
    loaded: LoadedModel,
    source: Any,
    pairs: Sequence[str] | None = None,
    end: Any = None,
    *,
    store: FeatureStore | None = None,
) -> list[PairData]:
    """Every pair of the model from a candle source (the store or a data directory), up to ``end``;
    features through the feature ``store`` when given."""
    out = []
    label = source_label(source, loaded.model.exchange)
    for pair in pairs or loaded.model.pairs:
        try:
            candles = source.load(pair, loaded.model.timeframe, None, end)
        except DataError as exc:
            raise MLError("ML003", f"{pair}: {exc}") from None
        out.append(pair_data(loaded, pair, candles, store=store, source=label))
    return out


def source_label(source: Any, exchange: str) -> str:
    """Where candles come from, for the feature store's key: two data directories holding the same
    pair keep two files instead of overwriting each other's (the candles are checked row by row anyway)."""
    root = getattr(source, "root", None) or getattr(getattr(source, "store", None), "root", None)
    where = str(Path(root).resolve()) if root is not None else type(source).__name__
    return f"{getattr(source, 'exchange', exchange)}:{where}"


def walkforward(
    loaded: LoadedModel,
    pairs: list[PairData],
    *,
    start: Any = None,
    end: Any = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    latest: bool = False,
) -> WalkForward:
    return run_walkforward(
        loaded.model,
        pairs,
        start_ns=_ns(start),
        end_ns=_ns(end),
        workers=workers,
        progress=progress,
        latest=latest,
    )


def _ns(value: Any) -> int | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def predictions_frame(wf: WalkForward, version: str) -> pd.DataFrame:
    """One row per predicted candle: pair, time (open), available_at (close), p_sell, p_hold, p_buy,
    predicted, label (the realised class, empty while unknown), baseline, window, model_version."""
    parts: list[pd.DataFrame] = []
    for result in wf.results:
        offset = 0
        for pair_index, a, b in result.spans:
            data = wf.pairs[pair_index]
            proba = result.proba[offset : offset + (b - a)]
            offset += b - a
            labels = data.y[a:b]
            frame = pd.DataFrame(
                {
                    "pair": data.pair,
                    "time": pd.to_datetime(data.times[a:b], utc=True),
                    "available_at": pd.to_datetime(data.times[a:b] + wf.timeframe_ns, utc=True),
                    "p_sell": proba[:, 0],
                    "p_hold": proba[:, 1],
                    "p_buy": proba[:, 2],
                    "predicted": pd.Categorical.from_codes(proba.argmax(axis=1), CLASSES),
                    "label": pd.Categorical.from_codes(np.where(labels == UNKNOWN, -1, labels), CLASSES),
                    "baseline": CLASSES[int(np.argmax(result.baseline))],
                    "window": result.window + 1,
                    "model_version": f"{version}-w{result.window + 1}",
                }
            )
            parts.append(frame)
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["pair", "time"], kind="mergesort", ignore_index=True)


@dataclass(frozen=True)
class Evaluation:
    model: Metrics
    baseline: Metrics
    policy: PolicyResult
    per_window: list[tuple[int, float, int]]  # (window, balanced accuracy, rows)


def evaluate(wf: WalkForward, fee: float = 0.001) -> Evaluation:
    """Metrics over every labelled out-of-sample row, the naive baseline (each window's majority
    training class, with the training class frequencies as probabilities), and the policy result."""
    ys, probas, bases, per_window = [], [], [], []
    closes: dict[int, list[np.ndarray]] = {}
    signals: dict[int, list[np.ndarray]] = {}
    for result in wf.results:
        offset = 0
        wy, wp = [], []
        for pair_index, a, b in result.spans:
            data = wf.pairs[pair_index]
            proba = result.proba[offset : offset + (b - a)]
            offset += b - a
            known = data.y[a:b] != UNKNOWN
            wy.append(data.y[a:b][known])
            wp.append(proba[known])
            bases.append(np.repeat(result.baseline[None, :].astype(np.float32), int(known.sum()), axis=0))
            closes.setdefault(pair_index, []).append(data.close[a:b])
            signals.setdefault(pair_index, []).append(proba.argmax(axis=1) == BUY)
        ys.extend(wy)
        probas.extend(wp)
        y = np.concatenate(wy)
        if len(y):
            per_window.append(
                (result.window + 1, classification_metrics(y, np.concatenate(wp)).balanced_accuracy, len(y))
            )
    y = np.concatenate(ys)
    if len(y) == 0:
        raise MLError("ML003", "no out-of-sample row has a known label yet: nothing to evaluate")
    policy = policy_result(
        [np.concatenate(closes[p]) for p in sorted(closes)],
        [np.concatenate(signals[p]) for p in sorted(signals)],
        fee,
    )
    return Evaluation(
        classification_metrics(y, np.concatenate(probas)),
        classification_metrics(y, np.concatenate(bases)),
        policy,
        per_window,
    )
