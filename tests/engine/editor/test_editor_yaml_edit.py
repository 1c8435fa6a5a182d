"""Saving edits: comments, key order and styles kept; invalid edits refused with positions; atomic."""

from __future__ import annotations

import difflib
import io
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from dsl import DiagnosticError
from engine.config import validate_files
from engine.editor import DELETE, EditableFile

ROOT = Path(__file__).resolve().parents[3]
STRATEGY_NAMES = sorted(p.name for p in (ROOT / "strategies").glob("*.yaml"))
BOT_NAMES = sorted(p.name for p in (ROOT / "bots").glob("*.yaml"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the example strategies and bots (bots refer to ../strategies), with the files their
    rules read: models/ and feeds.yaml."""
    shutil.copytree(ROOT / "strategies", tmp_path / "strategies")
    shutil.copytree(ROOT / "bots", tmp_path / "bots")
    shutil.copytree(ROOT / "models", tmp_path / "models")
    shutil.copy(ROOT / "feeds.yaml", tmp_path / "feeds.yaml")
    return tmp_path


def _comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def _key_paths(text: str) -> list[tuple[str, ...]]:
    """Every mapping key path in document order (how key order is compared)."""
    out: list[tuple[str, ...]] = []

    def walk(node: object, prefix: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                out.append((*prefix, str(key)))
                walk(value, (*prefix, str(key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*prefix, str(index)))

    walk(YAML().load(io.StringIO(text)), ())
    return out


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("name", [*STRATEGY_NAMES, *BOT_NAMES])
def test_unchanged_file_round_trips_exactly(name: str) -> None:
    folder = "strategies" if name in STRATEGY_NAMES else "bots"
    edit = EditableFile.open(ROOT / folder / name)
    assert edit.text() == edit.original
    assert not edit.changed


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_rule_edit_keeps_comments_and_order(tree: Path, name: str) -> None:
    path = tree / "strategies" / name
    before = path.read_text()
    edit = EditableFile.open(path, relative_to=tree)
    old = edit.get(("entry", "long"))
    assert isinstance(old, str)
    new = f"({old.strip()}) and volume > 0"
    edit.set_rule("entry", "long", new)
    assert edit.save() == []
    after = path.read_text()
    assert _comment_lines(after) == _comment_lines(before)
    assert _key_paths(after) == _key_paths(before)
    assert _changed_lines(before, after) == [f"-  long: {old}", f"+  long: {new}"]
    assert validate_files([path], relative_to=tree) == []
    assert EditableFile.open(path).get(("entry", "long")) == new


def test_stops_inputs_and_features_edits(tree: Path) -> None:
    path = tree / "strategies" / "ema_rsi.yaml"
    before = path.read_text()
    edit = EditableFile.open(path, relative_to=tree)
    edit.set_stop("take_profit", "8%")
    edit.set_stop("stop_loss", "stop_atr * atr(21)")
    edit.set_trailing("1%", "0.5%")
    edit.set_input("fast", default=10, range=[5, 40])
    edit.set_input("band", default=1.5, range=[1.0, 3.0])
    edit.set_feature("slow_ma", "sma(close, slow)")
    assert edit.save() == []
    after = path.read_text()
    assert _comment_lines(after) == _comment_lines(before)
    assert "  fast: {default: 10, range: [5, 40], description: fast EMA length}" in after
    assert "  band: {default: 1.5, range: [1.0, 3.0]}" in after  # a new input in its siblings' flow style
    assert "  slow_ma: sma(close, slow)\n" in after
    assert "  take_profit: 8%\n" in after and "  stop_loss: stop_atr * atr(21)\n" in after
    assert "trailing:" in after
    assert validate_files([path], relative_to=tree) == []


def test_quoting_and_block_styles_are_kept(tree: Path) -> None:
    mtf = EditableFile.open(tree / "strategies" / "mtf_trend.yaml", relative_to=tree)
    mtf.set(("score", "long", "signals", 1, "when"), "volume > 2 * sma(volume, 20)")
    mtf.set_confirm("long", ["close@1h > trend_1h", "rsi_1h > 55", "rising_4h"])
    assert mtf.save() == []
    text = (tree / "strategies" / "mtf_trend.yaml").read_text()
    assert '{when: "volume > 2 * sma(volume, 20)", weight: 1}' in text
    assert "    - rsi_1h > 55\n" in text
    assert "    - close@1h > trend_1h\n    - rsi_1h > 55\n    - rising_4h\n" in text

    donchian = EditableFile.open(tree / "strategies" / "donchian_breakout.yaml", relative_to=tree)
    donchian.set_rule("exit", "short", None)
    donchian.set_rule("entry", "short", "close < lower\n  and volatility > sma(volatility, 100)")
    assert donchian.save() == []
    text = (tree / "strategies" / "donchian_breakout.yaml").read_text()
    assert "  short: |\n    close < lower\n      and volatility > sma(volatility, 100)\n" in text
    assert "close > donchian(exit_length).upper[1]" not in text


def test_invalid_edit_is_refused_with_positions(tree: Path) -> None:
    path = tree / "strategies" / "ema_rsi.yaml"
    before = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    edit = EditableFile.open(path, relative_to=tree)
    edit.set_rule("entry", "long", "crosses_above(fast_ma, slow_ma) and momentum < rsi_mx")
    problems = edit.save()
    assert [(d.code, str(d.span)) for d in problems] == [("DSL003", "strategies/ema_rsi.yaml:33:56")]
    assert "rsi_max" in problems[0].message
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp
    assert not list(path.parent.glob(".*.tmp"))

    edit = EditableFile.open(path, relative_to=tree)
    edit.set_input("fast", range=[5])  # schema error, not DSL
    assert [d.code for d in edit.save()] and path.read_bytes() == before


def test_strategy_edit_checked_against_dependent_bots(tree: Path) -> None:
    path = tree / "strategies" / "ema_rsi.yaml"
    edit = EditableFile.open(path, relative_to=tree)
    edit.set_input("fast", range=[10, 30])  # eth_btc_trend.yaml sets fast: 9
    assert edit.validate() == []
    problems = edit.save(dependents=[tree / "bots" / "eth_btc_trend.yaml"])
    assert problems and problems[0].span is not None and problems[0].span.file == "bots/eth_btc_trend.yaml"
    assert "range: [5, 30]" in path.read_text()


def test_bot_sizing_edit(tree: Path) -> None:
    path = tree / "bots" / "eth_btc_trend.yaml"
    before = path.read_text()
    edit = EditableFile.open(path, relative_to=tree)
    edit.set_sizing(risk_per_trade="0.5%", max_per_trade="20%", max_open_trades=3)
    assert edit.save() == []
    after = path.read_text()
    assert "  risk_per_trade: 0.5% # size positions so a stop-out loses 1% of the capital" in after
    assert "  max_per_trade: 20%   # no position larger than 10% of the capital" in after
    assert _comment_lines(after) == _comment_lines(before)
    assert _key_paths(after) == _key_paths(before)
    assert len(_changed_lines(before, after)) == 6
    assert validate_files([path], relative_to=tree) == []

    edit = EditableFile.open(path, relative_to=tree)
    edit.set_sizing(risk_per_trade="150%")
    line = next(n for n, text in enumerate(after.splitlines(), 1) if "risk_per_trade:" in text)
    problems = edit.save()
    assert [(d.span.file, d.span.line) for d in problems if d.span] == [("bots/eth_btc_trend.yaml", line)]
    assert path.read_text() == after


def test_file_changed_on_disk_is_not_overwritten(tree: Path) -> None:
    path = tree / "strategies" / "ema_rsi.yaml"
    edit = EditableFile.open(path, relative_to=tree)
    edit.set_stop("take_profit", "7%")
    path.write_text(path.read_text() + "\n# edited elsewhere\n")
    assert [d.code for d in edit.save()] == ["EDT003"]
    assert "edited elsewhere" in path.read_text() and "7%" not in path.read_text()


def test_delete_and_get(tree: Path) -> None:
    edit = EditableFile.open(tree / "strategies" / "mtf_trend.yaml", relative_to=tree)
    assert edit.kind == "strategy"
    assert edit.get(("confirm", "long", 2)) == "rising_4h"
    assert edit.get(("score", "long", "threshold")) == 2
    assert edit.get(("nope", "x"), "missing") == "missing"
    edit.set(("score",), DELETE)
    assert "score:" not in edit.text() and edit.validate() == []


def test_impossible_paths_are_clear_errors(tree: Path) -> None:
    edit = EditableFile.open(tree / "strategies" / "mtf_trend.yaml", relative_to=tree)
    with pytest.raises(ValueError, match="timeframe is a single value"):
        edit.set(("timeframe", "x"), 1)
    with pytest.raises(ValueError, match="the list has 3 items"):
        edit.set(("confirm", "long", 7), "close > open")
    edit.set(("confirm", "long", 3), "close > open")  # appending is fine
    assert edit.get(("confirm", "long")) == [
        "close@1h > trend_1h",
        "rsi_1h > 50",
        "rising_4h",
        "close > open",
    ]


def test_unreadable_or_non_mapping_files(tmp_path: Path) -> None:
    cases = {
        "missing.yaml": None,
        "list.yaml": "- a\n- b\n",
        "bad.yaml": "a: [1\n",
        "latin.yaml": b"a: \xe9\n",
    }
    codes = {}
    for name, content in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        with pytest.raises(DiagnosticError) as caught:
            EditableFile.open(path, relative_to=tmp_path)
        codes[name] = caught.value.diagnostics[0].code
    assert codes["missing.yaml"] == "EDT001" and codes["latin.yaml"] == "EDT001"
    assert codes["list.yaml"] == "EDT002"
    assert codes["bad.yaml"].startswith("YAML")


def test_score_edit_keeps_unchanged_signals(tree: Path) -> None:
    path = tree / "strategies" / "mtf_trend.yaml"
    before = path.read_text()
    edit = EditableFile.open(path, relative_to=tree)
    signals = edit.get(("score", "long", "signals"))
    signals[0]["weight"] = 2
    edit.set_score("long", 3, signals[:2])
    assert edit.save() == []
    after = path.read_text()
    assert '      - {when: "macd(close).hist > 0", weight: 2, description: momentum turning up}' in after
    assert '      - {when: "volume > sma(volume, 20)", weight: 1}   # quoted: a comma would end it' in after
    assert "    threshold: 3              # a number (scores are not tunable inputs)" in after
    assert "bbands(close, 20).middle@1h" not in after
    assert len(_changed_lines(before, after)) == 2 + 2 + 3


def test_deleting_last_entries_keeps_the_blank_line_after_them(tree: Path) -> None:
    path = tree / "strategies" / "donchian_breakout.yaml"
    edit = EditableFile.open(path, relative_to=tree)
    edit.set_rule("exit", "short", None)
    edit.set_rule("entry", "short", None)
    text = edit.text()
    assert "errors still point at the exact line and column.\n\nexit:\n" in text
    assert "  long: close < donchian(exit_length).lower[1]\n\nstops:\n" in text
    assert edit.validate() == []
