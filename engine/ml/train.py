"""``engine ml train``: walk-forward evaluation, then the latest model saved as a new version.

The version id hashes the spec and the data range, so the same model file on the same candles gives
the same version (and, seeds fixed, the same files); any change of spec or data gives a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from engine.config import LoadedModel
from engine.ml.artifacts import pair_key, save_artifacts
from engine.ml.identity import FORMAT, data_range, model_version, spec_hash
from engine.ml.learners import Fitted
from engine.ml.pipeline import Evaluation, evaluate, predictions_frame, walkforward
from engine.ml.walkforward import PairData, WalkForward, fit_latest

__all__ = ["TrainOutcome", "feature_importance", "train_and_save"]


@dataclass
class TrainOutcome:
    name: str
    version: str
    spec_hash: str
    walkforward: WalkForward
    evaluation: Evaluation
    predictions: pd.DataFrame
    models: dict[str, Fitted]
    path: Path
    checksum: str
    meta: dict[str, Any]

    def registry_fields(self) -> dict[str, Any]:
        """Keyword arguments of :func:`engine.ml.registry.register_version`."""
        ranges = self.meta["data_range"]
        return {
            "name": self.name,
            "version": self.version,
            "spec_hash": self.spec_hash,
            "learner": self.meta["learner"]["type"],
            "data_start": min(r[1] for r in ranges),
            "data_end": max(r[2] for r in ranges),
            "path": str(self.path),
            "checksum": self.checksum,
            "metrics": self.meta["metrics"],
            "params": {"learner": self.meta["learner"], "seed": self.meta["seed"]},
            "importance": self.meta["importance"],
        }


def feature_importance(models: dict[str, Fitted], names: tuple[str, ...]) -> dict[str, float]:
    total = dict.fromkeys(names, 0.0)
    for fitted in models.values():
        for column, value in zip(fitted.columns, fitted.importance(), strict=True):
            total[names[column]] += value
    scale = sum(total.values()) or 1.0
    return {k: round(v / scale, 6) for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


def train_and_save(
    loaded: LoadedModel,
    pairs: list[PairData],
    root: Path,
    *,
    start: Any = None,
    end: Any = None,
    workers: int | None = None,
    fee: float = 0.001,
    progress: Callable[[int, int], None] | None = None,
) -> TrainOutcome:
    """Walk-forward over ``pairs``, evaluate out of sample, fit the latest model(s), write the files."""
    spec = spec_hash(loaded)
    ranges = [(d.pair, int(d.times[0]), int(d.times[-1])) for d in pairs]
    version = model_version(spec, ranges)
    # The latest models are fitted in the walk-forward's worker pool.
    wf = walkforward(loaded, pairs, start=start, end=end, workers=workers, progress=progress, latest=True)
    evaluation = evaluate(wf, fee)
    predictions = predictions_frame(wf, version)
    latest = wf.latest_models if wf.latest_models is not None else fit_latest(loaded.model, pairs)
    models = {k if k == "all" else pair_key(k): v for k, v in latest.items()}
    meta = {
        "format": FORMAT,
        "spec_hash": spec,
        "model_file": loaded.file,
        "timeframe": loaded.model.timeframe,
        "pairs": list(loaded.model.pairs),
        "per_pair": loaded.model.per_pair,
        "features": dict(loaded.model.features),
        "feature_names": list(loaded.feature_names),
        "label": loaded.model.label.model_dump(mode="json"),
        "learner": loaded.model.learner.model_dump(mode="json"),
        "seed": loaded.model.seed,
        "data_range": data_range(ranges),
        "windows": len(wf.windows),
        "metrics": {
            "model": evaluation.model.as_dict(),
            "baseline": evaluation.baseline.as_dict(),
            "policy": vars(evaluation.policy),
            "per_window": [list(w) for w in evaluation.per_window],
        },
        "importance": feature_importance(models, loaded.feature_names),
        "created_at": datetime.now(UTC).isoformat(),
    }
    path, checksum = save_artifacts(root, loaded.model.model, version, models, _finite(meta))
    return TrainOutcome(
        loaded.model.model, version, spec, wf, evaluation, predictions, models, path, checksum, meta
    )


def _finite(value: Any) -> Any:
    """NaN and infinities (an undefined ROC AUC, say) become null: JSON has no NaN, a save never fails."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
