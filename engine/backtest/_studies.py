"""The per-fold Optuna studies of `engine optimize`, in this process or in worker processes.

One job: each fold's study runs here, in memory, with a TPE sampler seeded from ``--seed`` and the
fold number, so a run is reproducible. Several jobs: worker processes (forked where the platform
allows, so they inherit the loaded candles and the compiled kernel) run chunks of trials against each
fold's study, which they share through an Optuna journal file in a temporary folder; TPE then sees
every finished trial of all workers (with the "constant liar" for the running ones), but the order in
which trials finish is up to the scheduler, so parallel results are not bit-for-bit repeatable.

With ``settings.storage`` (``--storage URL``) the fold studies live in that database instead, named
``<study>-fold-<k>``, so workers on other machines running the same command add trials to them; each
fold's best is then chosen among every worker's trials. A worker whose bot, data range, windows or
search space differ is refused (engine/store/study_storage.py).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsl.errors import Diagnostic, DiagnosticError
from engine.backtest.optimize import PENALTY, Evaluator, OptimizeSettings, SearchParam, objective_value
from engine.backtest.walkforward import Window
from engine.store.study_storage import close_study

__all__ = ["FoldBest", "StudyJob", "StudyRun", "make_objective", "run_studies"]


@dataclass(frozen=True)
class StudyJob:
    """Everything a worker needs to evaluate trials (the bot is re-read from its file there)."""

    bot_path: Path
    profile: str | None
    candles: dict[str, pd.DataFrame]
    space: list[SearchParam]
    windows: list[Window]
    settings: OptimizeSettings


@dataclass(frozen=True)
class FoldBest:
    params: dict[str, Any]
    value: float
    trials: int
    rejected: int


@dataclass(frozen=True)
class StudyRun:
    best: list[FoldBest]
    elapsed: float  # seconds, from the first trial (or the pool start) to the last
    jobs: int


def _quiet() -> None:
    import optuna

    # Trial failures are re-raised to us anyway; Optuna's own warning would repeat them as a traceback.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _seed(seed: int, fold: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, fold, chunk]).generate_state(1)[0])


def make_objective(
    evaluator: Evaluator,
    space: list[SearchParam],
    window: Window,
    settings: OptimizeSettings,
    on_trial: Callable[[], None] | None = None,
) -> Callable[[Any], float]:
    """An Optuna objective: the trial's params run on the window's train part."""

    def objective(trial: Any) -> float:
        values = {p.name: p.suggest(trial) for p in space}
        trial.set_user_attr("values", values)
        try:
            result = evaluator.run(values, *window.train)
        except DiagnosticError as error:  # a combination the strategy cannot compile
            trial.set_user_attr("error", "; ".join(d.message for d in error.diagnostics))
            value = PENALTY
        else:
            value = objective_value(result.metrics, settings.metric, settings.min_trades)
        if on_trial is not None:
            on_trial()
        return value

    return objective


def _summarise(study: Any) -> FoldBest:
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial
    rejected = sum(1 for t in done if t.value is not None and t.value < PENALTY / 2)
    return FoldBest(dict(best.user_attrs["values"]), float(best.value), len(done), rejected)


def _serial(job: StudyJob, evaluator: Evaluator, progress: Callable[[int, int], None] | None) -> StudyRun:
    import optuna

    settings = job.settings
    total = settings.trials * len(job.windows)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    started = time.perf_counter()
    best = []
    for k, window in enumerate(job.windows):
        if settings.storage:
            sampler = optuna.samplers.TPESampler(
                seed=_seed(settings.seed, k, os.getpid()), constant_liar=True
            )
            study = _shared_fold(job, k, sampler)
        else:
            sampler = optuna.samplers.TPESampler(seed=_seed(settings.seed, k, 0))
            study = optuna.create_study(direction="maximize", sampler=sampler, study_name=f"fold-{k + 1}")
        study.optimize(make_objective(evaluator, job.space, window, settings, tick), n_trials=settings.trials)
        best.append(_summarise(study))
    return StudyRun(best, time.perf_counter() - started, 1)


# ----- worker processes ----------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(job: StudyJob, counter: Any) -> None:
    from engine.backtest.from_config import trading_params
    from engine.config import load_bot

    _quiet()
    # Ctrl-C reaches the whole process group: the parent alone handles it, and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bot = load_bot(job.bot_path, profile=job.profile)
    _WORKER.update(job=job, counter=counter, evaluator=Evaluator(bot, job.candles, trading_params(bot)))


def _count() -> None:
    counter = _WORKER["counter"]
    with counter.get_lock():
        counter.value += 1


def _storage(path: Path) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def study_prefix(job: StudyJob) -> str:
    return job.settings.study or f"optimize-{job.bot_path.stem}"


def _setup(job: StudyJob) -> dict[str, Any]:
    """What every worker of a shared study must agree on."""
    s = job.settings
    return {
        "space": [repr(p) for p in job.space],
        "windows": [repr(w) for w in job.windows],
        "candles": {p: (str(f.index[0]), str(f.index[-1]), len(f)) for p, f in job.candles.items() if len(f)},
        "objective": (s.metric, s.min_trades),
    }


def _shared_fold(job: StudyJob, fold: int, sampler: Any) -> Any:
    from engine.store.study_storage import StudyStorageError, open_shared_study

    assert job.settings.storage is not None
    try:
        return open_shared_study(
            job.settings.storage, f"{study_prefix(job)}-fold-{fold + 1}", sampler=sampler, setup=_setup(job)
        )
    except StudyStorageError as error:
        raise DiagnosticError([Diagnostic("OPT002", str(error))]) from None


def _run_chunk(fold: int, journal: str, trials: int, seed: int) -> int:
    import optuna

    job: StudyJob = _WORKER["job"]
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if job.settings.storage:
        study = _shared_fold(job, fold, sampler)
    else:
        study = optuna.load_study(
            study_name=f"fold-{fold + 1}", storage=_storage(Path(journal)), sampler=sampler
        )
    objective = make_objective(_WORKER["evaluator"], job.space, job.windows[fold], job.settings, _count)
    study.optimize(objective, n_trials=trials)
    return trials


def _chunks(trials: int, jobs: int) -> list[int]:
    """Trials per task: small enough to keep every worker busy and the progress bar moving."""
    size = max(1, min(25, math.ceil(trials / (jobs * 3))))
    full, rest = divmod(trials, size)
    return [size] * full + ([rest] if rest else [])


def _parallel(job: StudyJob, jobs: int, progress: Callable[[int, int], None] | None) -> StudyRun:
    import optuna

    settings = job.settings
    total = settings.trials * len(job.windows)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    counter = context.Value("i", 0)
    # Workers on other machines share the studies: their samplers must not repeat ours.
    salt = os.getpid() * 1000 if settings.storage else 0
    with tempfile.TemporaryDirectory(prefix="engine-optimize-") as folder:
        journals = [Path(folder) / f"fold-{k + 1}.journal" for k in range(len(job.windows))]
        for k, path in enumerate(journals):
            if settings.storage:  # created (and checked) here; no connection is left open for the fork
                close_study(_shared_fold(job, k, optuna.samplers.RandomSampler()))
            else:
                optuna.create_study(direction="maximize", study_name=f"fold-{k + 1}", storage=_storage(path))
        started = time.perf_counter()
        with (
            ProcessPoolExecutor(
                max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(job, counter)
            ) as pool,
            warnings.catch_warnings(),
        ):
            # The workers fork at the first submit. No Python thread runs then (the progress bar
            # starts later); the other OS threads are idle native pools (BLAS, Arrow) that
            # re-initialise in the child through their own fork handlers, so Python's generic
            # "multi-threaded fork" warning does not apply here.
            warnings.filterwarnings(
                "ignore", message=".*multi-threaded, use of fork", category=DeprecationWarning
            )
            pending = {
                pool.submit(_run_chunk, k, str(path), size, _seed(settings.seed, k, i + 1 + salt))
                for k, path in enumerate(journals)
                for i, size in enumerate(_chunks(settings.trials, jobs))
            }
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()  # a worker's exception is a bug: let it surface
                    if progress is not None:
                        progress(min(counter.value, total), total)
            except BaseException:
                # Interrupted (or a worker failed): drop the queued chunks; running ones finish.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        elapsed = time.perf_counter() - started
        best = [
            _summarise(
                _shared_fold(job, k, optuna.samplers.RandomSampler())
                if settings.storage
                else optuna.load_study(study_name=f"fold-{k + 1}", storage=_storage(path))
            )
            for k, path in enumerate(journals)
        ]
    return StudyRun(best, elapsed, jobs)


def run_studies(
    job: StudyJob, evaluator: Evaluator, *, progress: Callable[[int, int], None] | None = None
) -> StudyRun:
    """Run ``settings.trials`` trials per fold; ``progress(done, total)`` is called as trials finish."""
    _quiet()
    jobs = min(job.settings.jobs, job.settings.trials * len(job.windows))
    if jobs <= 1:
        return _serial(job, evaluator, progress)
    return _parallel(job, jobs, progress)
