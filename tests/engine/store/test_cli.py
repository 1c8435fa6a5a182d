"""``engine db upgrade|current`` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import engine.cli.cmd_db  # noqa: F401  (registers the commands)
from engine.cli import app
from engine.store import head_revision


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["db", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_upgrade_then_current(empty_db_url: str) -> None:
    code, out = invoke("current", "--url", empty_db_url, "--check")
    assert code == 1 and "no schema yet" in out
    code, out = invoke("upgrade", "--url", empty_db_url)
    assert code == 0 and f"at revision {head_revision()}" in out
    code, out = invoke("upgrade", "--url", empty_db_url)
    assert code == 0
    code, out = invoke("current", "--url", empty_db_url, "--check")
    assert code == 0 and "(up to date)" in out


def test_default_database_lives_in_engine_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENGINE_DATABASE_URL", raising=False)
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    code, out = invoke("current")
    assert code == 0 and "no schema yet" in out
    assert not (tmp_path / "home").exists()  # looking created nothing
    code, out = invoke("upgrade")
    assert code == 0 and (tmp_path / "home" / "engine.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user:hunter2@db/engine", "unsupported database 'mysql'"),
        (
            "postgresql://user:hunter2@127.0.0.1:1/engine",
            "cannot use the database postgresql://user:***@127.0.0.1:1",
        ),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_databases_are_one_line_errors(url: str, message: str) -> None:
    code, out = invoke("upgrade", "--url", url)
    assert code == 1 and message in out
    assert "hunter2" not in out and "Traceback" not in out
