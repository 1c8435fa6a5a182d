"""`engine optimize --storage`: two worker processes share each fold's study, on an SQLite file (always)
and on PostgreSQL (when ENGINE_TEST_POSTGRES_URL names a server: .ci/postgres starts one)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import optuna
import pytest

from engine.store.study_storage import optuna_url
from tests.engine.backtest.test_optimize import make_bot

POSTGRES_ENV = "ENGINE_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'studies.db'}"
        return
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} (.ci/run starts a server)")
    from tests.engine.store.conftest import create_postgres_schema, drop_postgres_schema

    url = asyncio.run(create_postgres_schema())  # the engine's own async URL: translated for Optuna
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_schema(url))


def _command(bot, shared_data, storage, folds=2):
    return [
        sys.executable, "-c", "from engine.cli import main; main()", "optimize", str(bot),
        "--data", str(shared_data), "--trials", "4", "--folds", str(folds), "--jobs", "1",
        "--only", "fast,slow", "--min-trades", "3", "--storage", storage, "--study", "shared",
    ]  # fmt: skip


@pytest.mark.slow
def test_two_worker_processes_share_each_fold_study(tmp_path, shared_data, storage):
    bot = make_bot(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "COLUMNS": "200"}
    workers = [
        subprocess.Popen(
            _command(bot, shared_data, storage),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    for fold in (1, 2):
        study = optuna.load_study(study_name=f"shared-fold-{fold}", storage=optuna_url(storage))
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(done) == 8  # 4 trials from each worker
        assert len({(t.params["fast"], t.params["slow"]) for t in done}) >= 5  # they explored apart
    assert all("shared studies shared-fold-1..2 in" in out for out in outputs)
    assert all("engine:engine@" not in out for out in outputs)  # the password is never printed

    # A worker with other windows is refused before it adds incomparable trials.
    other = subprocess.run(
        _command(bot, shared_data, storage, folds=3), env=env, capture_output=True, text=True
    )
    assert other.returncode == 1
    assert (
        "OPT002" in other.stdout + other.stderr and "was started with another" in other.stdout + other.stderr
    )


@pytest.mark.slow
def test_local_worker_processes_use_the_shared_studies(tmp_path, shared_data):
    from engine.backtest.optimize import OptimizeSettings, optimize_bot

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    config = OptimizeSettings(
        trials=3, folds=2, seed=1, jobs=2, min_trades=3, only=("fast", "slow"), storage=url
    )
    first = optimize_bot(make_bot(tmp_path), data_dir=shared_data, settings=config)
    again = optimize_bot(make_bot(tmp_path), data_dir=shared_data, settings=config)
    assert [f.trials for f in first.folds] == [3, 3] and [f.trials for f in again.folds] == [6, 6]
    assert optuna.study.get_all_study_names(optuna_url(url)) == ["optimize-opt-fold-1", "optimize-opt-fold-2"]
