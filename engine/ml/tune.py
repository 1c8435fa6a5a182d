"""``engine ml tune``: search the learner's parameters with Optuna, scoring each trial by its purged
walk-forward out-of-sample balanced accuracy.

With ``storage`` (an Optuna RDB URL: ``postgresql://...``, ``sqlite:///...``) several processes, on
one machine or many, run trials of one shared study: start the same command in each. Trials are
seeded per process, so a single process is reproducible; a shared study is not bit-for-bit (which
trial finishes first is up to the machines)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from engine.config import LoadedModel
from engine.config._model import LightGBMLearner, LogisticLearner
from engine.ml.errors import MLError
from engine.ml.pipeline import evaluate, walkforward
from engine.ml.walkforward import PairData

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
    study = None
    for attempt in range(5):
        try:
            study = optuna.create_study(
                direction="maximize", study_name=name, storage=storage, sampler=sampler, load_if_exists=True
            )
            break
        except Exception as exc:  # a bad URL, an unreachable server: one clear line
            # Workers starting together race to create the schema and the study: the loser retries.
            racing = type(exc).__name__ in ("IntegrityError", "OperationalError", "DuplicatedStudyError")
            if attempt == 4 or storage is None or not racing:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise MLError("ML009", f"cannot open the study '{name}' in {storage}: {message}") from None
            time.sleep(0.5 * (attempt + 1))
    assert study is not None

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
