"""Retraining with promotion by margin: a freshly trained candidate replaces the production model only
when its balanced accuracy on the most recent out-of-sample window beats the production model's on the
same candles by ``retrain.margin`` (and the model file says ``promote: auto``); otherwise it stays a
candidate for a person to promote. Both scores are out of sample: the candidate's comes from its
walk-forward (a model trained before that window), the production model's from the rows after its
own training data only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ml.artifacts import SavedModel
from engine.ml.labels import UNKNOWN
from engine.ml.metrics import classification_metrics
from engine.ml.train import TrainOutcome
from engine.ml.walkforward import PairData

__all__ = ["Decision", "decide", "production_score"]


@dataclass(frozen=True)
class Decision:
    promote: bool
    candidate_score: float
    production_score: float | None
    reason: str


def production_score(
    saved: SavedModel, data_end: int, pairs: list[PairData], start: int, end: int
) -> tuple[float | None, int]:
    """Balanced accuracy of a saved model on the labelled rows of [start, end) after ``data_end``."""
    ys, probas = [], []
    for data in pairs:
        fitted = saved.for_pair(data.pair)
        rows = np.flatnonzero(
            (data.times >= max(start, data_end + 1)) & (data.times < end) & (data.y != UNKNOWN)
        )
        if fitted is None or len(rows) == 0:
            continue
        ys.append(data.y[rows])
        probas.append(fitted.predict_proba(data.x[rows]))
    if not ys:
        return None, 0
    y = np.concatenate(ys)
    return classification_metrics(y, np.concatenate(probas)).balanced_accuracy, len(y)


def decide(
    outcome: TrainOutcome,
    production: tuple[SavedModel, int] | None,
    pairs: list[PairData],
    *,
    auto: bool,
    margin: float,
) -> Decision:
    """Whether the candidate in ``outcome`` should replace ``production`` (its files and data end)."""
    last = outcome.walkforward.windows[-1]
    window_scores = {w: s for w, s, _ in outcome.evaluation.per_window}
    candidate = window_scores.get(last.index + 1, float("nan"))
    if production is None:
        return Decision(
            auto, candidate, None, "no production model yet" + ("" if auto else "; promote: manual")
        )
    score, rows = production_score(production[0], production[1], pairs, last.test_start, last.test_end)
    if score is None:
        return Decision(
            False,
            candidate,
            None,
            "the production model has no out-of-sample rows in the latest window to compare on",
        )
    better = candidate >= score + margin
    verdict = (
        f"candidate {candidate:.3f} vs production {score:.3f} on the latest window ({rows} rows), margin {margin:.3f}: "
        + ("better" if better else "not better by the margin")
    )
    if better and not auto:
        verdict += "; promote: manual, left as a candidate"
    return Decision(better and auto, candidate, score, verdict)
