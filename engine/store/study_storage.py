"""Optuna studies shared through a database: ``engine ml tune --storage`` and ``engine optimize --storage``.

One job: open (or create) a named study in an Optuna RDB storage so that several worker processes, on
one machine or many, add trials to the same study. Optuna talks to the database with SQLAlchemy's
*synchronous* drivers, while the engine's own store URLs name async ones (``postgresql+asyncpg://``,
``sqlite+aiosqlite://``), so the URL is translated first: PostgreSQL goes through psycopg 3, SQLite
through the standard library. Messages never show the password (``display_url``)."""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from engine.store.db import display_url

__all__ = ["StudyStorageError", "close_study", "open_shared_study", "optuna_url", "setup_digest"]

# Async or unspecified drivers -> the synchronous driver Optuna can use.
_POSTGRES = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}
_SQLITE = {"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"}


class StudyStorageError(ValueError):
    """The study cannot be opened, or belongs to another search; the message is safe to print."""


def optuna_url(url: str) -> str:
    """``url`` with a synchronous driver: ``postgresql://``, ``postgres://`` and ``postgresql+asyncpg://``
    become ``postgresql+psycopg://`` (psycopg 3, installed with the engine); ``psycopg2`` URLs are kept
    only if that driver is importable; ``sqlite+aiosqlite://`` becomes ``sqlite://``. Others unchanged."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    driver = parsed.drivername
    if driver in _POSTGRES:
        if driver == "postgresql+psycopg2" and _importable("psycopg2"):
            return url
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if driver in _SQLITE:
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return url


def setup_digest(setup: Any) -> str:
    """A short, stable digest of what a study searches (JSON of ``setup``), kept in the study so that a
    worker started with another model, bot, data range or search space is refused instead of mixing
    incomparable trials into it."""
    text = json.dumps(setup, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def open_shared_study(
    url: str,
    name: str,
    *,
    sampler: Any,
    direction: str = "maximize",
    setup: Any = None,
    attempts: int = 5,
) -> Any:
    """The study ``name`` in the storage at ``url``, created when missing. Workers starting together race
    to create the tables and the study: the loser retries; any other failure (unreachable server, bad
    credentials, missing driver) raises :class:`StudyStorageError` at once."""
    import optuna

    shown = display_url(url)
    study = None
    for attempt in range(attempts):
        try:
            # A heartbeat marks the trials of a worker that died (killed, machine lost) as failed,
            # instead of leaving them "running" for ever, which TPE's constant liar would keep avoiding.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    optuna_url(url),
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=60,
                    grace_period=180,
                )
            study = optuna.create_study(
                storage=storage, study_name=name, sampler=sampler, direction=direction, load_if_exists=True
            )
            break
        except Exception as exc:
            if attempt == attempts - 1 or not _racing(exc):
                raise StudyStorageError(
                    f"cannot open the study '{name}' in {shown}: {_first_line(exc, url)}"
                ) from None
            time.sleep(0.3 * (attempt + 1))
    assert study is not None
    if setup is not None:
        _check_setup(study, name, shown, setup_digest(setup))
    return study


def close_study(study: Any) -> None:
    """Close the study's database connections (before forking workers: a child must not inherit them)."""
    backend = getattr(study._storage, "_backend", study._storage)
    engine = getattr(backend, "engine", None)
    if engine is not None:
        backend.remove_session()
        engine.dispose()


def _check_setup(study: Any, name: str, shown: str, digest: str) -> None:
    stored = study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", digest)
    elif stored != digest:
        raise StudyStorageError(
            f"the study '{name}' in {shown} was started with another model, bot, data range or search "
            f"space (setup {stored}, this worker {digest}): use another --study name"
        )


def _racing(exc: BaseException) -> bool:
    kind = type(exc).__name__
    text = str(exc).lower()
    if kind in ("IntegrityError", "DuplicatedStudyError"):
        return True
    # Two processes creating Optuna's tables at once; SQLite's writer lock.
    return kind in ("OperationalError", "ProgrammingError") and (
        "already exists" in text or "locked" in text or "deadlock" in text
    )


def _first_line(exc: BaseException, url: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
