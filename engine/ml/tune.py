"""``engine ml tune``: search the learner's parameters and the model file's inputs (feature windows,
thresholds: every input with a ``range``, and every true/false input) with Optuna, scoring each trial
by its purged walk-forward out-of-sample balanced accuracy.

A trial with other input values compiles the features again and computes them through the feature
store, where each variant is a key of its own: a value tried before is read back, not recomputed.

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

from dsl import DiagnosticError
from engine.backtest._search_space import SearchParam, search_param
from engine.config import LoadedModel
from engine.config._model import LightGBMLearner, LogisticLearner
from engine.config._model_load import model_variant
from engine.ml.errors import MLError
from engine.ml.feature_store import FeatureStore
from engine.ml.pipeline import evaluate, pair_data, walkforward
from engine.ml.walkforward import PairData
from engine.store.study_storage import StudyStorageError, open_shared_study

__all__ = ["INPUT_PREFIX", "input_space", "suggest_learner", "tune"]

INPUT_PREFIX = "inputs."  # trial parameter names of inputs: never mistaken for a learner's


def input_space(loaded: LoadedModel) -> list[SearchParam]:
    """The inputs a tuning searches, as ``engine optimize`` searches a strategy's: every input with a
    range (on its step grid) and every true/false input; named ``inputs.<name>`` in the trials."""
    params = (search_param(INPUT_PREFIX + name, spec) for name, spec in loaded.model.inputs.items())
    return [param for param in params if param is not None]


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
    progress: Callable[[int, float, dict[str, Any]], None] | None = None,
    store: FeatureStore | None = None,
    source: str = "",
) -> Any:
    """Run ``trials`` trials (added to the shared study when ``storage`` is given); returns the study.
    ``store``/``source``: where the features of other input values are kept (see pipeline.pair_data)."""
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

    space = input_space(loaded)

    def objective(trial: Any) -> float:
        values = {p.name[len(INPUT_PREFIX) :]: p.suggest(trial) for p in space}
        learner = suggest_learner(trial, loaded.model.learner)
        variant, rows = _variant(loaded, pairs, values, store, source)
        spec = variant.model.model_copy(update={"learner": learner})
        candidate = type(loaded)(loaded.path, loaded.file, loaded.text, spec, variant.plan)
        score = evaluate(
            walkforward(candidate, rows, start=start, end=end, workers=workers)
        ).model.balanced_accuracy
        if progress:
            progress(trial.number, score, trial.params)
        return score if math.isfinite(score) else 0.0

    study.optimize(objective, n_trials=trials, catch=(MLError,))
    return study


def _variant(
    loaded: LoadedModel,
    pairs: list[PairData],
    values: dict[str, Any],
    store: FeatureStore | None,
    source: str,
) -> tuple[LoadedModel, list[PairData]]:
    """The model with the trial's input values and its pairs' rows (the given ones when no input is
    searched: the features are those already computed)."""
    if not values:
        return loaded, pairs
    try:
        variant = model_variant(loaded, values)
    except DiagnosticError as exc:  # e.g. a window value a function refuses
        raise MLError("ML010", f"inputs {values}: {exc.diagnostics[0].message}") from None
    rows = []
    for data in pairs:
        if data.candles is None:
            raise MLError("ML010", f"{data.pair}: tuning inputs needs the candles the rows came from")
        rows.append(pair_data(variant, data.pair, data.candles, store=store, source=source))
    return variant, rows
