"""`engine validate` and `engine schema` through the real typer app."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from tests.engine.config.conftest import INVALID, ROOT

_register()
runner = CliRunner()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the examples in a temporary working directory."""
    for name in ("bots", "strategies", "models"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "feeds.yaml", tmp_path / "feeds.yaml")  # the pos and funding feeds
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_validate_examples_by_default(project):
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    examples = len(
        [
            *(project / "bots").glob("*.yaml"),
            *(project / "strategies").glob("*.yaml"),
            *(project / "models").glob("*.yaml"),
        ]
    )
    assert result.output.strip() == f"{examples} files OK"


def test_validate_reports_every_error_with_source_and_caret(project):
    bot = project / "bots" / "eth_btc_trend.yaml"
    bot.write_text(bot.read_text().replace("fast: 9", "fast: 40").replace("mode: paper", "mode: papr"))
    strategy = project / "strategies" / "ema_rsi.yaml"
    strategy.write_text(strategy.read_text().replace("momentum < rsi_max", "momentum < rsi_mx"))
    result = runner.invoke(app, ["validate", "bots/eth_btc_trend.yaml", "strategies/ema_rsi.yaml"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    headlines = [line for line in lines if ": error[" in line]
    assert [h.split(": error")[0].split(":")[0] for h in headlines] == [
        "bots/eth_btc_trend.yaml",
        "bots/eth_btc_trend.yaml",
        "strategies/ema_rsi.yaml",
    ]
    assert "error[DSL003]: unknown name 'rsi_mx' (did you mean 'rsi_max'?)" in headlines[2]
    caret = lines[lines.index(headlines[2]) + 2]
    source = lines[lines.index(headlines[2]) + 1]
    assert source[caret.index("^") :].startswith("rsi_mx")
    assert lines[-1] == "3 errors in 2 of 2 files"


def test_validate_json(project):
    (project / "bots" / "broken.yaml").write_text("bot: x\nstrategy: ../strategies/ema_rsi.yaml\n")
    result = runner.invoke(app, ["validate", "--format", "json", "bots"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["ok"] is False and payload["error_count"] == 3
    assert {d["code"] for d in payload["diagnostics"]} == {"CFG003"}
    assert payload["diagnostics"][0] | {"message": None} == {
        "code": "CFG003",
        "severity": "error",
        "message": None,
        "file": "bots/broken.yaml",
        "line": 1,
        "col": 1,
        "end_line": 1,
        "end_col": 2,
        "notes": [],
    }
    files = len([*(project / "bots").glob("*.yaml"), *(project / "strategies").glob("*.yaml")])
    assert payload["summary"] == f"3 errors in 1 of {files} files"


def test_literal_secrets_are_masked_in_the_printed_line(monkeypatch):
    monkeypatch.chdir(INVALID)
    result = runner.invoke(app, ["validate", "bot_literal_secret.yaml"])
    assert result.exit_code == 1
    assert "AKIAIOSFODNN7EXAMPLE" not in result.output
    assert "{key: ********************, secret: env:BINANCE_SECRET}" in result.output


def test_validate_never_tracebacks_on_the_corpus(monkeypatch):
    monkeypatch.chdir(INVALID)
    result = runner.invoke(app, ["validate", "."])
    assert (result.exit_code == 1 and result.exception is None) or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1].endswith(" files")


def test_missing_file(project):
    result = runner.invoke(app, ["validate", "nope.yaml"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "nope.yaml:1:1: error[CFG005]: file not found"


def test_schema_check_write_and_docs(tmp_path):
    assert runner.invoke(app, ["schema", "--out", str(ROOT / "schema"), "--check"]).exit_code == 0
    out = tmp_path / "schema"
    stale = runner.invoke(app, ["schema", "--out", str(out), "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output
    written = runner.invoke(app, ["schema", "--out", str(out)])
    assert written.exit_code == 0 and sorted(p.name for p in out.iterdir()) == [
        "bot.schema.json",
        "feeds.schema.json",
        "model.schema.json",
        "sentiment.schema.json",
        "strategy.schema.json",
    ]
    assert runner.invoke(app, ["schema", "--out", str(out)]).output == ""  # nothing changed, nothing written
    docs = tmp_path / "config.md"
    docs.write_text((ROOT / "docs" / "config.md").read_text().replace("| `timeframe` |", "| `tf` |"))
    assert runner.invoke(app, ["schema", "--out", str(out), "--docs", str(docs), "--check"]).exit_code == 1
    assert runner.invoke(app, ["schema", "--out", str(out), "--docs", str(docs)]).exit_code == 0
    assert docs.read_text() == (ROOT / "docs" / "config.md").read_text()
