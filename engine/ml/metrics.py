"""Out-of-sample metrics in plain numpy: accuracy, balanced accuracy, per-class precision/recall/F1,
log loss, the confusion matrix, ROC AUC (BUY against the rest), and the same for a naive baseline;
plus the after-fee result of a simple long-only policy on the predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ml.labels import BUY, CLASSES

__all__ = ["ClassMetrics", "Metrics", "PolicyResult", "classification_metrics", "policy_result", "roc_auc"]


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Metrics:
    rows: int
    accuracy: float
    balanced_accuracy: float
    log_loss: float
    roc_auc: float  # BUY against the rest; NaN when only one side occurs
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]  # rows: true class, columns: predicted (sell, hold, buy)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "log_loss": self.log_loss,
            "roc_auc": self.roc_auc,
            "per_class": {k: vars(v) for k, v in self.per_class.items()},
            "confusion": self.confusion,
        }


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by ranks (ties share their average rank)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=np.float64)
    sorted_scores = score[order]
    # Average ranks over ties.
    starts = np.flatnonzero(np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1])))
    ends = np.concatenate((starts[1:], [len(score)]))
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> Metrics:
    """Metrics of probabilities ``proba`` (rows, 3) against true classes ``y`` (rows with a label only)."""
    k = len(CLASSES)
    predicted = proba.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y.astype(np.int64), predicted), 1)
    support = confusion.sum(axis=1)
    chosen = confusion.sum(axis=0)
    hits = np.diag(confusion)
    per_class: dict[str, ClassMetrics] = {}
    recalls = []
    for c, name in enumerate(CLASSES):
        if support[c] == 0 and chosen[c] == 0:
            continue
        precision = hits[c] / chosen[c] if chosen[c] else 0.0
        recall = hits[c] / support[c] if support[c] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = ClassMetrics(float(precision), float(recall), float(f1), int(support[c]))
        if support[c]:
            recalls.append(recall)
    rows = len(y)
    eps = 1e-15
    picked = np.clip(proba[np.arange(rows), y.astype(np.int64)].astype(np.float64), eps, 1.0)
    return Metrics(
        rows=rows,
        accuracy=float(hits.sum() / rows) if rows else float("nan"),
        balanced_accuracy=float(np.mean(recalls)) if recalls else float("nan"),
        log_loss=float(-np.log(picked).mean()) if rows else float("nan"),
        roc_auc=roc_auc(y == BUY, proba[:, BUY].astype(np.float64)),
        per_class=per_class,
        confusion=confusion.tolist(),
    )


@dataclass(frozen=True)
class PolicyResult:
    """Long while the model predicts BUY, flat otherwise, paying ``fee`` per side; beside buy and hold."""

    trades: int
    total_return: float  # sum over pairs of the compounded return, averaged over pairs
    buy_and_hold: float
    fee: float


def policy_result(close: list[np.ndarray], signal: list[np.ndarray], fee: float = 0.001) -> PolicyResult:
    """``close[p]`` and ``signal[p]`` (True = hold long over the next candle) per pair, same length each."""
    totals, holds, trades = [], [], 0
    for c, s in zip(close, signal, strict=True):
        if len(c) < 2:
            continue
        ret = c[1:] / c[:-1] - 1.0
        position = s[:-1].astype(np.float64)
        changes = np.abs(np.diff(np.concatenate(([0.0], position, [0.0]))))
        trades += int(changes.sum() // 2)
        growth = np.prod(1.0 + position * ret) * (1.0 - fee) ** changes.sum()
        totals.append(growth - 1.0)
        holds.append(c[-1] / c[0] - 1.0)
    return PolicyResult(
        trades,
        float(np.mean(totals)) if totals else 0.0,
        float(np.mean(holds)) if holds else 0.0,
        fee,
    )
