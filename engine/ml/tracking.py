"""The production model against reality: live predictions scored as their labels realise.

Pure functions. A live prediction describes one candle (its class probabilities, known at the
candle's close); its label is the model's own label of that candle (direction over the horizon, or the
triple barrier), known ``horizon`` candles later. Until then it is not scored. The score covers the
last ``window`` labelled predictions: a rolling accuracy, balanced accuracy, log loss and calibration
(how far the model's confidence is from how often it is right)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.ml.labels import UNKNOWN
from engine.ml.metrics import classification_metrics

__all__ = ["MIN_JUDGED", "LivePerformance", "calibration_error", "live_performance", "realised_labels"]

MIN_JUDGED = 100  # fewer labelled predictions than this: too noisy to call the model degraded


@dataclass(frozen=True)
class LivePerformance:
    predictions: int  # stored live predictions
    realised: int  # those whose label is known
    scored: int  # the last ``window`` of those
    accuracy: float
    balanced_accuracy: float
    log_loss: float
    mean_confidence: float  # the mean probability of the predicted class
    calibration_error: float  # expected calibration error of that probability (0: calibrated)

    def degraded(self, floor: float | None) -> str | None:
        """Why the model counts as degraded against ``floor`` (balanced accuracy), or None."""
        if floor is None or self.scored < MIN_JUDGED or not math.isfinite(self.balanced_accuracy):
            return None
        if self.balanced_accuracy >= floor:
            return None
        return (
            f"live balanced accuracy {self.balanced_accuracy:.3f} over the last {self.scored} labelled "
            f"predictions is below {floor:.3f}"
        )


def realised_labels(open_times: np.ndarray, candle_times: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The label of each predicted candle (by open time, ns) from a pair's candle times and labels;
    UNKNOWN where the candle is missing or its label has not realised yet."""
    out = np.full(len(open_times), UNKNOWN, dtype=np.int64)
    if len(candle_times) == 0 or len(open_times) == 0:
        return out
    at = np.clip(np.searchsorted(candle_times, open_times), 0, len(candle_times) - 1)
    found = candle_times[at] == open_times
    out[found] = labels[at[found]]
    return out


def calibration_error(proba: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-class probability: sum over confidence bins of the bin's
    share times |mean confidence - share of correct predictions|."""
    if len(labels) == 0:
        return float("nan")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == labels).astype(np.float64)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in np.unique(which):
        rows = which == b
        total += rows.mean() * abs(confidence[rows].mean() - correct[rows].mean())
    return float(total)


def live_performance(proba: np.ndarray, labels: np.ndarray, window: int) -> LivePerformance:
    """Scores of the last ``window`` labelled predictions; rows are in time order, ``labels`` UNKNOWN
    where not realised (those rows are skipped, not counted as wrong)."""
    realised = np.flatnonzero((labels != UNKNOWN) & np.isfinite(proba).all(axis=1))
    known = realised[-window:]
    if len(known) == 0:
        nan = float("nan")
        return LivePerformance(len(labels), 0, 0, nan, nan, nan, nan, nan)
    p, y = proba[known].astype(np.float64), labels[known]
    metrics = classification_metrics(y, p)
    return LivePerformance(
        predictions=len(labels),
        realised=len(realised),
        scored=len(known),
        accuracy=metrics.accuracy,
        balanced_accuracy=metrics.balanced_accuracy,
        log_loss=metrics.log_loss,
        mean_confidence=float(p.max(axis=1).mean()),
        calibration_error=calibration_error(p, y),
    )
