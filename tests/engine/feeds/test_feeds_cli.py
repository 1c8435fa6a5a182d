"""engine feeds list|fetch|import|status|synth and engine validate on feeds.yaml, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from tests.engine.feeds.test_fear_greed_service import fng_days, fng_route
from tests.fakes.json_service import JsonService

_register()
runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENGINE_DATABASE_URL", f"sqlite:///{tmp_path / 'engine.db'}")
    return tmp_path


def test_fetch_then_status_then_fetch_again(project: Path) -> None:
    with JsonService({"/fng/": fng_route(fng_days(40))}) as server:
        (project / "feeds.yaml").write_text(f"services:\n  fear_greed: {{base_url: '{server.url}'}}\n")
        first = runner.invoke(app, ["feeds", "fetch", "fear_greed"])
        assert first.exit_code == 0, first.output
        assert "fear_greed: +40 observations (from fear_greed)" in first.output
        again = runner.invoke(app, ["feeds", "fetch", "fear_greed"])
        assert "fear_greed: +0 observations" in again.output
    status = runner.invoke(app, ["feeds", "status"])
    assert status.exit_code == 0, status.output
    assert "fear_greed" in status.output and "ok" in status.output
    listing = runner.invoke(app, ["feeds", "list"])
    assert "fear_greed" in listing.output and "coingecko > cryptocompare" in listing.output


def test_a_failing_source_is_reported_and_the_exit_code_says_so(project: Path) -> None:
    (project / "feeds.yaml").write_text("services:\n  fear_greed: {base_url: 'http://127.0.0.1:9'}\n")
    result = runner.invoke(app, ["feeds", "fetch", "fear_greed"])
    assert result.exit_code == 1
    assert "failed: fear_greed:" in result.output and "missing: value" in result.output
    unknown = runner.invoke(app, ["feeds", "fetch", "fear_gred"])
    assert unknown.exit_code == 2 and "did you mean 'fear_greed'" in unknown.output


def test_import_a_csv_and_read_it_in_a_rule(project: Path) -> None:
    (project / "mine.csv").write_text(
        "time,available_at,score\n2024-01-01,2024-01-01T06:00:00Z,1.5\n2024-01-02,,2\nnot a time,,3\n2024-01-03,,abc\n"
    )
    result = runner.invoke(app, ["feeds", "import", "mine.csv", "--feed", "mine", "--lag", "1h"])
    assert result.exit_code == 0, result.output
    assert "mine: score: 2 values read, 2 new, 2 rows skipped" in result.output
    missing = runner.invoke(app, ["feeds", "import", "nope.csv", "--feed", "mine"])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_validate_reports_feeds_yaml_errors(project: Path) -> None:
    (project / "feeds.yaml").write_text("feeds:\n  mood: {source: fear_greed, refresh: 5 minutes}\n")
    result = runner.invoke(app, ["validate", "feeds.yaml"])
    assert result.exit_code == 1
    assert "feeds.yaml:2:" in result.output and "duration" in result.output
    (project / "feeds.yaml").write_text("feeds:\n  mood: {source: fear_greed, refresh: 5m}\n")
    assert runner.invoke(app, ["validate", "feeds.yaml"]).output.strip() == "1 file OK"


def test_synth_is_marked_generated(project: Path) -> None:
    result = runner.invoke(app, ["feeds", "synth", "--from", "2024-01-01", "--to", "2024-01-10"])
    assert result.exit_code == 0 and "generated feed data (not market data)" in result.output
