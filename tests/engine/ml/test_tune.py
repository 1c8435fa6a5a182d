"""`engine ml tune`: two worker processes share one Optuna study through --storage, on an SQLite file
(always) and on PostgreSQL (when ENGINE_TEST_POSTGRES_URL names a server: .ci/postgres starts one)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import optuna
import pytest

from tests.engine.ml.conftest import model_text, walk

PAIRS = ("AAA/BTC",)


POSTGRES_ENV = "ENGINE_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    """The URL workers are given: an SQLite file, or a fresh schema on the PostgreSQL test server given
    as the engine's own async URL (postgresql+asyncpg://), which the tune command must translate."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}"
        return
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"PostgreSQL: set {POSTGRES_ENV} (.ci/run starts a server)")
    from tests.engine.store.conftest import create_postgres_schema, drop_postgres_schema

    url = asyncio.run(create_postgres_schema())
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_schema(url))


@pytest.mark.slow
def test_two_worker_processes_share_one_study(tmp_path, storage):
    from engine.store.study_storage import optuna_url

    (tmp_path / "data").mkdir()
    walk(71, 5).to_csv(tmp_path / "data" / "AAA_BTC-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.yaml").write_text(model_text(pairs=PAIRS))
    command = [
        sys.executable, "-c", "from engine.cli import main; main()", "ml", "tune", "models/m.yaml",
        "--trials", "2", "--storage", storage, "--study", "shared", "--data", "data", "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    workers = [
        subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=optuna_url(storage))
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 4
    assert all(0.3 < t.value < 0.7 for t in finished)  # a random walk: no trial finds an edge
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 4  # the workers explored differently
    assert "best #" in outputs[-1] and "learner:\n  type: lightgbm\n  trees:" in outputs[-1]
    assert all("engine:engine@" not in out for out in outputs)  # the password is never printed

    # A worker started on another model file is refused rather than mixing its trials in.
    (tmp_path / "models" / "m.yaml").write_text(model_text(pairs=PAIRS).replace("embargo: 0", "embargo: 3"))
    other = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert other.returncode == 1 and "was started with another model" in other.stdout + other.stderr


def test_a_bad_storage_is_one_clear_line(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    walk(71, 5).to_csv(tmp_path / "data" / "AAA_BTC-5m.csv", date_format="%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.yaml").write_text(model_text(pairs=PAIRS))
    from typer.testing import CliRunner

    from engine.cli import _register, app

    _register()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["ml", "tune", "models/m.yaml", "--storage", "nosuchdb://x", "--data", "data"]
    )
    assert (
        result.exit_code == 1
        and "error[ML009]: cannot open the study 'ml-m' in nosuchdb://x" in result.output
    )
