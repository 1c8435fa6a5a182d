"""Local machine learning: models declared in ``models/*.yaml``, trained walk-forward without leakage.

    loaded = engine.config.load_model("models/btc_direction.yaml")
    pairs = load_pairs(loaded, DataDirectory("../shared/data/binance"), store=FeatureStore())  # features kept
    wf = walkforward(loaded, pairs)                   # purged, embargoed windows; fits in worker processes
    print(evaluate(wf).model.balanced_accuracy)       # out of sample, beside evaluate(wf).baseline
    outcome = train_and_save(loaded, pairs, default_models_root())   # newest model + meta.json

Rules read predictions as ``ml.<model>.p_buy`` etc. (engine.ml.namespace). See docs/ml.md.
"""

import importlib
from typing import Any

# name -> module; imported on first use, so that importing engine.ml.namespace (every rule registry
# does) does not load the training stack.
_EXPORTS = {
    "CLASSES": "labels",
    "Evaluation": "pipeline",
    "FeatureStore": "feature_store",
    "MLError": "errors",
    "Metrics": "metrics",
    "SavedModel": "artifacts",
    "TrainOutcome": "train",
    "Window": "windows",
    "classification_metrics": "metrics",
    "default_features_root": "feature_store",
    "default_models_root": "artifacts",
    "direction_labels": "labels",
    "evaluate": "pipeline",
    "load_artifacts": "artifacts",
    "load_pairs": "pipeline",
    "model_version": "identity",
    "pair_data": "pipeline",
    "plan_windows": "windows",
    "predictions_frame": "pipeline",
    "purge_mask": "windows",
    "spec_hash": "identity",
    "train_and_save": "train",
    "triple_barrier_labels": "labels",
    "walkforward": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine.ml' has no attribute {name!r}")
    return getattr(importlib.import_module(f"engine.ml.{_EXPORTS[name]}"), name)
