"""``engine ml tune``: search the learner's parameters with Optuna, scoring each trial by its purged
walk-forward out-of-sample balanced accuracy.

With ``storage`` (an Optuna RDB URL: ``postgresql://...``, ``sqlite:///...``; see
engine/store/study_storage.py) several processes, on one machine or many, run trials of one shared
study: start the same command in each. Trials are
seeded per process, so a single process is reproducible; a shared study is not bit-for-bit (which
trial finishes first is up to the machines)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from engine.config import LoadedModel
from engine.config._model import LightGBMLearner, LogisticLearner
from engine.ml.errors import MLError
from engine.ml.pipeline import evaluate, walkforward
from engine.ml.walkforward import PairData
from engine.store.study_storage import StudyStorageError, open_shared_study

__all__ = ["suggest_learner", "tune"]


def suggest_learner(
    trial: Any, learner: LightGBMLearner | LogisticLearner
) -> LightGBMLearner | LogisticLearner:
    """The trial's learner: the model file's, with the searched parameters replaced."""
    if isinstance(learner, LogisticLearner):
        return learner.model_copy(update={"c": trial.suggest_float("c", 1e-3, 10.0, log=True)})
    return learner.model_copy(
        update={
            "trees": trial.suggest_int("trees", 50, 400, step=50),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "leaves": trial.suggest_int("leaves", 7, 63, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "l2": trial.suggest_float("l2", 1e-3, 10.0, log=True),
        }
    )


def tune(
    loaded: LoadedModel,
    pairs: list[PairData],
    trials: int,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    start: Any = None,
    end: Any = None,
    workers: int | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> Any:
    """Run ``trials`` trials (added to the shared study when ``storage`` is given); returns the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = loaded.model.seed if seed is None else seed
    # Each process its own sampler seed: two workers of a shared study must not propose the same trials.
    sampler = optuna.samplers.TPESampler(seed=base + (os.getpid() if storage else 0), constant_liar=True)
    name = study_name or f"ml-{loaded.model.model}"
    if storage is None:
        study = optuna.create_study(direction="maximize", study_name=name, sampler=sampler)
    else:
        # Every worker of a shared study must search the same thing: the model file (features, label,
        # windows, learner type), the pairs, their data and the evaluated range.
        setup = {
            "model": loaded.model.model_dump(mode="json", exclude={"learner", "retrain"}),
            "learner": loaded.model.learner.type,
            "data": [
                (p.pair, int(p.times[0]), int(p.times[-1]), len(p.times)) for p in pairs if len(p.times)
            ],
            "range": (str(start), str(end)),
        }
        try:
            study = open_shared_study(storage, name, sampler=sampler, setup=setup)
        except StudyStorageError as exc:
            raise MLError("ML009", str(exc)) from None

    def objective(trial: Any) -> float:
        learner = suggest_learner(trial, loaded.model.learner)
        spec = loaded.model.model_copy(update={"learner": learner})
        candidate = type(loaded)(loaded.path, loaded.file, loaded.text, spec, loaded.plan)
        score = evaluate(
            walkforward(candidate, pairs, start=start, end=end, workers=workers)
        ).model.balanced_accuracy
        if progress:
            progress(trial.number, score)
        return score if math.isfinite(score) else 0.0

    study.optimize(objective, n_trials=trials, catch=(MLError,))
    return study
