"""The learners behind a model file: LightGBM and a multinomial logistic regression baseline.

A fitted model is data, never a pickle: LightGBM's own text format, or the logistic coefficients and
standardisation as JSON, plus the classes and feature columns it was trained on. Seeds are fixed and
LightGBM runs in deterministic mode, so the same rows give the same model.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.config._model import LightGBMLearner, LogisticLearner
from engine.ml.labels import CLASSES

__all__ = ["Fitted", "fit", "lightgbm", "lightgbm_params"]


def lightgbm() -> Any:
    """The lightgbm module, imported without scikit-learn when that is not loaded yet.

    lightgbm imports scikit-learn (seconds of start-up) only for its sklearn-style wrappers, which
    we do not use: hiding it during the import keeps a training process's start-up short. A later
    ``import sklearn`` (the logistic learner) still works."""
    if "lightgbm" in sys.modules:
        return sys.modules["lightgbm"]
    hide = "sklearn" not in sys.modules
    if hide:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # makes `import sklearn` fail
    try:
        import lightgbm as lgb
    finally:
        if hide:
            del sys.modules["sklearn"]
    return lgb


Learner = LightGBMLearner | LogisticLearner


@dataclass
class Fitted:
    """A trained model. ``classes``: the label classes seen in training (ascending), ``columns``: the
    indexes of the feature columns it uses; ``body``: LightGBM model text or logistic JSON."""

    kind: str
    classes: tuple[int, ...]
    columns: tuple[int, ...]
    _body: str | None = field(default=None, repr=False)
    _impl: Any = field(default=None, repr=False, compare=False)

    @property
    def body(self) -> str:
        """The model as text (written lazily: a 200-tree model is ~0.5 MB and most window models are
        only used to predict their window, never saved)."""
        if self._body is None:
            self._body = self._impl.model_to_string()
        return self._body

    def detached(self) -> Fitted:
        """A copy holding only the text (safe to send to another process or to store)."""
        return Fitted(self.kind, self.classes, self.columns, self.body)

    def importance(self) -> list[float]:
        """Per used column: total split gain (LightGBM) or sum of absolute coefficients (logistic)."""
        if self.kind == "lightgbm":
            return [float(g) for g in self._booster().feature_importance("gain")]
        return [float(v) for v in np.abs(self._params()["coef"]).sum(axis=0)]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``(len(x), 3)`` float32 probabilities of SELL, HOLD, BUY (0 for classes never trained on)."""
        x = x[:, list(self.columns)]
        if self.kind == "lightgbm":
            raw = np.asarray(self._booster().predict(x, num_threads=1), dtype=np.float64)
        else:
            raw = _logistic_predict(self._params(), x)
        out = np.zeros((len(x), len(CLASSES)), dtype=np.float32)
        if raw.ndim == 1:  # binary: probability of the higher class
            out[:, self.classes[0]] = 1.0 - raw
            out[:, self.classes[1]] = raw
        else:
            out[:, list(self.classes)] = raw
        return out

    def _booster(self) -> Any:
        if self._impl is None:
            self._impl = lightgbm().Booster(model_str=self.body)
        return self._impl

    def _params(self) -> dict[str, np.ndarray]:
        if self._impl is None:
            data = json.loads(self.body)
            self._impl = {k: np.asarray(v, dtype=np.float64) for k, v in data.items()}
        return self._impl


def lightgbm_params(spec: LightGBMLearner, seed: int, classes: int, threads: int = 1) -> dict[str, Any]:
    params: dict[str, Any] = {
        "objective": "binary" if classes == 2 else "multiclass",
        "learning_rate": spec.learning_rate,
        "num_leaves": spec.leaves,
        "min_data_in_leaf": spec.min_child_samples,
        "feature_fraction": spec.feature_fraction,
        "lambda_l2": spec.l2,
        "max_bin": spec.max_bin,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": threads,
        "verbose": -1,
    }
    if classes > 2:
        params["num_class"] = classes
    if spec.bagging_fraction < 1:
        params.update(bagging_fraction=spec.bagging_fraction, bagging_freq=1)
    return params


def fit(
    spec: Learner,
    x: np.ndarray | list[np.ndarray],
    y: np.ndarray,
    columns: np.ndarray,
    seed: int,
    threads: int = 1,
) -> Fitted:
    """Train on rows ``x[:, columns]`` (one matrix, or row blocks of one in ``y``'s order) with labels
    ``y`` (at least two classes; checked by the caller)."""
    classes = tuple(int(c) for c in np.unique(y))
    codes = np.searchsorted(np.asarray(classes), y)
    blocks = x if isinstance(x, list) else [x]
    width = blocks[0].shape[1]
    # Every column used (the usual case): no copy of the matrix.
    every = len(columns) == width and bool((np.asarray(columns) == np.arange(width)).all())
    blocks = [np.ascontiguousarray(b if every else b[:, columns]) for b in blocks if len(b)]
    if isinstance(spec, LightGBMLearner):
        lgb = lightgbm()
        params = lightgbm_params(spec, seed, len(classes), threads)
        # keep_training_booster: lgb.train otherwise round-trips the finished model through its text
        # form to drop the training data (~15% of a 200-tree fit on a few thousand rows); the text is
        # written only when the model is saved (Fitted.body).
        # The Dataset gets the thread count too: without it, binning starts an OpenMP team of every core
        # whose idle thread then spins after each parallel region of the fit, taking ~20% of a core
        # from the other training processes.
        data = lgb.Dataset(
            blocks[0] if len(blocks) == 1 else blocks,
            codes,
            params={"max_bin": spec.max_bin, "verbose": -1, "num_threads": threads},
            free_raw_data=True,
        )
        booster = lgb.train(params, data, num_boost_round=spec.trees, keep_training_booster=True)
        return Fitted("lightgbm", classes, tuple(int(c) for c in columns), None, booster)
    xs = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return _fit_logistic(spec, xs, codes, classes, columns, seed)


def _fit_logistic(
    spec: LogisticLearner,
    x: np.ndarray,
    codes: np.ndarray,
    classes: tuple[int, ...],
    columns: np.ndarray,
    seed: int,
) -> Fitted:
    from sklearn.linear_model import LogisticRegression

    x = x.astype(np.float64)
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale[~(scale > 0)] = 1.0
    z = np.nan_to_num((x - mean) / scale)
    model = LogisticRegression(C=spec.c, max_iter=spec.max_iter, random_state=seed)
    model.fit(z, codes)
    params = {"mean": mean, "scale": scale, "coef": model.coef_, "intercept": model.intercept_}
    body = json.dumps({k: v.tolist() for k, v in params.items()})
    return Fitted("logistic", classes, tuple(int(c) for c in columns), body, params)


def _logistic_predict(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    z = np.nan_to_num((x.astype(np.float64) - params["mean"]) / params["scale"])
    logits = z @ params["coef"].T + params["intercept"]
    if logits.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-logits[:, 0]))
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)
