"""`engine functions [NAME]`."""

from __future__ import annotations

from typer.testing import CliRunner

from engine.cli import _register, app

_register()
runner = CliRunner()


def test_lists_every_function_by_category(registry):
    result = runner.invoke(app, ["functions"])
    assert result.exit_code == 0, result.output
    assert "Momentum [momentum]" in result.output
    assert "  atr(length=14, *, high=high, low=low, close=close)" in result.output
    # Function lines are signatures; the project's feed namespaces follow as `name.{members}` lines.
    signatures = [line for line in result.output.splitlines() if line.startswith("  ") and "(" in line]
    assert len(signatures) == len(registry.functions)


def test_one_category_and_one_function():
    result = runner.invoke(app, ["functions", "--category", "levels"])
    assert result.exit_code == 0 and "support(" in result.output and "rsi(" not in result.output
    result = runner.invoke(app, ["functions", "bbands"])
    assert result.exit_code == 0
    assert "`.lower`, `.middle`, `.upper`, `.bandwidth`, `.percent`" in result.output
    assert "Example: `close < bbands(close, 20, std=2).lower`" in result.output


def test_unknown_names_are_one_line_errors():
    result = runner.invoke(app, ["functions", "rsii"])
    assert result.exit_code == 1 and "unknown function 'rsii' (did you mean 'rsi'?)" in result.output
    result = runner.invoke(app, ["functions", "-c", "astrology"])
    assert result.exit_code == 1 and "unknown category 'astrology'" in result.output
