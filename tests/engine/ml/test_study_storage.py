"""Shared Optuna studies (engine/store/study_storage.py): URL translation, password hiding, and the
refusal of a worker that searches something else."""

from __future__ import annotations

import optuna
import pytest

from engine.store.study_storage import StudyStorageError, open_shared_study, optuna_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        (
            "postgresql+asyncpg://u:p@h/db?options=-c search_path=s",
            "postgresql+psycopg://u:p@h/db?options=-c+search_path%3Ds",
        ),
        ("sqlite+aiosqlite:///x/study.db", "sqlite:///x/study.db"),
        ("sqlite:///study.db", "sqlite:///study.db"),
        ("mysql+pymysql://u:p@h/db", "mysql+pymysql://u:p@h/db"),
        ("not a url", "not a url"),
    ],
)
def test_urls_get_a_synchronous_driver(given, expected):
    assert optuna_url(given) == expected


def test_an_unreachable_server_is_one_line_without_the_password():
    sampler = optuna.samplers.RandomSampler(seed=1)
    with pytest.raises(StudyStorageError) as error:
        open_shared_study("postgresql://alice:s3cr3t@127.0.0.1:1/db?connect_timeout=2", "st", sampler=sampler)
    text = str(error.value)
    assert "s3cr3t" not in text and "\n" not in text
    assert text.startswith("cannot open the study 'st' in postgresql://alice:***@127.0.0.1:1/db")


def test_a_worker_searching_something_else_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    sampler = optuna.samplers.RandomSampler(seed=1)
    study = open_shared_study(url, "st", sampler=sampler, setup={"model": "a", "pairs": ["X/Y"]})
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    again = open_shared_study(url, "st", sampler=sampler, setup={"pairs": ["X/Y"], "model": "a"})
    assert len(again.trials) == 2  # same setup (key order does not matter): the same study
    with pytest.raises(StudyStorageError, match="was started with another model"):
        open_shared_study(url, "st", sampler=sampler, setup={"model": "b", "pairs": ["X/Y"]})
