"""Text for people: the out-of-sample metrics beside the naive baseline, and predictions export."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from engine.ml.labels import CLASSES
from engine.ml.metrics import Metrics
from engine.ml.pipeline import Evaluation

__all__ = ["export_predictions", "format_evaluation"]


def _f(value: float, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _confusion(metrics: Metrics) -> list[str]:
    present = [
        i for i, row in enumerate(metrics.confusion) if sum(row) or sum(r[i] for r in metrics.confusion)
    ]
    head = "  true \\ predicted " + "".join(f"{CLASSES[i]:>8}" for i in present)
    rows = [
        f"  {CLASSES[i]:>17} " + "".join(f"{metrics.confusion[i][j]:>8}" for j in present) for i in present
    ]
    return [head, *rows]


def format_evaluation(evaluation: Evaluation, *, windows: int, models: int) -> str:
    """The metrics table printed by ``engine ml train`` and ``engine ml walkforward``."""
    m, b, p = evaluation.model, evaluation.baseline, evaluation.policy
    lines = [
        f"out of sample: {m.rows:,} labelled predictions, {windows} windows, {models} models",
        f"{'':24}{'model':>10}{'baseline':>10}",
        f"{'accuracy':24}{_f(m.accuracy):>10}{_f(b.accuracy):>10}",
        f"{'balanced accuracy':24}{_f(m.balanced_accuracy):>10}{_f(b.balanced_accuracy):>10}",
        f"{'log loss':24}{_f(m.log_loss):>10}{_f(b.log_loss):>10}",
        f"{'ROC AUC (buy vs rest)':24}{_f(m.roc_auc):>10}{_f(b.roc_auc):>10}",
        "per class (model):      precision   recall       f1  support",
    ]
    for name, c in m.per_class.items():
        lines.append(f"  {name:22}{_f(c.precision):>9}{_f(c.recall):>9}{_f(c.f1):>9}{c.support:>9,}")
    lines.append("confusion matrix (model):")
    lines.extend(_confusion(m))
    lines.append(
        f"policy (long while the model says buy, {p.fee:.2%} fee per side): "
        f"{p.total_return:+.2%} per pair on average over {p.trades:,} trades; buy and hold {p.buy_and_hold:+.2%}"
    )
    worst = min(evaluation.per_window, key=lambda w: w[1], default=None)
    best = max(evaluation.per_window, key=lambda w: w[1], default=None)
    if worst and best:
        lines.append(
            f"balanced accuracy per window: {_f(worst[1])} (window {worst[0]}) to {_f(best[1])} (window {best[0]})"
        )
    return "\n".join(lines)


def export_predictions(frame: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by the file's extension; times in ISO 8601 UTC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.6g")
    else:
        raise ValueError(f"cannot export to '{path.name}': use a .csv or .parquet file name")
